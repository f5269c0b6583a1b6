// ServiceProxy: the node's Service proxy (kube-proxy's job). Informers on Services and
// EndpointSlices (discovery.k8s.io/v1, grouped by the kubernetes.io/service-name label) feed a
// single sync loop that programs ClusterIP, NodePort (also on 127.0.0.1), LoadBalancer ingress IPs
// and externalIPs into nftables (default when `nft` works) or iptables.
//
//   informer events ──► dirty Service keys ──► sync loop (one write at a time)
//                                                ├─ delta: recompute plans of dirty Services, apply the
//                                                │         differences in one transaction
//                                                └─ full:  at start, every syncPeriodMs, and after any
//                                                          failed write: replace everything atomically
//
// Choice of backend (bench/proxy-bench.ts): nftables, when `nft` works. Its full sync is 2.5× faster
// than iptables-restore at 1,000 Services and ~10× at 5,000 (iptables-nft grows faster than
// linearly), the whole table is replaced or removed in one transaction, and it needs no hooks in
// shared chains. Deltas cost about the same on both (tens of ms).
//
// A Service port that loses a contested destination (same address.protocol.port or node port as an
// older Service) gets it back at the next full sync after the other releases it.
//
// Nothing is written before both informers have synced (a partial view would delete live rules).
// Syncs start at least minSyncIntervalMs apart; changes that arrive during a sync are batched into
// the next one. Stopping run() leaves the rules in place (traffic keeps flowing across a restart,
// and the first full sync of the next run replaces them); ServiceProxy.cleanup removes everything.
//
// Traffic policies (service-model.ts, the backends): endpoints whose EndpointSlice nodeName is this
// node's name are local; internalTrafficPolicy Local and externalTrafficPolicy Local send traffic only
// to them (dropped when there is none), external traffic under Local keeps its source address. For
// LoadBalancer Services with externalTrafficPolicy Local the proxy also serves kube-proxy's health
// check on spec.healthCheckNodePort (health-check.ts): 200 with the local endpoint count, or 503.
//
// Limits: no IPv6; no SCTP; no topology-aware routing (trafficDistribution, hints); stale UDP conntrack entries are not flushed when an endpoint goes away (there is no
// conntrack tool on these hosts), so a UDP flow to a removed endpoint lasts until its conntrack
// entry times out.
import type { KObject } from '../api/types.js';
import { Informer, waitForCacheSync, keyOf, type ListWatchClient, type ResourceRef } from '../client/index.js';
import type { BackendName, PlanChange, ProxyBackend } from './backend.js';
import { checkTableName } from './backend.js';
import { runCommand, type Runner } from './exec.js';
import { IptablesBackend } from './iptables-backend.js';
import { NftBackend } from './nft-backend.js';
import { DEFAULT_STATE_DIR, RouteLocalnet } from './route-localnet.js';
import { HealthCheckServers, type HealthCheckTarget } from './health-check.js';
import {
  Claims, SERVICE_NAME_LABEL, buildServicePlans, compareServices, fingerprint, isIPv4CIDR, skipReason, type ServicePortPlan,
} from './service-model.js';

export const SERVICES: ResourceRef = { group: '', version: 'v1', plural: 'services' };
export const ENDPOINT_SLICES: ResourceRef = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };
/** Services with this label belong to another proxy (upstream's convention). */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

export interface ServiceProxyOptions {
  client: ListWatchClient;
  nodeName: string;
  /** this node's addresses (reported in logs; NodePorts answer on every local address) */
  nodeIPs: string[];
  /** pod network, e.g. 10.42.0.0/16: ClusterIP traffic from outside it is masqueraded */
  clusterCIDR: string;
  /** default: nftables when `nft` works, else iptables */
  backend?: BackendName;
  /** nft table name / iptables chain prefix (upper-cased); default 'kybernetes' */
  tableName?: string;
  /**
   * full resync period. Default 30 s, stretched to 20× the last full sync's duration when that is
   * longer (so resyncs take at most ~5 % of the time: 5,000 Services take seconds on iptables)
   */
  syncPeriodMs?: number;
  /** least time between the starts of two syncs; default 0 (changes arriving during a sync are batched anyway) */
  minSyncIntervalMs?: number;
  /** where the route_localnet record lives; default /run/kybernetes/proxy */
  stateDir?: string;
  /** the route_localnet sysctl file (tests point it elsewhere); default /proc/sys/net/ipv4/conf/all/route_localnet */
  routeLocalnetPath?: string;
  /** messages (warnings, failed writes); default: console.error */
  log?: (msg: string) => void;
  /** called after every sync attempt */
  onSync?: (r: SyncReport) => void;
  /** how commands run (tests and benches may wrap it) */
  run?: Runner;
  /**
   * where the health checks of externalTrafficPolicy Local LoadBalancers listen (on each one's
   * healthCheckNodePort); default '0.0.0.0' (all addresses, as kube-proxy); null: serve none
   */
  healthCheckBindAddress?: string | null;
}

export interface SyncReport {
  kind: 'full' | 'delta';
  backend: BackendName;
  /** wall time of the kernel write(s) and the planning before it */
  durationMs: number;
  /** Service ports programmed after this sync */
  servicePorts: number;
  /** Service ports whose rules changed (full: all) */
  changed: number;
  error?: unknown;
}

export interface ProxyCleanupOptions { tableName?: string; stateDir?: string; routeLocalnetPath?: string; run?: Runner }

const DEFAULT_TABLE = 'kybernetes';

export class ServiceProxy {
  readonly nodeName: string;
  readonly nodeIPs: readonly string[];
  readonly tableName: string;
  private readonly services: Informer;
  private readonly slices: Informer;
  private readonly log: (msg: string) => void;
  private readonly exec: Runner;
  private readonly localnet: RouteLocalnet;
  private backend?: ProxyBackend;
  private readonly dirty = new Set<string>();
  private needFull = true;
  private nextFullAt = 0;
  /** service key → service port key → plan as programmed */
  private applied = new Map<string, Map<string, ServicePortPlan>>();
  private readonly claims = new Claims();
  /** service key → resourceVersions of the Service and its slices as programmed */
  private programmed = new Map<string, { service?: string; slices: Map<string, string> }>();
  private wake?: () => void;
  private running = false;
  /** service key → its health check, as of the last successful sync */
  private hcTargets = new Map<string, HealthCheckTarget>();
  private health?: HealthCheckServers;
  /** counters, for tests and benches */
  readonly stats = { fullSyncs: 0, deltaSyncs: 0, failures: 0 };

  constructor(private readonly o: ServiceProxyOptions) {
    this.nodeName = o.nodeName;
    this.nodeIPs = [...o.nodeIPs];
    this.tableName = o.tableName ?? DEFAULT_TABLE;
    checkTableName(this.tableName);
    if (!isIPv4CIDR(o.clusterCIDR)) throw new Error(`proxy clusterCIDR ${JSON.stringify(o.clusterCIDR)} is not an IPv4 CIDR`);
    this.log = o.log ?? ((m) => console.error(`service proxy: ${m}`));
    this.exec = o.run ?? runCommand;
    this.localnet = new RouteLocalnet(o.stateDir ?? DEFAULT_STATE_DIR, o.routeLocalnetPath);
    const onError = (e: unknown, during: string): void => this.log(`informer ${during} error: ${(e as Error)?.message ?? String(e)}`);
    this.services = new Informer({ client: o.client, resource: SERVICES, onError });
    this.slices = new Informer({
      client: o.client, resource: ENDPOINT_SLICES, labelSelector: SERVICE_NAME_LABEL, onError,
      indexers: { byService: (s) => { const n = s.metadata?.labels?.[SERVICE_NAME_LABEL]; return n ? [`${s.metadata?.namespace}/${n}`] : []; } },
    });
    this.services.addEventHandler({
      onAdd: (s) => this.markDirty(keyOf(s)),
      onUpdate: (a, b) => { if (a.metadata?.resourceVersion !== b.metadata?.resourceVersion) this.markDirty(keyOf(b)); },
      onDelete: (s) => this.markDirty(keyOf(s)),
    });
    const sliceService = (s: KObject): string | undefined => {
      const n = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      return n ? `${s.metadata?.namespace}/${n}` : undefined;
    };
    this.slices.addEventHandler({
      onAdd: (s) => { const k = sliceService(s); if (k) this.markDirty(k); },
      onUpdate: (a, b) => {
        if (a.metadata?.resourceVersion === b.metadata?.resourceVersion) return;
        const ka = sliceService(a);
        const kb = sliceService(b);
        if (ka) this.markDirty(ka);
        if (kb && kb !== ka) this.markDirty(kb);
      },
      onDelete: (s) => { const k = sliceService(s); if (k) this.markDirty(k); },
    });
  }

  /** The backend in use (known once run() has started). */
  get backendName(): BackendName | undefined { return this.backend?.name; }

  /** The resourceVersion of a Service or EndpointSlice whose state is in the kernel now. */
  programmedResourceVersion(resource: 'services' | 'endpointslices', namespace: string, name: string): string | undefined {
    if (resource === 'services') return this.programmed.get(`${namespace}/${name}`)?.service;
    for (const p of this.programmed.values()) { const rv = p.slices.get(`${namespace}/${name}`); if (rv) return rv; }
    return undefined;
  }

  /** The health check node ports served now (bound or being bound). */
  healthCheckPorts(): number[] { return this.health?.ports() ?? []; }

  /** Asks for a full sync as soon as possible. */
  requestFullSync(): void { this.needFull = true; this.wake?.(); }

  private markDirty(serviceKey: string): void {
    this.dirty.add(serviceKey);
    this.wake?.();
  }

  /** Runs until signal aborts; resolves once informers and the sync loop have stopped. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('service proxy is already running');
    this.running = true;
    const inner = new AbortController();
    const stop = (): void => inner.abort();
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) inner.abort();
    const informers = [this.services.run(inner.signal), this.slices.run(inner.signal)];
    const hcBind = this.o.healthCheckBindAddress === undefined ? '0.0.0.0' : this.o.healthCheckBindAddress;
    if (hcBind !== null) this.health = new HealthCheckServers(hcBind, this.log);
    try {
      this.backend = await this.pickBackend();
      this.log(`using ${this.backend.name} (table ${this.tableName}) on node ${this.nodeName} [${this.nodeIPs.join(', ')}]`);
      if (!(await waitForCacheSync(inner.signal, this.services, this.slices))) return;
      await this.loop(inner.signal);
    } finally {
      signal.removeEventListener('abort', stop);
      inner.abort();
      await Promise.allSettled(informers);
      this.health?.close();
      this.health = undefined;
      this.hcTargets.clear();
      this.running = false;
    }
  }

  private async pickBackend(): Promise<ProxyBackend> {
    const want = this.o.backend ?? ((await NftBackend.available(this.exec)) ? 'nftables' : 'iptables');
    const opts = { tableName: this.tableName, clusterCIDR: this.o.clusterCIDR, run: this.exec };
    return want === 'nftables' ? new NftBackend(opts) : new IptablesBackend(opts);
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const minInterval = this.o.minSyncIntervalMs ?? 0;
    let lastStart = -Infinity;
    let backoff = 500;
    while (!signal.aborted) {
      const now = Date.now();
      const full = this.needFull || now >= this.nextFullAt;
      if (!full && this.dirty.size === 0) { await this.idle(signal, this.nextFullAt - now); continue; }
      if (now - lastStart < minInterval) { await this.idle(signal, minInterval - (now - lastStart)); continue; }
      lastStart = now;
      try {
        if (full) await this.syncFull();
        else await this.syncDelta();
        backoff = 500;
      } catch (e) {
        this.stats.failures++;
        this.needFull = true;
        this.log(`${full ? 'full' : 'delta'} sync failed (retrying as a full sync in ${backoff} ms): ${(e as Error)?.message ?? String(e)}`);
        await this.idle(signal, backoff, true);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  }

  /** Waits for ms, an abort, or (unless sleepOnly) a change. */
  private idle(signal: AbortSignal, ms: number, sleepOnly = false): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); signal.removeEventListener('abort', done); this.wake = undefined; resolve(); };
      const t = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      if (!sleepOnly) this.wake = done;
    });
  }

  private slicesOf(serviceKey: string): KObject[] { return this.slices.indexer.byIndex('byService', serviceKey); }

  private plansOf(svc: KObject, key: string): ServicePortPlan[] { return buildServicePlans(svc, this.slicesOf(key), this.nodeName); }

  /** Sets (or clears) the health check of one Service from its programmed plans. */
  private setHealthTarget(key: string, svc: KObject | undefined, plans: Iterable<ServicePortPlan>): void {
    const t = healthCheckTarget(svc, plans);
    if (t) this.hcTargets.set(key, t);
    else this.hcTargets.delete(key);
  }

  private proxied(svc: KObject | undefined): svc is KObject {
    return !!svc && !svc.metadata?.labels?.[SERVICE_PROXY_NAME_LABEL] && !skipReason(svc);
  }

  private versionsOf(serviceKey: string, svc: KObject | undefined): { service?: string; slices: Map<string, string> } {
    const slices = new Map<string, string>();
    for (const s of this.slicesOf(serviceKey)) slices.set(keyOf(s), s.metadata?.resourceVersion ?? '');
    return { service: svc?.metadata?.resourceVersion, slices };
  }

  private report(r: Omit<SyncReport, 'backend'>): void {
    try { this.o.onSync?.({ ...r, backend: this.backend!.name }); } catch (e) { this.log(`onSync threw: ${(e as Error).message}`); }
  }

  private async syncFull(): Promise<void> {
    const t0 = performance.now();
    this.dirty.clear(); // everything is read from the cache below; later events mark keys again
    this.claims.clear();
    const applied = new Map<string, Map<string, ServicePortPlan>>();
    const programmed = new Map<string, { service?: string; slices: Map<string, string> }>();
    const all: ServicePortPlan[] = [];
    const svcs = this.services.indexer.list().filter((s) => this.proxied(s)).sort(compareServices);
    for (const svc of svcs) {
      const key = keyOf(svc);
      const plans = new Map<string, ServicePortPlan>();
      for (const p of this.plansOf(svc, key)) {
        const c = this.claims.claim(p, this.log);
        plans.set(c.key, c);
        all.push(c);
      }
      applied.set(key, plans);
      programmed.set(key, this.versionsOf(key, svc));
    }
    try {
      await this.localnet.ensure(this.owner(this.backend!.name));
      await this.backend!.fullSync(all);
    } catch (e) {
      this.report({ kind: 'full', durationMs: performance.now() - t0, servicePorts: all.length, changed: 0, error: e });
      throw e;
    }
    this.applied = applied;
    this.programmed = programmed;
    this.needFull = false;
    this.hcTargets.clear();
    for (const svc of svcs) { const key = keyOf(svc); this.setHealthTarget(key, svc, applied.get(key)!.values()); }
    this.health?.sync(this.hcTargets.values());
    const took = performance.now() - t0;
    this.nextFullAt = Date.now() + (this.o.syncPeriodMs ?? Math.max(30_000, 20 * took));
    this.stats.fullSyncs++;
    this.report({ kind: 'full', durationMs: took, servicePorts: all.length, changed: all.length });
  }

  private async syncDelta(): Promise<void> {
    const t0 = performance.now();
    const keys = [...this.dirty];
    this.dirty.clear();
    const changes: PlanChange[] = [];
    const next = new Map<string, Map<string, ServicePortPlan>>();
    const versions = new Map<string, { service?: string; slices: Map<string, string> }>();
    for (const key of keys) {
      const old = this.applied.get(key) ?? new Map<string, ServicePortPlan>();
      for (const k of old.keys()) this.claims.release(k);
      const svc = this.services.indexer.getByKey(key);
      const plans = new Map<string, ServicePortPlan>();
      if (this.proxied(svc)) for (const p of this.plansOf(svc, key)) { const c = this.claims.claim(p, this.log); plans.set(c.key, c); }
      for (const k of new Set([...old.keys(), ...plans.keys()])) {
        const a = old.get(k);
        const b = plans.get(k);
        if (fingerprint(a) !== fingerprint(b)) changes.push({ key: k, old: a, new: b });
      }
      next.set(key, plans);
      versions.set(key, this.versionsOf(key, svc));
    }
    try {
      if (changes.length) await this.backend!.deltaSync(changes);
    } catch (e) {
      for (const k of keys) this.dirty.add(k);
      this.report({ kind: 'delta', durationMs: performance.now() - t0, servicePorts: this.countPorts(), changed: changes.length, error: e });
      throw e;
    }
    for (const [k, plans] of next) {
      if (plans.size) this.applied.set(k, plans);
      else this.applied.delete(k);
      const svc = this.services.indexer.getByKey(k);
      this.setHealthTarget(k, this.proxied(svc) ? svc : undefined, plans.values());
      const v = versions.get(k)!;
      if (v.service || v.slices.size) this.programmed.set(k, v);
      else this.programmed.delete(k);
    }
    this.health?.sync(this.hcTargets.values());
    this.stats.deltaSyncs++;
    this.report({ kind: 'delta', durationMs: performance.now() - t0, servicePorts: this.countPorts(), changed: changes.length });
  }

  private countPorts(): number { let n = 0; for (const m of this.applied.values()) n += m.size; return n; }

  private owner(backend: BackendName): string { return `${backend}-${this.tableName}`; }

  /**
   * Removes everything a proxy with this table name programmed, on both backends: the nft table,
   * the iptables hooks and chains, and (when no other proxy instance remains registered) restores
   * net.ipv4.conf.all.route_localnet if we changed it (see route-localnet.ts).
   */
  static async cleanup(opts: ProxyCleanupOptions = {}): Promise<void> {
    const tableName = opts.tableName ?? DEFAULT_TABLE;
    checkTableName(tableName);
    const run = opts.run ?? runCommand;
    const errors: unknown[] = [];
    try { await NftBackend.cleanup(tableName, run); } catch (e) { errors.push(e); }
    try { await IptablesBackend.cleanup(tableName, run); } catch (e) { errors.push(e); }
    const localnet = new RouteLocalnet(opts.stateDir ?? DEFAULT_STATE_DIR, opts.routeLocalnetPath);
    for (const b of ['nftables', 'iptables'] as const) {
      try { await localnet.release(`${b}-${tableName}`); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw new AggregateError(errors, `service proxy cleanup of ${tableName}: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }
}

/**
 * The health check a LoadBalancer Service with externalTrafficPolicy Local gets on this node: its
 * healthCheckNodePort, and how many distinct local endpoint addresses its ports have.
 */
export function healthCheckTarget(svc: KObject | undefined, plans: Iterable<ServicePortPlan>): HealthCheckTarget | undefined {
  const spec = (svc?.spec ?? {}) as { type?: string; externalTrafficPolicy?: string; healthCheckNodePort?: number };
  const port = Number(spec.healthCheckNodePort);
  if (spec.type !== 'LoadBalancer' || spec.externalTrafficPolicy !== 'Local' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const ips = new Set<string>();
  for (const p of plans) for (const e of p.localEndpoints ?? []) ips.add(e.ip);
  return { port, namespace: svc?.metadata?.namespace ?? 'default', name: svc?.metadata?.name ?? '', localEndpoints: ips.size };
}
