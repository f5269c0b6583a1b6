// What the proxy programs, independent of the backend: one ServicePortPlan per (Service, port),
// computed from the Service and the EndpointSlices labelled with its name, the way kube-proxy reads
// them:
//
// - Services of type ExternalName, headless ones (clusterIP None) and ones without an IPv4 cluster IP
//   yet are skipped; SCTP ports are skipped (not supported here).
// - Endpoints come from IPv4 EndpointSlices whose port has the Service port's name and protocol; the
//   first address of an endpoint is used; duplicates (same ip:port in two slices) count once.
// - Conditions as upstream: ready unset means ready, serving unset means "same as ready",
//   terminating unset means false. Traffic goes to the ready endpoints; when there is none, to the
//   endpoints that are serving and terminating (graceful termination); otherwise the Service has no
//   endpoints and its addresses reject connections.
// - Destinations: the cluster IP at `port`; spec.externalIPs and (type LoadBalancer)
//   status.loadBalancer.ingress[].ip at `port`; `nodePort` on every local address (NodePort and
//   LoadBalancer types).
// - Traffic policies, as kube-proxy: an endpoint is local when its EndpointSlice `nodeName` is this
//   node's name. internalTrafficPolicy Local sends ClusterIP traffic only to local endpoints;
//   externalTrafficPolicy Local (Services reachable from outside: node port, externalIPs, LoadBalancer
//   ingress) sends external traffic only to local endpoints and keeps its source address. Local
//   endpoints are chosen the same way as all endpoints (ready, else serving-terminating), among this
//   node's. The plan keeps both lists; the backends decide per path (see nft-backend.ts).
// - Two Services must not program the same destination (address.protocol.port, or protocol.nodePort):
//   the kernel transaction would fail. Claims hands each destination to the first claimant (the older
//   Service in a full sync) and leaves it out of the other plan, with a warning.
import type { KObject } from '../api/types.js';

export type Protocol = 'tcp' | 'udp';

export interface Endpoint { ip: string; port: number }

export interface ServicePortPlan {
  /** `namespace/name/protocol/portName` (portName may be empty) */
  key: string;
  /** `namespace/name` */
  serviceKey: string;
  namespace: string;
  name: string;
  portName: string;
  protocol: Protocol;
  port: number;
  /** the Service's cluster IP (used for the masquerade rule even when the destination is claimed elsewhere) */
  clusterIP: string;
  /** cluster IPs reached at `port` through the cluster path (the cluster IP, unless another Service owns it) */
  clusterIPs: string[];
  /** externalIPs and LoadBalancer ingress IPs, reached at `port` through the external path (masqueraded) */
  externalIPs: string[];
  /** the node port, reached on every local address through the external path */
  nodePort?: number;
  /** endpoints that receive traffic, sorted; empty: the destinations reject connections */
  endpoints: Endpoint[];
  /** sessionAffinity ClientIP timeout; undefined: no affinity */
  affinityTimeoutSeconds?: number;
  /** internalTrafficPolicy Local: ClusterIP traffic goes to localEndpoints only; with none it is dropped */
  internalLocal?: true;
  /**
   * externalTrafficPolicy Local (set only when the port is reachable from outside: node port,
   * externalIPs or ingress IPs): external traffic goes to localEndpoints only, unmasqueraded; with
   * none it is dropped. Traffic to those destinations from pods and from this host still goes to
   * all endpoints (kube-proxy's short-circuit).
   */
  externalLocal?: true;
  /** this node's endpoints (ready, else serving-terminating), sorted; set when a Local policy applies */
  localEndpoints?: Endpoint[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

const ipv4Re = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export function isIPv4(s: unknown): s is string { return typeof s === 'string' && ipv4Re.test(s); }

/** `10.42.0.0/16` → true; anything that is not an IPv4 CIDR → false */
export function isIPv4CIDR(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const [ip, bits, ...rest] = s.split('/');
  return rest.length === 0 && isIPv4(ip) && /^\d{1,2}$/.test(bits ?? '') && Number(bits) <= 32;
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? v as Obj : {});
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The endpoints of one Service port, merged over slices, before selection. */
interface Candidate extends Endpoint { ready: boolean; serving: boolean; terminating: boolean; local?: boolean }

function candidates(slices: readonly KObject[], portName: string, protocol: string, nodeName?: string): Candidate[] {
  const byAddr = new Map<string, Candidate>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const sp = asArr(slice.ports).map(asObj).find((p) => (p.name ?? '') === portName && String(p.protocol ?? 'TCP').toLowerCase() === protocol);
    const port = Number(sp?.port);
    if (!sp || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    for (const e of asArr(slice.endpoints).map(asObj)) {
      const ip = asArr(e.addresses)[0];
      if (!isIPv4(ip)) continue;
      const c = asObj(e.conditions);
      const ready = c.ready !== false;
      const cand: Candidate = { ip, port, ready, serving: c.serving === undefined || c.serving === null ? ready : c.serving !== false, terminating: c.terminating === true };
      if (nodeName !== undefined && e.nodeName === nodeName) cand.local = true;
      const k = `${ip}:${port}`;
      const prev = byAddr.get(k);
      if (!prev) byAddr.set(k, cand);
      else {
        const merged: Candidate = { ip, port, ready: prev.ready || cand.ready, serving: prev.serving || cand.serving, terminating: prev.terminating && cand.terminating };
        if (prev.local || cand.local) merged.local = true;
        byAddr.set(k, merged);
      }
    }
  }
  return [...byAddr.values()];
}

/** Ready endpoints; else serving-and-terminating ones (upstream's fallback); sorted by address. */
export function selectEndpoints(cands: readonly Candidate[]): Endpoint[] {
  let chosen = cands.filter((c) => c.ready);
  if (chosen.length === 0) chosen = cands.filter((c) => c.serving && c.terminating);
  return chosen.map(({ ip, port }) => ({ ip, port })).sort(compareEndpoints);
}

function ipNum(ip: string): number { return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0); }
function compareEndpoints(a: Endpoint, b: Endpoint): number { return ipNum(a.ip) - ipNum(b.ip) || a.port - b.port; }

function uniqSorted(ips: string[]): string[] { return [...new Set(ips)].sort((a, b) => ipNum(a) - ipNum(b)); }

/** Why a Service gets no plans (for logs), or undefined when it is proxied. */
export function skipReason(svc: KObject): string | undefined {
  const spec = asObj(svc.spec);
  if (spec.type === 'ExternalName') return 'type ExternalName';
  const ip = spec.clusterIP;
  if (ip === 'None') return 'headless';
  if (!isIPv4(ip)) return ip ? `cluster IP ${String(ip)} is not IPv4` : 'no cluster IP yet';
  return undefined;
}

/**
 * The plans for every TCP/UDP port of a Service, given the slices labelled with its name. nodeName
 * is this node's name (endpoints whose `nodeName` matches are local); without it none is.
 */
export function buildServicePlans(svc: KObject, slices: readonly KObject[], nodeName?: string): ServicePortPlan[] {
  if (skipReason(svc)) return [];
  const namespace = svc.metadata?.namespace ?? 'default';
  const name = svc.metadata?.name ?? '';
  const spec = asObj(svc.spec);
  const clusterIP = spec.clusterIP as string;
  const type = String(spec.type ?? 'ClusterIP');
  const external = asArr(spec.externalIPs).filter(isIPv4);
  if (type === 'LoadBalancer') {
    for (const ing of asArr(asObj(asObj(svc.status).loadBalancer).ingress).map(asObj)) if (isIPv4(ing.ip)) external.push(ing.ip);
  }
  const externalIPs = uniqSorted(external.filter((ip) => ip !== clusterIP));
  let affinityTimeoutSeconds: number | undefined;
  if (spec.sessionAffinity === 'ClientIP') {
    const t = Number(asObj(asObj(spec.sessionAffinityConfig).clientIP).timeoutSeconds);
    affinityTimeoutSeconds = Number.isInteger(t) && t > 0 ? Math.min(t, 86400) : 10800;
  }
  const internalLocal = spec.internalTrafficPolicy === 'Local';
  const externalPolicyLocal = spec.externalTrafficPolicy === 'Local';
  const plans: ServicePortPlan[] = [];
  for (const p of asArr(spec.ports).map(asObj)) {
    const protocol = String(p.protocol ?? 'TCP').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') continue;
    const port = Number(p.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) continue;
    const portName = typeof p.name === 'string' ? p.name : '';
    const np = Number(p.nodePort);
    const nodePort = (type === 'NodePort' || type === 'LoadBalancer') && Number.isInteger(np) && np > 0 && np < 65536 ? np : undefined;
    const cands = candidates(slices, portName, protocol, nodeName);
    const plan: ServicePortPlan = {
      key: `${namespace}/${name}/${protocol}/${portName}`,
      serviceKey: `${namespace}/${name}`,
      namespace, name, portName, protocol, port, clusterIP,
      clusterIPs: [clusterIP],
      externalIPs,
      endpoints: selectEndpoints(cands),
    };
    if (nodePort !== undefined) plan.nodePort = nodePort;
    if (affinityTimeoutSeconds !== undefined) plan.affinityTimeoutSeconds = affinityTimeoutSeconds;
    const externalLocal = externalPolicyLocal && (nodePort !== undefined || externalIPs.length > 0);
    if (internalLocal) plan.internalLocal = true;
    if (externalLocal) plan.externalLocal = true;
    if (internalLocal || externalLocal) plan.localEndpoints = selectEndpoints(cands.filter((c) => c.local));
    plans.push(plan);
  }
  return plans;
}

/** A stable string for comparing two plans. */
export function fingerprint(p: ServicePortPlan | undefined): string { return p ? JSON.stringify(p) : ''; }

/** A human name for a plan in comments and logs: `ns/name:port` as kube-proxy prints it. */
export function displayName(p: ServicePortPlan): string {
  return `${p.namespace}/${p.name}${p.portName ? `:${p.portName}` : ''}`;
}

/**
 * Who owns each destination. `claim` filters a plan's destinations down to those free or already
 * its own and records them; `release` frees what a plan held.
 */
export class Claims {
  private readonly owner = new Map<string, string>();
  private readonly held = new Map<string, string[]>();

  claim(plan: ServicePortPlan, warn: (msg: string) => void = () => undefined): ServicePortPlan {
    const mine: string[] = [];
    const take = (k: string, what: string): boolean => {
      const o = this.owner.get(k);
      if (o !== undefined && o !== plan.key) { warn(`${displayName(plan)}: ${what} is already used by ${o}; skipped`); return false; }
      this.owner.set(k, plan.key);
      mine.push(k);
      return true;
    };
    const out: ServicePortPlan = {
      ...plan,
      clusterIPs: plan.clusterIPs.filter((ip) => take(`${ip}/${plan.protocol}/${plan.port}`, `${ip}:${plan.port}/${plan.protocol}`)),
      externalIPs: plan.externalIPs.filter((ip) => take(`${ip}/${plan.protocol}/${plan.port}`, `${ip}:${plan.port}/${plan.protocol}`)),
    };
    if (plan.nodePort !== undefined && !take(`node/${plan.protocol}/${plan.nodePort}`, `node port ${plan.nodePort}/${plan.protocol}`)) delete out.nodePort;
    this.held.set(plan.key, [...(this.held.get(plan.key) ?? []), ...mine]);
    return out;
  }

  release(planKey: string): void {
    for (const k of this.held.get(planKey) ?? []) if (this.owner.get(k) === planKey) this.owner.delete(k);
    this.held.delete(planKey);
  }

  clear(): void { this.owner.clear(); this.held.clear(); }
}

/** Sort order for a full sync: older Services first (they keep contested destinations), then by key. */
export function compareServices(a: KObject, b: KObject): number {
  const ta = String(a.metadata?.creationTimestamp ?? '');
  const tb = String(b.metadata?.creationTimestamp ?? '');
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata?.namespace}/${a.metadata?.name}`;
  const kb = `${b.metadata?.namespace}/${b.metadata?.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
