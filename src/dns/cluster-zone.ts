// ClusterZone: the record logic of cluster DNS, with no I/O. It holds what the informers saw
// (Services, EndpointSlices, Namespaces) in small indexes and answers one question at a time with
// the records, the response code and the authority section, following the Kubernetes DNS
// specification (github.com/kubernetes/dns docs/specification.md, schema 1.1.0) and, where the
// specification is silent, what CoreDNS's kubernetes plugin does (`pods insecure` mode):
//
//   <zone>                              SOA, NS ns.dns.<zone>
//   dns-version.<zone>                  TXT "1.1.0"
//   ns.dns.<zone>                       A of the kube-dns Service (else the server's own addresses)
//   svc.<zone>, pod.<zone>, dns.<zone>  exist, no records (NODATA)
//   <ns>.svc|pod.<zone>                 exist while the namespace exists (NODATA), else NXDOMAIN
//   <svc>.<ns>.svc.<zone>               ClusterIP: A/AAAA of spec.clusterIPs; SRV for every port
//                                       (target: the Service name). Headless: A/AAAA of every ready
//                                       endpoint; SRV endpoint × port (target: the endpoint name);
//                                       no ready endpoint → NXDOMAIN (the specification's words).
//                                       ExternalName: CNAME <externalName>.
//   _<port>._<proto>.<svc>.<ns>.svc     SRV (and A/AAAA) for the ports with that name and protocol;
//                                       none → NXDOMAIN. Unnamed ports only appear in the SRV set
//                                       of the bare Service name.
//   <ep>.<svc>.<ns>.svc.<zone>          A/AAAA of the ready endpoints whose hostname is <ep>; an
//                                       endpoint without spec hostname is named by its IP with dashes
//                                       (10-42-0-5), as CoreDNS does, so headless SRV targets resolve.
//   a-b-c-d.<ns>.pod.<zone>             A a.b.c.d (computed from the name, no pod lookup), while the
//                                       namespace exists; IPv6 with dashes (fd00--1) → AAAA.
//   d.c.b.a.in-addr.arpa (ip6.arpa)     PTR to the Service of a ClusterIP, else to the endpoint
//                                       names carrying that IP (every Service's ready endpoints).
//
// NXDOMAIN versus NODATA: a name that exists but has no record of the asked type is NODATA (NOERROR,
// empty answer, the zone's SOA in the authority section, so resolvers cache the negative answer for
// the SOA minimum = ttl); a name that does not exist is NXDOMAIN, also with the SOA. AAAA for a
// v4-only Service is therefore NODATA. A CNAME answers every type but CNAME itself is followed
// inside the zone (the target's records are appended); a target outside the zone is returned in
// `chase` for the server to resolve upstream when forwarding is on. Comparisons are
// case-insensitive; owner names of answers keep the case of the question (0x20-safe).
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer } from 'dns-packet';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KObject } from '../api/types.js';

export const DNS_SCHEMA_VERSION = '1.1.0';
/** EndpointSlice label naming the Service a slice belongs to */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** legacy annotation with the meaning of spec.publishNotReadyAddresses */
const TOLERATE_UNREADY = 'service.alpha.kubernetes.io/tolerate-unready-endpoints';

export type ServiceObj = Service & KObject;
export type EndpointSliceObj = EndpointSlice & KObject;

export interface ZoneOptions {
  /** the cluster domain, e.g. cluster.local */
  domain?: string;
  /** TTL of every answer and the SOA minimum (negative caching); default 5 s as CoreDNS */
  ttl?: number;
  /** namespace/name of the Service that publishes this server; default kube-system/kube-dns */
  dnsService?: { namespace: string; name: string };
  /** addresses for ns.dns.<zone> while that Service does not exist */
  nameServerAddresses?: string[];
  /** seconds since the epoch, for the SOA serial (tests) */
  now?: () => number;
  /** shuffle A/AAAA answers holding several addresses; default true */
  shuffle?: boolean;
}

/** The outcome of one question. */
export type ZoneResult =
  | {
      kind: 'answer';
      rcode: 'NOERROR' | 'NXDOMAIN';
      answers: Answer[];
      authorities: Answer[];
      additionals: Answer[];
      /** a CNAME led outside the zone: resolve this upstream and append (when forwarding is on) */
      chase?: { name: string; type: string };
    }
  /** not a cluster name; reverse: an in-addr.arpa / ip6.arpa name we hold nothing for */
  | { kind: 'outside'; reverse: boolean; reverseZone?: string };

interface PortInfo { name: string; protocol: string; port: number }

interface EndpointView {
  ip: string;
  v6: boolean;
  /** hostname, else the IP with dashes */
  label: string;
  ports: PortInfo[];
}

interface ServiceEntry {
  namespace: string;
  name: string;
  kind: 'ClusterIP' | 'Headless' | 'ExternalName';
  clusterIPs: string[];
  externalName: string;
  ports: PortInfo[];
  publishNotReady: boolean;
}

interface SliceEntry { svcKey: string; addressType: string; endpoints: Array<{ ips: string[]; hostname?: string; ready: boolean }>; ports: PortInfo[] }

/** What exists at one name: the records of each type (empty node = NODATA). */
interface NameNode {
  a?: string[];
  aaaa?: string[];
  srv?: Array<{ priority: number; weight: number; port: number; target: string }>;
  srvExtra?: Answer[];
  ptr?: string[];
  txt?: string[];
  cname?: string;
  soa?: boolean;
  ns?: string[];
}

const lc = (s: string): string => s.toLowerCase();
const trimDot = (s: string): string => (s.endsWith('.') ? s.slice(0, -1) : s);

/** "10.42.0.5" → "10-42-0-5"; "fd00::1" → "fd00--1" */
export function dashedIP(ip: string): string { return ip.replace(/[.:]/g, '-'); }

/** The IP of a reverse name (full names only), or undefined. */
export function reverseToIP(name: string): { ip: string; zone: string } | undefined {
  const n = lc(trimDot(name));
  if (n.endsWith('.in-addr.arpa')) {
    const parts = n.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4) return undefined;
    const ip = parts.reverse().join('.');
    return isIPv4(ip) && parts.every((p) => p === String(Number(p))) ? { ip, zone: 'in-addr.arpa' } : undefined;
  }
  if (n.endsWith('.ip6.arpa')) {
    const nib = n.slice(0, -'.ip6.arpa'.length).split('.');
    if (nib.length !== 32 || !nib.every((x) => /^[0-9a-f]$/.test(x))) return undefined;
    const hex = nib.reverse().join('');
    const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
    return { ip: canonicalIP(groups.join(':')), zone: 'ip6.arpa' };
  }
  return undefined;
}

/** A canonical text form, so the same address always compares equal (v6 compressed, lowercase). */
export function canonicalIP(ip: string): string {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  try { return new URL(`http://[${ip}]/`).hostname.slice(1, -1); } catch { return lc(ip); }
}

export class ClusterZone {
  readonly domain: string;
  readonly ttl: number;
  private readonly dnsSvcKey: string;
  private readonly nsFallback: string[];
  private readonly now: () => number;
  private readonly shuffle: boolean;
  private serialValue: number;

  private readonly services = new Map<string, ServiceEntry>();          // ns/name
  private readonly slices = new Map<string, SliceEntry>();              // ns/sliceName
  private readonly slicesBySvc = new Map<string, Set<string>>();        // ns/svc → slice keys
  private readonly namespaces = new Set<string>();
  private readonly svcCountByNs = new Map<string, number>();
  private readonly endpoints = new Map<string, EndpointView[]>();       // ns/svc → ready endpoints
  private readonly ptrByClusterIP = new Map<string, Set<string>>();     // ip → svc fqdns
  private readonly ptrByEndpointIP = new Map<string, Map<string, Set<string>>>(); // ip → svcKey → fqdns
  private readonly svcPtrIPs = new Map<string, string[]>();             // svcKey → endpoint IPs it contributed

  constructor(o: ZoneOptions = {}) {
    this.domain = lc(trimDot(o.domain ?? 'cluster.local'));
    this.ttl = o.ttl ?? 5;
    const d = o.dnsService ?? { namespace: 'kube-system', name: 'kube-dns' };
    this.dnsSvcKey = `${d.namespace}/${d.name}`;
    this.nsFallback = o.nameServerAddresses ?? [];
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
    this.shuffle = o.shuffle ?? true;
    this.serialValue = this.now();
  }

  /** The SOA serial: the time of the last change, in seconds. */
  get serial(): number { return this.serialValue; }

  /** Counts changes; a cache of answers is valid while this stays the same. */
  generation = 0;

  private touch(): void { this.serialValue = Math.max(this.serialValue, this.now()); this.generation++; }

  // ---- feeding --------------------------------------------------------------------------------

  upsertNamespace(obj: KObject): void {
    const n = obj.metadata?.name;
    if (n) { this.namespaces.add(lc(n)); this.touch(); }
  }

  deleteNamespace(obj: KObject): void {
    const n = obj.metadata?.name;
    if (n) { this.namespaces.delete(lc(n)); this.touch(); }
  }

  upsertService(svc: ServiceObj): void {
    const ns = svc.metadata?.namespace, name = svc.metadata?.name;
    if (!ns || !name) return;
    const key = lc(`${ns}/${name}`);
    const old = this.services.get(key);
    if (old) this.unindexClusterIPs(old);
    const spec = svc.spec ?? {};
    const type = spec.type ?? 'ClusterIP';
    const ips = (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [])
      .filter((ip) => ip && ip !== 'None' && (isIPv4(ip) || isIPv6(ip))).map(canonicalIP);
    const entry: ServiceEntry = {
      namespace: lc(ns), name: lc(name),
      kind: type === 'ExternalName' ? 'ExternalName' : spec.clusterIP === 'None' ? 'Headless' : 'ClusterIP',
      clusterIPs: ips,
      externalName: lc(trimDot(spec.externalName ?? '')),
      ports: (spec.ports ?? []).map((p) => ({ name: lc(p.name ?? ''), protocol: lc(p.protocol ?? 'TCP'), port: p.port })),
      publishNotReady: spec.publishNotReadyAddresses === true || svc.metadata?.annotations?.[TOLERATE_UNREADY] === 'true',
    };
    if (entry.kind === 'ExternalName') entry.clusterIPs = [];
    if (!old) this.svcCountByNs.set(entry.namespace, (this.svcCountByNs.get(entry.namespace) ?? 0) + 1);
    this.services.set(key, entry);
    if (entry.kind !== 'ExternalName') {
      for (const ip of entry.clusterIPs) {
        let s = this.ptrByClusterIP.get(ip);
        if (!s) this.ptrByClusterIP.set(ip, (s = new Set()));
        s.add(this.svcFqdn(entry));
      }
    }
    this.recompute(key);
    this.touch();
  }

  deleteService(svc: ServiceObj): void {
    const ns = svc.metadata?.namespace, name = svc.metadata?.name;
    if (!ns || !name) return;
    const key = lc(`${ns}/${name}`);
    const old = this.services.get(key);
    if (!old) return;
    this.unindexClusterIPs(old);
    this.services.delete(key);
    const n = (this.svcCountByNs.get(old.namespace) ?? 1) - 1;
    if (n > 0) this.svcCountByNs.set(old.namespace, n); else this.svcCountByNs.delete(old.namespace);
    this.recompute(key);
    this.touch();
  }

  upsertEndpointSlice(slice: EndpointSliceObj): void {
    const ns = slice.metadata?.namespace, name = slice.metadata?.name;
    if (!ns || !name) return;
    const key = lc(`${ns}/${name}`);
    const svcName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    const old = this.slices.get(key);
    if (old) this.detachSlice(key, old.svcKey);
    if (!svcName) {
      // a slice that lost its Service label no longer counts for anyone
      if (old) { this.slices.delete(key); this.recompute(old.svcKey); this.touch(); }
      return;
    }
    const svcKey = lc(`${ns}/${svcName}`);
    const entry: SliceEntry = {
      svcKey,
      addressType: slice.addressType ?? 'IPv4',
      endpoints: (slice.endpoints ?? []).map((e) => ({
        ips: (e.addresses ?? []).filter((ip) => isIPv4(ip) || isIPv6(ip)).map(canonicalIP),
        hostname: e.hostname ? lc(e.hostname) : undefined,
        ready: e.conditions?.ready !== false, // unset means ready (API semantics)
      })),
      ports: (slice.ports ?? []).filter((p) => typeof p.port === 'number')
        .map((p) => ({ name: lc(p.name ?? ''), protocol: lc(p.protocol ?? 'TCP'), port: p.port! })),
    };
    this.slices.set(key, entry);
    let set = this.slicesBySvc.get(svcKey);
    if (!set) this.slicesBySvc.set(svcKey, (set = new Set()));
    set.add(key);
    if (old && old.svcKey !== svcKey) this.recompute(old.svcKey);
    this.recompute(svcKey);
    this.touch();
  }

  deleteEndpointSlice(slice: EndpointSliceObj): void {
    const ns = slice.metadata?.namespace, name = slice.metadata?.name;
    if (!ns || !name) return;
    const key = lc(`${ns}/${name}`);
    const old = this.slices.get(key);
    if (!old) return;
    this.detachSlice(key, old.svcKey);
    this.slices.delete(key);
    this.recompute(old.svcKey);
    this.touch();
  }

  /** Counts, for metrics and tests. */
  size(): { services: number; endpointSlices: number; namespaces: number } {
    return { services: this.services.size, endpointSlices: this.slices.size, namespaces: this.namespaces.size };
  }

  private detachSlice(key: string, svcKey: string): void {
    const set = this.slicesBySvc.get(svcKey);
    if (set) { set.delete(key); if (set.size === 0) this.slicesBySvc.delete(svcKey); }
  }

  private unindexClusterIPs(e: ServiceEntry): void {
    const fq = this.svcFqdn(e);
    for (const ip of e.clusterIPs) {
      const s = this.ptrByClusterIP.get(ip);
      if (s) { s.delete(fq); if (s.size === 0) this.ptrByClusterIP.delete(ip); }
    }
  }

  private svcFqdn(e: { name: string; namespace: string }): string { return `${e.name}.${e.namespace}.svc.${this.domain}`; }

  /** Rebuilds the ready endpoints of one Service and its endpoint PTR records. */
  private recompute(svcKey: string): void {
    const svc = this.services.get(svcKey);
    const views: EndpointView[] = [];
    if (svc && svc.kind !== 'ExternalName') {
      const seen = new Set<string>();
      for (const sk of [...(this.slicesBySvc.get(svcKey) ?? [])].sort()) {
        const sl = this.slices.get(sk)!;
        if (sl.addressType !== 'IPv4' && sl.addressType !== 'IPv6') continue; // FQDN slices carry no IPs
        for (const ep of sl.endpoints) {
          if (!ep.ready && !svc.publishNotReady) continue;
          for (const ip of ep.ips) {
            if (seen.has(ip)) continue;
            seen.add(ip);
            views.push({ ip, v6: ip.includes(':'), label: ep.hostname ?? dashedIP(ip), ports: sl.ports });
          }
        }
      }
    }
    if (views.length) this.endpoints.set(svcKey, views); else this.endpoints.delete(svcKey);
    // endpoint PTRs: drop what this Service contributed, add the new set
    for (const ip of this.svcPtrIPs.get(svcKey) ?? []) {
      const m = this.ptrByEndpointIP.get(ip);
      if (m) { m.delete(svcKey); if (m.size === 0) this.ptrByEndpointIP.delete(ip); }
    }
    if (!svc || views.length === 0) { this.svcPtrIPs.delete(svcKey); return; }
    const ips: string[] = [];
    for (const v of views) {
      let m = this.ptrByEndpointIP.get(v.ip);
      if (!m) this.ptrByEndpointIP.set(v.ip, (m = new Map()));
      let s = m.get(svcKey);
      if (!s) m.set(svcKey, (s = new Set()));
      s.add(`${v.label}.${this.svcFqdn(svc)}`);
      ips.push(v.ip);
    }
    this.svcPtrIPs.set(svcKey, ips);
  }

  // ---- answering ------------------------------------------------------------------------------

  /** Whether a name is the zone or below it. */
  inZone(name: string): boolean {
    const n = lc(trimDot(name));
    return n === this.domain || n.endsWith(`.${this.domain}`);
  }

  /** The zone's SOA record. */
  soa(owner = this.domain): Answer {
    return {
      type: 'SOA', name: owner, ttl: this.ttl, class: 'IN',
      data: { mname: `ns.dns.${this.domain}`, rname: `hostmaster.${this.domain}`, serial: this.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    };
  }

  /** Answers one question (qname as received, qtype as dns-packet names it: 'A', 'SRV', 'UNKNOWN_65'…). */
  lookup(qname: string, qtype: string): ZoneResult {
    const name = trimDot(qname);
    const lname = lc(name);
    if (!this.inZone(lname)) {
      const rev = reverseToIP(lname);
      if (rev) {
        const node = this.reverseNode(rev.ip);
        if (node) return this.respond(name, qtype, node, 0);
      }
      const rz = lname.endsWith('.in-addr.arpa') || lname === 'in-addr.arpa' ? 'in-addr.arpa'
        : lname.endsWith('.ip6.arpa') || lname === 'ip6.arpa' ? 'ip6.arpa' : undefined;
      return { kind: 'outside', reverse: rz !== undefined, reverseZone: rz };
    }
    const node = this.nodeFor(lname);
    if (!node) return { kind: 'answer', rcode: 'NXDOMAIN', answers: [], authorities: [this.soa()], additionals: [] };
    return this.respond(name, qtype, node, 0);
  }

  private respond(owner: string, qtype: string, node: NameNode, depth: number): ZoneResult {
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const ttl = this.ttl;
    if (node.cname && qtype !== 'CNAME') {
      answers.push({ type: 'CNAME', name: owner, ttl, class: 'IN', data: node.cname });
      if (this.inZone(node.cname) && depth < 8) {
        const next = this.nodeFor(node.cname);
        // RFC 6604: the rcode is that of the last name in the chain
        if (!next) return { kind: 'answer', rcode: 'NXDOMAIN', answers, authorities: [this.soa()], additionals };
        const r = this.respond(node.cname, qtype, next, depth + 1);
        if (r.kind !== 'answer') return r;
        return { ...r, answers: [...answers, ...r.answers] };
      }
      if (this.inZone(node.cname)) return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [], additionals };
      return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [], additionals, chase: { name: node.cname, type: qtype } };
    }
    const any = qtype === 'ANY';
    if ((qtype === 'A' || any) && node.a) for (const ip of this.order(node.a)) answers.push({ type: 'A', name: owner, ttl, class: 'IN', data: ip });
    if ((qtype === 'AAAA' || any) && node.aaaa) for (const ip of this.order(node.aaaa)) answers.push({ type: 'AAAA', name: owner, ttl, class: 'IN', data: ip });
    if ((qtype === 'SRV' || any) && node.srv) {
      for (const s of node.srv) answers.push({ type: 'SRV', name: owner, ttl, class: 'IN', data: s });
      additionals.push(...(node.srvExtra ?? []));
    }
    if ((qtype === 'PTR' || any) && node.ptr) for (const p of node.ptr) answers.push({ type: 'PTR', name: owner, ttl, class: 'IN', data: p });
    if ((qtype === 'TXT' || any) && node.txt) for (const t of node.txt) answers.push({ type: 'TXT', name: owner, ttl: 28800, class: 'IN', data: t });
    if ((qtype === 'CNAME' || any) && node.cname) answers.push({ type: 'CNAME', name: owner, ttl, class: 'IN', data: node.cname });
    if ((qtype === 'SOA' || any) && node.soa) answers.push(this.soa(owner));
    if ((qtype === 'NS' || any) && node.ns) {
      for (const n of node.ns) answers.push({ type: 'NS', name: owner, ttl, class: 'IN', data: n });
      for (const ip of this.nameServerIPs()) additionals.push({ type: ip.includes(':') ? 'AAAA' : 'A', name: `ns.dns.${this.domain}`, ttl, class: 'IN', data: ip });
    }
    if (answers.length === 0) return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [this.soa()], additionals: [] };
    return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [], additionals };
  }

  /** Address records in random order, as CoreDNS's loadbalance plugin does, so clients that take
   *  the first address spread over a headless Service's endpoints. */
  private order(ips: string[]): string[] {
    if (!this.shuffle || ips.length < 2) return ips;
    const out = ips.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  private nameServerIPs(): string[] {
    const s = this.services.get(this.dnsSvcKey);
    return s && s.clusterIPs.length ? s.clusterIPs : this.nsFallback;
  }

  private reverseNode(ip: string): NameNode | undefined {
    const svcs = this.ptrByClusterIP.get(ip);
    if (svcs?.size) return { ptr: [...svcs].sort() };
    const eps = this.ptrByEndpointIP.get(ip);
    if (eps?.size) {
      const names = new Set<string>();
      for (const s of eps.values()) for (const n of s) names.add(n);
      return { ptr: [...names].sort() };
    }
    return undefined;
  }

  /** What exists at a lowercased in-zone name; undefined = the name does not exist. */
  private nodeFor(lname: string): NameNode | undefined {
    const labels = lname === this.domain ? [] : lname.slice(0, -(this.domain.length + 1)).split('.');
    if (labels.length === 0) return { soa: true, ns: [`ns.dns.${this.domain}`] };
    const last = labels[labels.length - 1];
    if (labels.length === 1) {
      if (last === 'svc' || last === 'pod' || last === 'dns') return {};
      if (last === 'dns-version') return { txt: [DNS_SCHEMA_VERSION] };
      return undefined;
    }
    if (last === 'dns') {
      if (labels.length === 2 && labels[0] === 'ns') {
        const ips = this.nameServerIPs();
        return { a: ips.filter((i) => !i.includes(':')), aaaa: ips.filter((i) => i.includes(':')) };
      }
      return undefined;
    }
    if (last !== 'svc' && last !== 'pod') return undefined;
    const ns = labels[labels.length - 2];
    // a namespace name exists while the namespace does (CoreDNS); one holding Services counts too,
    // so a Service seen before its namespace (two informers, two streams) is never hidden
    if (labels.length === 2) return this.namespaces.has(ns) || this.svcCountByNs.has(ns) ? {} : undefined;
    if (last === 'pod') return labels.length === 3 && this.namespaces.has(ns) ? podNode(labels[0]) : undefined;
    const svcKey = `${ns}/${labels[labels.length - 3]}`;
    const svc = this.services.get(svcKey);
    if (!svc) return undefined;
    const rest = labels.slice(0, -3);
    if (rest.length === 0) return this.serviceNode(svc, svcKey, undefined);
    if (svc.kind === 'ExternalName') return undefined;
    if (rest.length === 1) return this.endpointNode(svc, svcKey, rest[0]);
    if (rest.length === 2 && rest[0].startsWith('_') && rest[1].startsWith('_')) {
      return this.serviceNode(svc, svcKey, { name: rest[0].slice(1), protocol: rest[1].slice(1) });
    }
    return undefined;
  }

  private serviceNode(svc: ServiceEntry, svcKey: string, filter: { name: string; protocol: string } | undefined): NameNode | undefined {
    const ttl = this.ttl;
    const fq = this.svcFqdn(svc);
    const match = (p: PortInfo): boolean => !filter || (p.name === filter.name && p.name !== '' && p.protocol === filter.protocol);
    if (svc.kind === 'ExternalName') {
      // an address is no name to alias: CoreDNS ignores such Services, and so do we
      if (!svc.externalName || isIPv4(svc.externalName) || isIPv6(svc.externalName)) return undefined;
      return { cname: svc.externalName };
    }
    if (svc.kind === 'ClusterIP') {
      const ports = svc.ports.filter(match);
      if (filter && ports.length === 0) return undefined;
      const node = split(svc.clusterIPs);
      if (svc.clusterIPs.length) {
        const w = weight(ports.length);
        node.srv = ports.map((p) => ({ priority: 0, weight: w, port: p.port, target: fq }));
        node.srvExtra = svc.clusterIPs.map((ip) => ({ type: ip.includes(':') ? 'AAAA' : 'A', name: fq, ttl, class: 'IN', data: ip }) as Answer);
      }
      return node;
    }
    // headless
    const eps = this.endpoints.get(svcKey) ?? [];
    if (eps.length === 0) return undefined;
    const chosen = filter ? eps.filter((e) => e.ports.some(match)) : eps;
    if (chosen.length === 0) return undefined;
    return this.endpointsNode(svc, chosen, match);
  }

  private endpointNode(svc: ServiceEntry, svcKey: string, label: string): NameNode | undefined {
    const eps = (this.endpoints.get(svcKey) ?? []).filter((e) => e.label === label);
    if (eps.length === 0) return undefined;
    return this.endpointsNode(svc, eps, () => true);
  }

  private endpointsNode(svc: ServiceEntry, eps: EndpointView[], match: (p: PortInfo) => boolean): NameNode {
    const ttl = this.ttl;
    const fq = this.svcFqdn(svc);
    const node = split(eps.map((e) => e.ip));
    const srv: NonNullable<NameNode['srv']> = [];
    const extra: Answer[] = [];
    const seenSrv = new Set<string>();
    const seenExtra = new Set<string>();
    for (const e of eps) {
      const target = `${e.label}.${fq}`;
      for (const p of e.ports) {
        if (!match(p)) continue;
        const k = `${p.port} ${target}`;
        if (seenSrv.has(k)) continue;
        seenSrv.add(k);
        srv.push({ priority: 0, weight: 0, port: p.port, target });
        const xk = `${target} ${e.ip}`;
        if (!seenExtra.has(xk)) { seenExtra.add(xk); extra.push({ type: e.v6 ? 'AAAA' : 'A', name: target, ttl, class: 'IN', data: e.ip }); }
      }
    }
    const w = weight(srv.length);
    for (const s of srv) s.weight = w;
    node.srv = srv;
    node.srvExtra = extra;
    return node;
  }
}

function split(ips: string[]): NameNode {
  return { a: ips.filter((i) => !i.includes(':')), aaaa: ips.filter((i) => i.includes(':')) };
}

/** RFC 2782 weights: equal shares of 100 among the records of one priority. */
function weight(n: number): number { return n > 0 ? Math.max(1, Math.floor(100 / n)) : 0; }

/** `1-2-3-4` → A 1.2.3.4, `fd00--1` → AAAA fd00::1 (CoreDNS `pods insecure`). */
function podNode(label: string): NameNode | undefined {
  const dashes = (label.match(/-/g) ?? []).length;
  if (dashes === 3 && !label.includes('--')) {
    const ip = label.replace(/-/g, '.');
    if (isIPv4(ip) && ip.split('.').every((p) => p === String(Number(p)))) return { a: [ip] };
    return undefined;
  }
  const ip6 = label.replace(/-/g, ':');
  if (isIPv6(ip6)) return { aaaa: [canonicalIP(ip6)] };
  return undefined;
}
