// Service ClusterIP and NodePort allocation, as kube-apiserver's service registry does it
// (pkg/registry/core/service/storage: alloc.go, rest.go, strategy.go), and the `kubernetes` Service
// in `default` that points at this API server (upstream's "kubernetes" service controller).
//
// What it does, with upstream's semantics and messages:
//   - create: IP family fields filled (IPv4, SingleStack; headless + selectorless → RequireDualStack),
//     a ClusterIP allocated from the service CIDR (a requested one honoured when in range and free,
//     `None` = headless, ExternalName gets none), NodePorts allocated per port for NodePort and
//     LoadBalancer Services (requested ones honoured; `allocateLoadBalancerNodePorts: false` honoured),
//     a healthCheckNodePort for LoadBalancers with externalTrafficPolicy Local;
//   - update: values the client left out are patched in from the stored object, new node ports are
//     allocated, fields that no longer apply to the new type are dropped (and so released);
//   - errors: 422 `spec.clusterIPs: Invalid value: []string{"1.2.3.4"}: failed to allocate IP 1.2.3.4:
//     the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.43.0.0/16`,
//     `... provided IP is already allocated`, `spec.ports[0].nodePort: Invalid value: 30080: provided
//     port is already allocated` / `provided port is not in the valid range. The range of valid ports
//     is 30000-32767`.
//
// How the state is kept (there is no bitmap object in the store):
//   - What is allocated is *derived from the stored Services*: the allocator follows the API server's
//     watch cache of Services (filled from the store at start, then from the store's watch), so after
//     a restart the allocations are rebuilt from the existing Services, and a Service's IP and ports are
//     released when its deletion (or a type change) reaches the cache, whichever path deleted it
//     (DELETE, deletecollection, finalizers, namespace deletion).
//   - A write in flight holds a *reservation*, made synchronously in this process before the write, so
//     concurrent creates never get the same IP or port. The reservation is dropped when the write fails
//     (so nothing leaks) or once the cache has applied the write (from then on the Service itself holds
//     the values). Creates wait for the cache to catch up with the store first, so a value freed by a
//     delete that already returned can be reused at once.
//   - One API server per store: two API servers sharing a store could hand out the same value in the
//     moment before each sees the other's write (upstream keeps a bitmap in etcd for that).
//   - Dynamic allocation prefers the upper part of each range, leaving the lower part (256 IPs, 86
//     ports by default) to static requests such as the DNS Service's 10.43.0.10 (upstream KEP-3070 and
//     KEP-3668). The first address (10.43.0.1) belongs to default/kubernetes.
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import type * as core from 'kubernetes-types/core/v1.js';
import type { KObject, ResourceDef } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { serviceIPFamilyOf, validateServiceClusterIPsRelatedFields } from '../api/validation.js';
import { errors, field, isStatusError, type FieldError, StatusError } from '../machinery/status.js';
import { clone, type Registry } from './registry.js';
import type { CacheEvent } from './watch-cache.js';

type Service = KObject & { spec?: core.ServiceSpec; status?: core.ServiceStatus };
type Spec = core.ServiceSpec;

export const DEFAULT_SERVICE_CIDR = '10.43.0.0/16';
export const DEFAULT_NODE_PORT_RANGE = '30000-32767';
/** the Service that may hold the first address of the range */
const KUBERNETES_SERVICE = 'default/kubernetes';

// ---- ranges -------------------------------------------------------------------------------------

/** A dotted IPv4 address as a number (leading zeros allowed, as Go's ParseIPSloppy), or undefined. */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return undefined;
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** upstream's min(max(min, size/step), max) size of the lower band kept for static requests. */
function reservedBand(size: number, min: number, max: number, step: number): number {
  if (size <= min) return 0;
  return Math.min(Math.max(min, Math.floor(size / step)), max);
}

/** An IPv4 service CIDR: usable addresses exclude the network and broadcast addresses. */
export class ServiceCIDR {
  readonly base: number;
  readonly prefix: number;
  /** number of usable addresses (first = base + 1) */
  readonly max: number;
  /** usable-address offsets below this are the static band */
  readonly staticBand: number;

  constructor(cidr: string) {
    const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr.trim());
    const ip = m ? parseIPv4(m[1]) : undefined;
    const prefix = m ? Number(m[2]) : NaN;
    if (ip === undefined || !(prefix >= 0 && prefix <= 32)) throw new Error(`invalid service CIDR ${JSON.stringify(cidr)}: want an IPv4 CIDR such as ${DEFAULT_SERVICE_CIDR}`);
    if (prefix < 12) throw new Error(`service CIDR ${cidr} is too large: the mask must be /12 or longer`);
    if (prefix > 30) throw new Error(`service CIDR ${cidr} is too small: the mask must be /30 or shorter`);
    const size = 2 ** (32 - prefix);
    this.prefix = prefix;
    this.base = Math.floor(ip / size) * size;
    this.max = size - 2;
    this.staticBand = reservedBand(size, 16, 256, 16);
  }
  /** the first usable address (the kubernetes Service's) */
  get first(): number { return this.base + 1; }
  /** whether n is a usable address of the range */
  has(n: number): boolean { return n > this.base && n <= this.base + this.max; }
  toString(): string { return `${formatIPv4(this.base)}/${this.prefix}`; }
}

/** A port range such as `30000-32767` (also `30000+2767` or one port), as Go's net.ParsePortRange. */
export class PortRange {
  readonly base: number;
  readonly size: number;
  readonly staticBand: number;

  constructor(spec: string) {
    const s = spec.trim();
    let m: RegExpExecArray | null;
    let lo: number, hi: number;
    if ((m = /^(\d+)-(\d+)$/.exec(s))) { lo = Number(m[1]); hi = Number(m[2]); }
    else if ((m = /^(\d+)\+(\d+)$/.exec(s))) { lo = Number(m[1]); hi = lo + Number(m[2]); }
    else if ((m = /^(\d+)$/.exec(s))) { lo = hi = Number(m[1]); }
    else throw new Error(`invalid port range ${JSON.stringify(spec)}: want BASE-END such as ${DEFAULT_NODE_PORT_RANGE}`);
    if (lo < 1 || hi > 65535 || hi < lo) throw new Error(`invalid port range ${JSON.stringify(spec)}: ports must be 1-65535, low to high`);
    this.base = lo;
    this.size = hi - lo + 1;
    this.staticBand = reservedBand(this.size, 16, 128, 32);
  }
  has(p: number): boolean { return Number.isInteger(p) && p >= this.base && p < this.base + this.size; }
  toString(): string { return `${this.base}-${this.base + this.size - 1}`; }
}

// ---- what a Service holds -----------------------------------------------------------------------

function specOf(svc: Service): Spec {
  return (svc.spec ??= {});
}
function keyOf(svc: KObject): string {
  return `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
}
const needsClusterIP = (s: Spec): boolean => s.type !== 'ExternalName';
const needsNodePort = (s: Spec): boolean => s.type === 'NodePort' || s.type === 'LoadBalancer';
const needsHCNodePort = (s: Spec): boolean => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';
const isHeadless = (s: Spec): boolean => (s.clusterIPs?.length ?? 0) > 0 && s.clusterIPs![0] === 'None';
const externallyAccessible = (s: Spec): boolean => s.type === 'LoadBalancer' || s.type === 'NodePort' || (s.type === 'ClusterIP' && (s.externalIPs?.length ?? 0) > 0);
function shouldAllocateNodePorts(s: Spec): boolean {
  if (s.type === 'NodePort') return true;
  return s.type === 'LoadBalancer' && s.allocateLoadBalancerNodePorts !== false;
}
function nodePortsOf(s: Spec): number[] {
  return (s.ports ?? []).map((p) => p.nodePort ?? 0).filter((n) => n !== 0);
}
const sameList = (a: unknown[] | undefined, b: unknown[] | undefined): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0) && (a ?? []).every((x, i) => x === b![i]);
const sameClusterIPs = (o: Spec, n: Spec): boolean => (o.clusterIP ?? '') === (n.clusterIP ?? '') && sameList(o.clusterIPs, n.clusterIPs);

/** The cluster IPs (as numbers) and node ports a stored Service holds. */
function holdings(svc: Service): { ips: number[]; ports: number[] } {
  const s = svc.spec ?? {};
  const ips: number[] = [];
  if (s.type !== 'ExternalName') {
    for (const ip of s.clusterIPs?.length ? s.clusterIPs : s.clusterIP ? [s.clusterIP] : []) {
      const n = parseIPv4(ip);
      if (n !== undefined) ips.push(n);
    }
  }
  const ports = nodePortsOf(s);
  if (s.healthCheckNodePort) ports.push(s.healthCheckNodePort);
  return { ips: [...new Set(ips)], ports: [...new Set(ports)] };
}

/** Go's %#v of a []string, as upstream prints clusterIPs in messages. */
function goStrings(v: string[] | undefined): string {
  return v ? `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}` : '[]string(nil)';
}
function invalid(svc: Service, errs: FieldError[]): StatusError {
  return errors.invalid('Service', 'Service', svc.metadata?.name ?? '', errs);
}
function invalidRaw(f: string, printed: string, detail: string): FieldError {
  return { type: 'FieldValueInvalid', field: f, message: `Invalid value: ${printed}: ${detail}` };
}

// ---- the allocator ------------------------------------------------------------------------------

/** The values one write in flight holds until it is settled (see the file comment). */
export class Reservation {
  readonly ips: number[] = [];
  readonly ports: number[] = [];
  /** set when the write succeeded: dropped once the cache has applied this revision */
  untilRev?: number;
  constructor(readonly owner: string) {}
}

class AllocError extends Error {}

export interface ServiceAllocatorOptions {
  serviceCIDR?: string;
  nodePortRange?: string;
  /** revision the watch cache has applied (default: always 0, so reservations wait for observe) */
  appliedRev?: () => number;
  /** [0, 1) random numbers for the start of a scan (tests make it deterministic) */
  random?: () => number;
}

export class ServiceAllocator {
  readonly cidr: ServiceCIDR;
  readonly ports: PortRange;
  private readonly appliedRev: () => number;
  private readonly random: () => number;
  /** derived from the stored Services: value → owners (namespace/name) */
  private readonly heldIPs = new Map<number, Set<string>>();
  private readonly heldPorts = new Map<number, Set<string>>();
  private readonly holdingsByOwner = new Map<string, { ips: number[]; ports: number[] }>();
  /** reservations of writes in flight */
  private readonly open = new Set<Reservation>();
  private readonly reservedIPs = new Map<number, number>();
  private readonly reservedPorts = new Map<number, number>();

  constructor(opts: ServiceAllocatorOptions = {}) {
    this.cidr = new ServiceCIDR(opts.serviceCIDR || DEFAULT_SERVICE_CIDR);
    this.ports = new PortRange(opts.nodePortRange || DEFAULT_NODE_PORT_RANGE);
    this.appliedRev = opts.appliedRev ?? (() => 0);
    this.random = opts.random ?? Math.random;
  }

  // -- the derived state

  /** A stored Service changed (svc undefined: deleted); rev is the store revision of the change. */
  observe(owner: string, svc: Service | undefined, rev?: number): void {
    const old = this.holdingsByOwner.get(owner);
    if (old) {
      for (const ip of old.ips) unhold(this.heldIPs, ip, owner);
      for (const p of old.ports) unhold(this.heldPorts, p, owner);
      this.holdingsByOwner.delete(owner);
    }
    if (svc) {
      const h = holdings(svc);
      h.ips = h.ips.filter((ip) => this.cidr.has(ip));
      h.ports = h.ports.filter((p) => this.ports.has(p));
      for (const ip of h.ips) hold(this.heldIPs, ip, owner);
      for (const p of h.ports) hold(this.heldPorts, p, owner);
      if (h.ips.length || h.ports.length) this.holdingsByOwner.set(owner, h);
    }
    if (rev !== undefined) this.settle(rev);
  }

  /** Drop the reservations of writes the cache has applied up to rev. */
  settle(rev: number): void {
    for (const r of this.open) if (r.untilRev !== undefined && r.untilRev <= rev) this.drop(r);
  }

  /** Who holds an address (stored Services), for diagnostics and tests. */
  ipHolders(ip: string): string[] {
    const n = parseIPv4(ip);
    return n === undefined ? [] : [...(this.heldIPs.get(n) ?? [])];
  }
  portHolders(port: number): string[] {
    return [...(this.heldPorts.get(port) ?? [])];
  }
  /** the number of writes in flight holding reservations */
  get pending(): number { return this.open.size; }

  /** Problems in the stored state: values held twice, values outside the configured ranges. */
  problems(services: Iterable<Service>): string[] {
    const out: string[] = [];
    for (const [ip, owners] of this.heldIPs) if (owners.size > 1) out.push(`cluster IP ${formatIPv4(ip)} is held by more than one Service: ${[...owners].sort().join(', ')}`);
    for (const [p, owners] of this.heldPorts) if (owners.size > 1) out.push(`node port ${p} is held by more than one Service: ${[...owners].sort().join(', ')}`);
    for (const svc of services) {
      const s = svc.spec ?? {};
      if (s.type === 'ExternalName') continue;
      for (const ip of s.clusterIPs ?? []) {
        const n = parseIPv4(ip);
        if (n !== undefined && !this.cidr.has(n)) out.push(`Service ${keyOf(svc)} has cluster IP ${ip}, outside the service CIDR ${this.cidr}; recreate it to get one inside`);
      }
      for (const p of nodePortsOf(s)) if (!this.ports.has(p)) out.push(`Service ${keyOf(svc)} has node port ${p}, outside the node port range ${this.ports}`);
    }
    return out;
  }

  // -- reservations

  /**
   * Settle a reservation: rev is the store revision the Service was written at, or undefined when it
   * was not written (its values are free again). Idempotent.
   */
  finish(r: Reservation, rev?: number): void {
    if (!this.open.has(r)) return;
    if (rev === undefined || rev <= this.appliedRev()) this.drop(r);
    else r.untilRev = rev;
  }

  private begin(owner: string): Reservation {
    const r = new Reservation(owner);
    this.open.add(r);
    return r;
  }

  private drop(r: Reservation): void {
    if (!this.open.delete(r)) return;
    for (const ip of r.ips) unreserve(this.reservedIPs, ip);
    for (const p of r.ports) unreserve(this.reservedPorts, p);
  }

  private ipFree(n: number, owner: string): boolean {
    if (n === this.cidr.first && owner !== KUBERNETES_SERVICE) return false;
    if (this.reservedIPs.has(n)) return false;
    const h = this.heldIPs.get(n);
    return !h || (h.size === 1 && h.has(owner));
  }

  private portFree(p: number, owner: string): boolean {
    if (this.reservedPorts.has(p)) return false;
    const h = this.heldPorts.get(p);
    return !h || (h.size === 1 && h.has(owner));
  }

  /** ipallocator's Allocate: throws AllocError with upstream's text. */
  private allocateIP(r: Reservation, ip: string): string {
    const n = parseIPv4(ip);
    if (n === undefined || !this.cidr.has(n)) throw new AllocError(`the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.cidr}`);
    if (!this.ipFree(n, r.owner)) throw new AllocError('provided IP is already allocated');
    r.ips.push(n);
    this.reservedIPs.set(n, (this.reservedIPs.get(n) ?? 0) + 1);
    return ip;
  }

  /** ipallocator's AllocateNext: a random free address, the dynamic (upper) band first. */
  private allocateNextIP(r: Reservation): string {
    const { base, max, staticBand } = this.cidr;
    const off = scan(staticBand, max, this.random, (o) => this.ipFree(base + 1 + o, r.owner))
      ?? scan(0, staticBand, this.random, (o) => o !== 0 && this.ipFree(base + 1 + o, r.owner));
    if (off === undefined) throw new AllocError('range is full');
    const n = base + 1 + off;
    r.ips.push(n);
    this.reservedIPs.set(n, (this.reservedIPs.get(n) ?? 0) + 1);
    return formatIPv4(n);
  }

  /** portallocator's Allocate: throws AllocError with upstream's text. */
  private allocatePort(r: Reservation, p: number): void {
    if (!this.ports.has(p)) throw new AllocError(`provided port is not in the valid range. The range of valid ports is ${this.ports}`);
    if (!this.portFree(p, r.owner)) throw new AllocError('provided port is already allocated');
    r.ports.push(p);
    this.reservedPorts.set(p, (this.reservedPorts.get(p) ?? 0) + 1);
  }

  private allocateNextPort(r: Reservation): number {
    const { base, size, staticBand } = this.ports;
    const off = scan(staticBand, size, this.random, (o) => this.portFree(base + o, r.owner))
      ?? scan(0, staticBand, this.random, (o) => this.portFree(base + o, r.owner));
    if (off === undefined) throw new AllocError('range is full');
    r.ports.push(base + off);
    this.reservedPorts.set(base + off, (this.reservedPorts.get(base + off) ?? 0) + 1);
    return base + off;
  }

  // -- create and update (upstream's allocateCreate / beginUpdate + allocateUpdate + dropTypeDependentFields)

  /** Fill and allocate a Service being created (after defaulting, before validation). */
  allocateCreate(svc: Service): Reservation {
    const r = this.begin(keyOf(svc));
    try {
      const s = specOf(svc);
      svc.status = { loadBalancer: {} }; // upstream's PrepareForCreate: an empty status
      this.initIPFamilyFields(svc, undefined);
      this.allocClusterIPs(svc, r);
      if (needsNodePort(s)) this.initNodePorts(svc, r);
      if (needsHCNodePort(s)) this.allocHealthCheckNodePort(svc, r);
      return r;
    } catch (e) {
      this.drop(r);
      throw e;
    }
  }

  /** Fill and allocate a Service being updated from `old` (the stored object). */
  allocateUpdate(svc: Service, old: Service): Reservation {
    const r = this.begin(keyOf(svc));
    try {
      const s = specOf(svc);
      const o = specOf(old);
      defaultOnRead(o);
      patchAllocatedValues(s, o);
      normalizeClusterIPs(s, o);
      this.initIPFamilyFields(svc, old);
      // cluster IPs: ExternalName → another type allocates; the other way round drops them
      // (dropTypeDependentFields below), which releases them once the write reaches the cache
      if (o.type === 'ExternalName' && s.type !== 'ExternalName') this.allocClusterIPs(svc, r);
      if (needsNodePort(s)) this.updateNodePorts(svc, o, r);
      if (!needsHCNodePort(o) && needsHCNodePort(s)) this.allocHealthCheckNodePort(svc, r);
      dropTypeDependentFields(svc, old);
      return r;
    } catch (e) {
      this.drop(r);
      throw e;
    }
  }

  /** upstream's initIPFamilyFields for a cluster whose only family is IPv4. */
  private initIPFamilyFields(svc: Service, old: Service | undefined): void {
    const s = specOf(svc);
    if (s.type === 'ExternalName') return;
    const o = old?.spec;
    const selectorless = Object.keys(s.selector ?? {}).length === 0;
    if (s.ipFamilyPolicy == null) {
      if (o?.ipFamilyPolicy != null) s.ipFamilyPolicy = o.ipFamilyPolicy;
      else if (s.clusterIP === 'None' && selectorless) s.ipFamilyPolicy = 'RequireDualStack';
      else s.ipFamilyPolicy = 'SingleStack';
    }
    const pre = validateServiceClusterIPsRelatedFields(svc);
    if (pre.length) throw invalid(svc, pre);
    const errs: FieldError[] = [];
    const policy = s.ipFamilyPolicy;
    s.ipFamilies ??= [];
    if (o) {
      if (policy === 'SingleStack') {
        if (sameList(o.clusterIPs, s.clusterIPs) && (s.clusterIPs?.length ?? 0) > 1) s.clusterIPs = s.clusterIPs!.slice(0, 1);
        if (sameList(o.ipFamilies, s.ipFamilies) && s.ipFamilies.length > 1) s.ipFamilies = s.ipFamilies.slice(0, 1);
      } else {
        if ((s.clusterIPs?.length ?? 0) > 0 && s.clusterIPs!.length < (o.clusterIPs?.length ?? 0)) errs.push(field.invalid('spec.ipFamilyPolicy', policy, "must be 'SingleStack' to release the secondary cluster IP"));
        if (s.ipFamilies.length > 0 && s.ipFamilies.length < (o.ipFamilies?.length ?? 0)) errs.push(field.invalid('spec.ipFamilyPolicy', policy, "must be 'SingleStack' to release the secondary IP family"));
      }
    }
    if (policy === 'SingleStack') {
      if (s.clusterIPs?.length === 2) errs.push(field.invalid('spec.ipFamilyPolicy', policy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"));
      if (s.ipFamilies.length === 2) errs.push(field.invalid('spec.ipFamilyPolicy', policy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"));
    }
    for (const [i, ip] of (s.clusterIPs ?? []).entries()) {
      if (ip === 'None') break;
      const fam = serviceIPFamilyOf(ip) ?? 'unknown';
      if (i >= s.ipFamilies.length) {
        if (fam !== 'IPv4') errs.push(invalidRaw(`spec.clusterIPs[${i}]`, goStrings(s.clusterIPs), `${fam} is not configured on this cluster`));
        else s.ipFamilies.push(fam);
      }
    }
    if (errs.length) throw invalid(svc, errs);
    if (s.clusterIP === 'None' && selectorless) {
      if (s.ipFamilies.length === 0) s.ipFamilies = ['IPv4'];
      if (s.ipFamilies.length < 2 && policy !== 'SingleStack') s.ipFamilies.push(s.ipFamilies[0] === 'IPv4' ? 'IPv6' : 'IPv4');
      return;
    }
    if (policy === 'RequireDualStack') errs.push(field.invalid('spec.ipFamilyPolicy', policy, 'this cluster is not configured for dual-stack services'));
    s.ipFamilies.forEach((f, i) => { if (f !== 'IPv4') errs.push(field.invalid(`spec.ipFamilies[${i}]`, f, 'not configured on this cluster')); });
    if (errs.length) throw invalid(svc, errs);
    if (s.ipFamilies.length === 0) s.ipFamilies = ['IPv4'];
  }

  /** upstream's allocClusterIPs: one address per family (here IPv4 only). */
  private allocClusterIPs(svc: Service, r: Reservation): void {
    const s = specOf(svc);
    if (s.type === 'ExternalName' || isHeadless(s)) return;
    const ips = (s.clusterIPs ??= []);
    (s.ipFamilies ?? ['IPv4']).forEach((_fam, i) => {
      if (i >= ips.length) ips.push('');
      const want = ips[i];
      try {
        ips[i] = want === '' ? this.allocateNextIP(r) : this.allocateIP(r, want);
      } catch (e) {
        if (!(e instanceof AllocError)) throw e;
        if (want === '') throw errors.internal(`failed to allocate a serviceIP: ${e.message}`);
        throw invalid(svc, [invalidRaw('spec.clusterIPs', goStrings(ips), `failed to allocate IP ${want}: ${e.message}`)]);
      }
    });
    s.clusterIP = ips[0];
  }

  /** upstream's initNodePorts (create): ports sharing a port number share a node port. */
  private initNodePorts(svc: Service, r: Reservation): void {
    const s = specOf(svc);
    const ports = s.ports ?? [];
    const byPort = new Map<number, number>();
    ports.forEach((p, i) => {
      if (!p.nodePort && !shouldAllocateNodePorts(s)) return; // respect requests only
      const allocated = byPort.get(p.port) ?? 0;
      if (allocated === 0) {
        const requested = ports.find((q) => q.port === p.port && q.nodePort)?.nodePort ?? 0;
        if (requested) {
          this.nodePortOrInvalid(svc, r, i, requested);
          p.nodePort = requested;
        } else {
          p.nodePort = this.nextNodePort(r);
        }
        byPort.set(p.port, p.nodePort);
      } else if (p.nodePort !== allocated) {
        if (!p.nodePort) p.nodePort = allocated;
        else this.nodePortOrInvalid(svc, r, i, p.nodePort);
      }
    });
  }

  /** upstream's updateNodePorts: keep the old ones, allocate new requests and missing ones. */
  private updateNodePorts(svc: Service, o: Spec, r: Reservation): void {
    const s = specOf(svc);
    const oldPorts = new Set(needsNodePort(o) ? nodePortsOf(o) : []);
    const seen = new Set<string>();
    const taken = new Set<number>();
    (s.ports ?? []).forEach((p, i) => {
      if (!p.nodePort && !shouldAllocateNodePorts(s)) return;
      if (p.nodePort) {
        if (!oldPorts.has(p.nodePort) && !taken.has(p.nodePort)) {
          this.nodePortOrInvalid(svc, r, i, p.nodePort);
          taken.add(p.nodePort);
        }
      } else {
        p.nodePort = this.nextNodePort(r);
      }
      const key = `${p.protocol ?? ''} ${p.nodePort}`;
      if (seen.has(key)) throw errors.internal(`duplicate nodePort: {${key}}`);
      seen.add(key);
    });
  }

  private nodePortOrInvalid(svc: Service, r: Reservation, i: number, port: number): void {
    try {
      this.allocatePort(r, port);
    } catch (e) {
      if (!(e instanceof AllocError)) throw e;
      throw invalid(svc, [field.invalid(`spec.ports[${i}].nodePort`, port, e.message)]);
    }
  }

  private nextNodePort(r: Reservation): number {
    try {
      return this.allocateNextPort(r);
    } catch (e) {
      if (!(e instanceof AllocError)) throw e;
      throw errors.internal(`failed to allocate a nodePort: ${e.message}`);
    }
  }

  private allocHealthCheckNodePort(svc: Service, r: Reservation): void {
    const s = specOf(svc);
    const hc = s.healthCheckNodePort ?? 0;
    try {
      // the Service's own node ports count as allocated, as in upstream's bitmap
      if (hc && nodePortsOf(s).includes(hc)) throw new AllocError('provided port is already allocated');
      if (hc) this.allocatePort(r, hc);
      else s.healthCheckNodePort = this.allocateNextPort(r);
    } catch (e) {
      if (!(e instanceof AllocError)) throw e;
      throw errors.internal(hc ? `failed to allocate requested HealthCheck NodePort ${hc}: ${e.message}` : `failed to allocate a HealthCheck NodePort ${hc}: ${e.message}`);
    }
  }
}

function hold(m: Map<number, Set<string>>, v: number, owner: string): void {
  let s = m.get(v);
  if (!s) m.set(v, (s = new Set()));
  s.add(owner);
}
function unhold(m: Map<number, Set<string>>, v: number, owner: string): void {
  const s = m.get(v);
  if (!s) return;
  s.delete(owner);
  if (s.size === 0) m.delete(v);
}
function unreserve(m: Map<number, number>, v: number): void {
  const n = (m.get(v) ?? 0) - 1;
  if (n > 0) m.set(v, n); else m.delete(v);
}

/** The first offset in [lo, hi) that is free, scanning from a random start and wrapping. */
function scan(lo: number, hi: number, random: () => number, free: (o: number) => boolean): number | undefined {
  const n = hi - lo;
  if (n <= 0) return undefined;
  const start = Math.floor(random() * n) % n;
  for (let i = 0; i < n; i++) {
    const o = lo + ((start + i) % n);
    if (free(o)) return o;
  }
  return undefined;
}

// ---- upstream's service strategy helpers (rest.go, strategy.go) --------------------------------

/** Services stored before clusterIPs / ipFamilies existed get them on read (upstream's defaultOnRead). */
function defaultOnRead(s: Spec): void {
  if (s.clusterIP && !s.clusterIPs?.length) s.clusterIPs = [s.clusterIP];
  if (!needsClusterIP(s) || (s.ipFamilies?.length ?? 0) > 0) return;
  if (s.clusterIP === 'None') {
    const selectorless = Object.keys(s.selector ?? {}).length === 0;
    s.ipFamilyPolicy = selectorless ? 'RequireDualStack' : 'SingleStack';
    s.ipFamilies = selectorless ? ['IPv4', 'IPv6'] : ['IPv4'];
  } else if (s.clusterIPs?.length) {
    s.ipFamilies = s.clusterIPs.map((ip) => serviceIPFamilyOf(ip) === 'IPv6' ? 'IPv6' : 'IPv4');
    s.ipFamilyPolicy = s.ipFamilies.length === 1 ? 'SingleStack' : 'RequireDualStack';
  }
}

/** A client that resubmits what it created (without the values allocated for it) keeps them. */
function patchAllocatedValues(s: Spec, o: Spec): void {
  if (needsClusterIP(o) && needsClusterIP(s)) {
    if (!s.clusterIP) s.clusterIP = o.clusterIP;
    if (!s.clusterIPs?.length && o.clusterIPs?.length) s.clusterIPs = [...o.clusterIPs];
  }
  if (needsNodePort(o) && needsNodePort(s)) {
    const newUsed = new Set(nodePortsOf(s));
    const used = new Set(nodePortsOf(o).filter((p) => newUsed.has(p)));
    const byName = new Map<string, number>();
    for (const p of o.ports ?? []) byName.set(p.name ?? '', p.nodePort ?? 0);
    for (const p of s.ports ?? []) {
      if (p.nodePort) continue;
      const v = byName.get(p.name ?? '') ?? 0;
      if (v && !used.has(v)) p.nodePort = v;
    }
  }
  if (needsHCNodePort(o) && needsHCNodePort(s) && !s.healthCheckNodePort) s.healthCheckNodePort = o.healthCheckNodePort;
}

/** upstream's normalizeClusterIPs for an update: keep clusterIP and clusterIPs in step. */
function normalizeClusterIPs(s: Spec, o: Spec): void {
  if (o.clusterIPs?.length && !s.clusterIPs?.length && (o.clusterIP ?? '') === (s.clusterIP ?? '')) s.clusterIPs = [...o.clusterIPs];
  if ((o.clusterIP ?? '') !== (s.clusterIP ?? '')) {
    if (o.clusterIP && !s.clusterIP) {
      if (sameList(o.clusterIPs, s.clusterIPs)) delete s.clusterIPs;
    } else if (sameList(o.clusterIPs, s.clusterIPs)) {
      s.clusterIPs = [s.clusterIP ?? ''];
    }
  }
}

/** Fields that no longer apply to the new type, and that the client did not change, are dropped. */
function dropTypeDependentFields(svc: Service, old: Service): void {
  const s = specOf(svc);
  const o = specOf(old);
  if (needsClusterIP(o) && !needsClusterIP(s)) {
    if (sameClusterIPs(o, s)) { delete s.clusterIP; delete s.clusterIPs; }
    if (sameList(o.ipFamilies, s.ipFamilies)) delete s.ipFamilies;
    if ((o.ipFamilyPolicy ?? '') === (s.ipFamilyPolicy ?? '')) delete s.ipFamilyPolicy;
  }
  if (needsNodePort(o) && !needsNodePort(s)) {
    const oldPorts = new Set(nodePortsOf(o));
    if (nodePortsOf(s).every((p) => oldPorts.has(p))) for (const p of s.ports ?? []) delete p.nodePort;
  }
  if (needsHCNodePort(o) && !needsHCNodePort(s) && (o.healthCheckNodePort ?? 0) === (s.healthCheckNodePort ?? 0)) delete s.healthCheckNodePort;
  if (o.type === 'LoadBalancer' && s.type !== 'LoadBalancer' && s.allocateLoadBalancerNodePorts != null && s.allocateLoadBalancerNodePorts === o.allocateLoadBalancerNodePorts) delete s.allocateLoadBalancerNodePorts;
  if (o.type === 'LoadBalancer' && s.type !== 'LoadBalancer' && (o.loadBalancerClass ?? null) === (s.loadBalancerClass ?? null)) delete s.loadBalancerClass;
  if (externallyAccessible(o) && !externallyAccessible(s) && (o.externalTrafficPolicy ?? '') === (s.externalTrafficPolicy ?? '')) delete s.externalTrafficPolicy;
  if (s.type !== 'LoadBalancer' && svc.status) svc.status = { ...svc.status, loadBalancer: {} };
}

// ---- wiring into the API server ------------------------------------------------------------------

export interface ServiceAllocationOptions {
  /** ClusterIP range (default 10.43.0.0/16) */
  serviceCIDR?: string;
  /** NodePort range (default 30000-32767) */
  nodePortRange?: string;
}

export interface ServiceAllocation {
  allocator: ServiceAllocator;
  /**
   * create or repair default/kubernetes and its Endpoints and EndpointSlice, then keep them so. The
   * endpoint is advertiseAddress:port; without advertiseAddress, endpointAddressFor(host)
   */
  startKubernetesService(opts: { port: number; host: string; advertiseAddress?: string; intervalMs?: number }): Promise<void>;
  /** points default/kubernetes' endpoints at another address (the advertise address) and reconciles */
  setAdvertiseAddress(address: string): Promise<void>;
  stop(): void;
}

/** The allocation installed on each registry, for setKubernetesServiceAddress. */
const installed = new WeakMap<Registry, ServiceAllocation>();

/**
 * Points the endpoints of default/kubernetes of the API server owning `registry` at `address`
 * (`kyb server --advertise-address`), at once. Until the API server's options carry the advertise
 * address, the CLI calls this right after startApiServer.
 */
export async function setKubernetesServiceAddress(registry: Registry, address: string): Promise<void> {
  const a = installed.get(registry);
  if (!a) throw new Error('no service allocation is installed on this registry');
  await a.setAdvertiseAddress(address);
}

/**
 * Install the Service write hook on the registry (whose watch cache must be started): the
 * allocator's state is built from the Services in the cache and follows it from then on.
 */
export function installServiceAllocation(registry: Registry, opts: ServiceAllocationOptions = {}): ServiceAllocation {
  const def = findResource('', 'v1', 'services')!;
  const allocator = new ServiceAllocator({ serviceCIDR: opts.serviceCIDR, nodePortRange: opts.nodePortRange, appliedRev: () => registry.cache.rev });
  const cache = registry.resourceCache(def);
  const stored = [...cache.objects.values()].map((e) => e.obj as Service);
  for (const svc of stored) allocator.observe(keyOf(svc), svc);
  for (const p of allocator.problems(stored)) process.stderr.write(`kyb: services: ${p}\n`);
  const listener = (ev: CacheEvent) => allocator.observe(keyOf(ev.entry.obj), ev.type === 'DELETED' ? undefined : ev.entry.obj as Service, ev.rev);
  cache.listeners.add(listener);
  registry.writeHooks.set('Service', {
    async beginCreate(obj) {
      await registry.cache.sync(); // see values freed by writes that already returned
      const r = allocator.allocateCreate(obj as Service);
      return (rev) => allocator.finish(r, rev);
    },
    beginUpdate(next, cur) {
      const r = allocator.allocateUpdate(next as Service, clone(cur) as Service);
      return (rev) => allocator.finish(r, rev);
    },
  });
  let kubernetes: KubernetesService | undefined;
  let advertise: string | undefined;
  const allocation: ServiceAllocation = {
    allocator,
    async startKubernetesService({ port, host, advertiseAddress, intervalMs }) {
      if (advertiseAddress) advertise = checkAdvertiseAddress(advertiseAddress);
      kubernetes = new KubernetesService(registry, { clusterIP: formatIPv4(allocator.cidr.first), port, address: advertise ?? endpointAddressFor(host) });
      await kubernetes.reconcile();
      kubernetes.start(intervalMs ?? 10_000);
    },
    async setAdvertiseAddress(address) {
      advertise = checkAdvertiseAddress(address);
      if (!kubernetes) return; // used when it starts
      kubernetes.address = advertise;
      await kubernetes.reconcile();
    },
    stop() {
      kubernetes?.stop();
      cache.listeners.delete(listener);
      registry.writeHooks.delete('Service');
      installed.delete(registry);
    },
  };
  installed.set(registry, allocation);
  return allocation;
}

function checkAdvertiseAddress(address: string): string {
  const a = address.trim();
  if (parseIPv4(a) === undefined || a === '0.0.0.0') throw new Error(`advertise address ${JSON.stringify(address)} is not a usable IPv4 address`);
  return a;
}

// ---- the kubernetes Service ----------------------------------------------------------------------

/**
 * The address other hosts and pods reach this API server at: the bind address, or for 0.0.0.0 / ::
 * the IPv4 address of the interface with the default route (as upstream's ChooseHostInterface), else
 * the first non-loopback IPv4 address, else 127.0.0.1.
 */
export function endpointAddressFor(bind: string): string {
  if (bind === 'localhost') return '127.0.0.1';
  if (bind && bind !== '0.0.0.0' && bind !== '::') return bind;
  const ifs = networkInterfaces();
  const v4 = (name: string) => (ifs[name] ?? []).find((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'))?.address;
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 7 && f[1] === '00000000' && f[7] === '00000000') {
        const a = v4(f[0]);
        if (a) return a;
      }
    }
  } catch { /* no /proc: fall through */ }
  for (const name of Object.keys(ifs)) {
    const a = v4(name);
    if (a) return a;
  }
  return '127.0.0.1';
}

/**
 * default/kubernetes (ClusterIP = the first address of the range, port 443 `https` → the API
 * server's port), its Endpoints and its EndpointSlice, created or repaired at start and every
 * interval after, as upstream's "kubernetes" service controller and endpoint reconciler do. The
 * Service has no selector, so the Endpoints and EndpointSlice controllers leave it alone; the
 * Endpoints carry endpointslice.kubernetes.io/skip-mirror so no mirrored slice is made.
 */
export class KubernetesService {
  private timer?: NodeJS.Timeout;
  private readonly defs: { svc: ResourceDef; ep: ResourceDef; slice: ResourceDef };

  constructor(private readonly registry: Registry, private readonly want: { clusterIP: string; port: number; address: string }) {
    this.defs = {
      svc: findResource('', 'v1', 'services')!,
      ep: findResource('', 'v1', 'endpoints')!,
      slice: findResource('discovery.k8s.io', 'v1', 'endpointslices')!,
    };
  }

  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => {
      this.reconcile().catch((e: unknown) => process.stderr.write(`kyb: kubernetes service: ${(e as Error)?.message ?? e}\n`));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** the address the Endpoints and EndpointSlice point at */
  get address(): string { return this.want.address; }
  set address(a: string) { this.want.address = a; }

  async reconcile(): Promise<void> {
    await this.reconcileService();
    await this.reconcileEndpoints();
    await this.reconcileEndpointSlice();
  }

  private servicePorts(): core.ServicePort[] {
    return [{ name: 'https', port: 443, protocol: 'TCP', targetPort: this.want.port }];
  }

  private async reconcileService(): Promise<void> {
    const { registry, defs } = this;
    const desired: Service = {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
      spec: { type: 'ClusterIP', clusterIP: this.want.clusterIP, clusterIPs: [this.want.clusterIP], ports: this.servicePorts(), sessionAffinity: 'None' },
    };
    let cur: Service | undefined;
    try { cur = (await registry.get(defs.svc, 'default', 'kubernetes')).obj as Service; } catch (e) { if (!isStatusError(e, 'NotFound')) throw e; }
    if (cur && cur.spec?.clusterIP !== this.want.clusterIP) {
      // the service CIDR changed: the Service moves to the new range's first address
      await registry.delete(defs.svc, 'default', 'kubernetes').catch((e: unknown) => { if (!isStatusError(e, 'NotFound')) throw e; });
      cur = undefined;
    }
    if (!cur) {
      await registry.create(defs.svc, 'default', desired).catch((e: unknown) => { if (!isStatusError(e, 'AlreadyExists')) throw e; });
      return;
    }
    const ports = this.servicePorts();
    if (cur.spec?.type === 'ClusterIP' && JSON.stringify(cur.spec?.ports) === JSON.stringify(ports)) return;
    await registry.guaranteedUpdate(defs.svc, 'default', 'kubernetes', (c) => {
      const n = clone(c) as Service;
      specOf(n).type = 'ClusterIP';
      specOf(n).ports = ports;
      const out = registry.prepareUpdate(defs.svc, c, n, undefined);
      delete out.metadata!.resourceVersion;
      return out;
    });
  }

  private async upsert(def: ResourceDef, desired: KObject, same: (cur: KObject) => boolean, apply: (cur: KObject) => void): Promise<void> {
    const { registry } = this;
    const existing = registry.peek(def, 'default', 'kubernetes');
    if (existing && same(existing.obj)) return;
    await registry.guaranteedUpdate(def, 'default', 'kubernetes', (c) => {
      const n = clone(c);
      apply(n);
      const out = registry.prepareUpdate(def, c, n, undefined);
      delete out.metadata!.resourceVersion;
      return out;
    }, { createIfMissing: () => clone(desired) });
  }

  private async reconcileEndpoints(): Promise<void> {
    const subsets: core.EndpointSubset[] = [{ addresses: [{ ip: this.want.address }], ports: [{ name: 'https', port: this.want.port, protocol: 'TCP' }] }];
    const labels = { 'endpointslice.kubernetes.io/skip-mirror': 'true' };
    await this.upsert(this.defs.ep,
      { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default', labels }, subsets },
      (cur) => JSON.stringify(cur.subsets) === JSON.stringify(subsets) && cur.metadata?.labels?.['endpointslice.kubernetes.io/skip-mirror'] === 'true',
      (n) => { n.subsets = subsets; n.metadata = { ...n.metadata, labels: { ...n.metadata?.labels, ...labels } }; });
  }

  private async reconcileEndpointSlice(): Promise<void> {
    const addressType = serviceIPFamilyOf(this.want.address) ?? 'IPv4';
    const endpoints = [{ addresses: [this.want.address], conditions: { ready: true } }];
    const ports = [{ name: 'https', port: this.want.port, protocol: 'TCP' }];
    const labels = { 'kubernetes.io/service-name': 'kubernetes' };
    await this.upsert(this.defs.slice,
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'kubernetes', namespace: 'default', labels }, addressType, endpoints, ports },
      (cur) => cur.addressType === addressType && JSON.stringify(cur.endpoints) === JSON.stringify(endpoints) && JSON.stringify(cur.ports) === JSON.stringify(ports)
        && cur.metadata?.labels?.['kubernetes.io/service-name'] === 'kubernetes',
      (n) => { n.addressType = addressType; n.endpoints = endpoints; n.ports = ports; n.metadata = { ...n.metadata, labels: { ...n.metadata?.labels, ...labels } }; });
  }
}
