// Simulated nodes (in the spirit of kwok): N Node objects that register, heartbeat through Leases in
// kube-node-lease, and report the pods bound to them Running and Ready without running anything, so
// the scheduler and controllers can be exercised and measured at thousands of nodes.
//
//   register (create or update Node, status included; first Lease) ─► per-node heartbeat timer:
//     renew Lease every heartbeatIntervalMs (start offsets spread over the interval), refresh the
//     Ready condition's lastHeartbeatTime every nodeStatusReportIntervalMs
//   one informer over all pods ─► keys of pods bound to our nodes ─► work queue ─► sync(key):
//     not started → after podStartDelayMs PATCH pods/status Running + Ready with a podIP from the node's podCIDR
//     deletionTimestamp → after min(grace, podStopDelayMs) DELETE with gracePeriodSeconds=0 (as the kubelet does)
//
// stopHeartbeat(node) freezes a node: no Lease renewals, no status reports, no pod updates — what the
// node lifecycle controller sees of a dead kubelet. resumeHeartbeat(node) brings it back.
//
// Writes go through two private clients made from the given client's options with the client-side
// rate limit off (one for heartbeats, one for pods), so thousands of lease renewals never starve pod
// status updates; concurrency is bounded by semaphores instead.
import { setMaxListeners } from 'node:events';
import type { Pod, PodCondition, ContainerStatus, NodeCondition } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import { RestClient, type ResourceRef } from '../../client/rest-client.js';
import { Informer } from '../../client/informer.js';
import { indexFuncs, keyOf } from '../../client/indexer.js';
import { WorkQueue, runWorkers } from '../../client/workqueue.js';
import { type Clock, type TimerHandle, realClock, sleep } from '../../client/clock.js';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const PODS: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
const LEASES: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** Label on every simulated Node. */
export const SIMULATED_LABEL = 'kybernetes.io/simulated';
/** Pod annotation: with restartPolicy Never/OnFailure, the containers "exit" this many ms after starting. */
export const EXIT_AFTER_ANNOTATION = 'kybernetes.io/simulated-exit-after-ms';
/** Pod annotation: the exit code used with EXIT_AFTER_ANNOTATION (default 0). */
export const EXIT_CODE_ANNOTATION = 'kybernetes.io/simulated-exit-code';
export const SIMULATED_KUBELET_VERSION = 'v1.32.0-kyb-sim';
export const SIMULATED_RUNTIME_VERSION = 'simulated://0.1';

export interface SimulatedNodesOptions {
  count: number;
  /** node names are `${namePrefix}${i}`, i = 0..count-1; default 'sim-node-' */
  namePrefix?: string;
  capacity?: { cpu?: string; memory?: string; pods?: string; 'ephemeral-storage'?: string };
  /** extra node labels */
  labels?: Record<string, string>;
  /** Lease spec.leaseDurationSeconds; default 40 */
  leaseDurationSeconds?: number;
  /** Lease renewal period; default 10000 */
  heartbeatIntervalMs?: number;
  /** how often the Ready condition's lastHeartbeatTime is refreshed; default 40000 */
  nodeStatusReportIntervalMs?: number;
  /** time from seeing a bound pod to reporting it Running; default 0 */
  podStartDelayMs?: number;
  /** upper bound of the time from a pod's deletionTimestamp to the final DELETE; default 0 */
  podStopDelayMs?: number;
  clock?: Clock;
  /** first two octets of the pod CIDRs: node i gets the i-th /24 from `${base}.0.0` on (skipping avoidCIDRs); default '10.42' */
  podCIDRBase?: string;
  /** ranges no pod CIDR may fall in; default ['10.43.0.0/16'] (the Service range) */
  avoidCIDRs?: string[];
  /** first two octets of node InternalIPs: node i gets `${base}.0.0 + i + 1`; default '172.18' */
  nodeIPBase?: string;
  /** concurrent heartbeat requests; default 32 */
  heartbeatConcurrency?: number;
  /** pod sync workers (= concurrent pod writes); default 32 */
  podWorkers?: number;
  /** errors of API calls that will be retried; default: counted, first few logged */
  onError?(err: unknown, during: string): void;
}

/** Counters, for tests and benchmarks. */
export interface SimulatedNodesStats {
  nodesRegistered: number;
  leaseRenewals: number;
  statusReports: number;
  podsStarted: number;
  podsDeleted: number;
  podsExited: number;
  errors: number;
}

type PodObj = Pod & KObject;

interface SimNode {
  name: string;
  index: number;
  uid?: string;
  internalIP: string;
  podCIDR: string;
  podNetBase: number;
  stopped: boolean;
  registered: boolean;
  readySince: string;
  lastStatusReport: number;
  leaseInFlight: boolean;
  timer?: TimerHandle;
  usedIPs: Set<number>;
  nextIP: number;
}

interface PodState {
  node: string;
  ip?: string;
  firstSeen: number;
  /** resourceVersion of the cached pod our last status write was based on (a cache still at it is stale) */
  writtenFrom?: string;
  startedAt?: number;
  deleteSeen?: number;
  deleteIssued?: boolean;
}

/** A bounded-concurrency gate. */
class Semaphore {
  private active = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<R>(f: () => Promise<R>): Promise<R> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    else this.active++;
    try { return await f(); } finally {
      const next = this.waiters.shift();
      if (next) next(); else this.active--;
    }
  }
}

function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  while (p.length < 4) p.push(0);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`bad IPv4 prefix ${JSON.stringify(ip)}`);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}
function intToIP(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
/** metav1.Time: RFC 3339 in seconds. */
function rfc3339(ms: number): string { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }
/** metav1.MicroTime: `2006-01-02T15:04:05.000000Z`. */
function microTime(ms: number): string { return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'); }

const TERMINAL = new Set(['Succeeded', 'Failed']);

export class SimulatedNodes {
  readonly stats: SimulatedNodesStats = { nodesRegistered: 0, leaseRenewals: 0, statusReports: 0, podsStarted: 0, podsDeleted: 0, podsExited: 0, errors: 0 };
  private readonly nodes = new Map<string, SimNode>();
  private readonly pods = new Map<string, PodState>(); // by pod uid
  private readonly clock: Clock;
  private readonly heartbeatClient: RestClient;
  private readonly podClient: RestClient;
  private readonly heartbeatGate: Semaphore;
  private readonly queue: WorkQueue<string>;
  private readonly informer: Informer<PodObj>;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly o: Required<Pick<SimulatedNodesOptions, 'leaseDurationSeconds' | 'heartbeatIntervalMs' | 'nodeStatusReportIntervalMs' | 'podStartDelayMs' | 'podStopDelayMs'>>;
  private running = false;
  private stopping = false;
  private loggedErrors = 0;

  constructor(private readonly client: RestClient, private readonly opts: SimulatedNodesOptions) {
    if (!Number.isInteger(opts.count) || opts.count < 0) throw new Error(`count must be a non-negative integer, got ${opts.count}`);
    this.clock = opts.clock ?? realClock;
    this.o = {
      leaseDurationSeconds: opts.leaseDurationSeconds ?? 40,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 10_000,
      nodeStatusReportIntervalMs: opts.nodeStatusReportIntervalMs ?? 40_000,
      podStartDelayMs: opts.podStartDelayMs ?? 0,
      podStopDelayMs: opts.podStopDelayMs ?? 0,
    };
    const prefix = opts.namePrefix ?? 'sim-node-';
    const cidrBase = ipToInt(opts.podCIDRBase ?? '10.42');
    const ipBase = ipToInt(opts.nodeIPBase ?? '172.18');
    const since = rfc3339(this.clock.now());
    // pod CIDRs run on from the base, skipping the Service range (10.43.0.0/16 by default, as k3s)
    const avoid = (opts.avoidCIDRs ?? ['10.43.0.0/16']).map((c) => {
      const [ip, bits] = c.split('/');
      const size = 2 ** (32 - Number(bits ?? 32));
      const start = Math.floor(ipToInt(ip!) / size) * size;
      return [start, start + size] as const;
    });
    let cursor = cidrBase;
    for (let i = 0; i < opts.count; i++) {
      for (let hit = avoid.find(([a, b]) => cursor >= a && cursor < b); hit; hit = avoid.find(([a, b]) => cursor >= a && cursor < b)) cursor = hit[1];
      const net = cursor;
      cursor += 256;
      if (net + 256 > 0x100000000) throw new Error(`too many nodes (${opts.count}) for pod CIDR base ${opts.podCIDRBase ?? '10.42'}`);
      const name = `${prefix}${i}`;
      this.nodes.set(name, {
        name, index: i, internalIP: intToIP(ipBase + i + 1), podCIDR: `${intToIP(net)}/24`, podNetBase: net,
        stopped: false, registered: false, readySince: since, lastStatusReport: 0, leaseInFlight: false,
        usedIPs: new Set(), nextIP: 1,
      });
    }
    const writeOpts = { ...client.options, qps: 0, userAgent: `kybernetes-simulated-nodes/0.1.0 (${prefix})` };
    this.heartbeatClient = new RestClient({ ...writeOpts, maxSockets: opts.heartbeatConcurrency ?? 32 });
    this.podClient = new RestClient({ ...writeOpts, maxSockets: opts.podWorkers ?? 32 });
    this.heartbeatGate = new Semaphore(opts.heartbeatConcurrency ?? 32);
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'simulated-pods' });
    this.informer = new Informer<PodObj>({
      client, resource: PODS, clock: this.clock,
      indexers: { byNode: indexFuncs.byNode as (o: PodObj) => string[] },
      onError: (e, during) => this.report(e, `pod informer ${during}`),
    });
  }

  nodeNames(): string[] { return [...this.nodes.keys()]; }

  /** Stops the node's Lease renewals, status reports and pod updates (a dead kubelet). */
  stopHeartbeat(nodeName: string): void {
    this.mustGet(nodeName).stopped = true;
  }

  /** Brings a stopped node back: renews its Lease and reports Ready now, and catches up on its pods. */
  resumeHeartbeat(nodeName: string): void {
    const n = this.mustGet(nodeName);
    if (!n.stopped) return;
    n.stopped = false;
    // the node lifecycle controller has most likely changed Ready meanwhile: a new transition
    n.readySince = rfc3339(this.clock.now());
    n.lastStatusReport = 0;
    if (this.running && n.registered) {
      this.track(this.heartbeat(n));
      for (const k of this.informer.indexer.indexKeys('byNode', n.name)) this.queue.add(k);
    }
  }

  /** Registers the nodes, then heartbeats and serves their pods until signal aborts. */
  async run(outer: AbortSignal): Promise<void> {
    if (this.running) throw new Error('SimulatedNodes.run called twice');
    this.running = true;
    // one listener on the caller's signal; the many in-flight requests listen on ours
    const ac = new AbortController();
    setMaxListeners(0, ac.signal);
    const signal = ac.signal;
    const abort = (): void => ac.abort();
    if (outer.aborted) abort(); else outer.addEventListener('abort', abort, { once: true });
    this.informer.addEventHandler({
      onAdd: (p) => this.enqueue(p),
      onUpdate: (_old, p) => this.enqueue(p),
      onDelete: (p) => this.forget(p),
    });
    const informerDone = this.informer.run(signal);
    const workersDone = runWorkers(this.queue, this.opts.podWorkers ?? 32, (k) => this.syncPod(k), signal, {
      onError: (_k, e) => this.report(e, 'pod sync'),
    });
    try {
      await this.registerAll(signal);
      if (!signal.aborted) this.startHeartbeats();
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      this.stopping = true;
      for (const n of this.nodes.values()) if (n.timer) { this.clock.clearTimeout(n.timer); n.timer = undefined; }
      await Promise.allSettled([informerDone, workersDone]);
      await Promise.allSettled([...this.inflight]);
      this.heartbeatClient.close();
      this.podClient.close();
      outer.removeEventListener('abort', abort);
    }
  }

  // ---- registration ----

  private nodeObject(n: SimNode): KObject {
    const cap = this.opts.capacity ?? {};
    const capacity = {
      cpu: cap.cpu ?? '32', memory: cap.memory ?? '256Gi', pods: cap.pods ?? '110',
      'ephemeral-storage': cap['ephemeral-storage'] ?? '1Ti',
    };
    return {
      apiVersion: 'v1', kind: 'Node',
      metadata: {
        name: n.name,
        labels: this.nodeLabels(n),
        annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kybernetes.io/simulated-node': 'true' },
      },
      spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR], providerID: `simulated://${n.name}` },
      status: {
        capacity, allocatable: { ...capacity },
        conditions: this.conditions(n, this.clock.now()),
        addresses: [{ type: 'InternalIP', address: n.internalIP }, { type: 'Hostname', address: n.name }],
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
        nodeInfo: {
          machineID: `sim${n.index.toString(16).padStart(29, '0')}`,
          systemUUID: `00000000-0000-4000-8000-${n.index.toString(16).padStart(12, '0')}`,
          bootID: `00000000-0000-4000-9000-${n.index.toString(16).padStart(12, '0')}`,
          kernelVersion: '6.1.0-simulated', osImage: 'kybernetes simulated node',
          containerRuntimeVersion: SIMULATED_RUNTIME_VERSION, kubeletVersion: SIMULATED_KUBELET_VERSION,
          kubeProxyVersion: SIMULATED_KUBELET_VERSION, operatingSystem: 'linux', architecture: 'amd64',
        },
        images: [],
      },
    };
  }

  private nodeLabels(n: SimNode): Record<string, string> {
    return {
      'beta.kubernetes.io/arch': 'amd64', 'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': n.name,
      'node.kubernetes.io/instance-type': 'simulated', [SIMULATED_LABEL]: 'true',
      ...this.opts.labels,
    };
  }

  private conditions(n: SimNode, now: number): NodeCondition[] {
    const hb = rfc3339(now);
    const c = (type: string, status: string, reason: string, message: string, since: string): NodeCondition =>
      ({ type, status, lastHeartbeatTime: hb, lastTransitionTime: since, reason, message });
    return [
      c('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available', n.readySince),
      c('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure', n.readySince),
      c('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available', n.readySince),
      c('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status', n.readySince),
    ];
  }

  private async registerAll(signal: AbortSignal): Promise<void> {
    const gate = new Semaphore(this.opts.heartbeatConcurrency ?? 32);
    await Promise.all([...this.nodes.values()].map((n) => gate.run(async () => {
      let backoff = 500;
      while (!signal.aborted && !n.registered) {
        try {
          await this.register(n, signal);
          await this.renewLease(n, signal, true);
          n.registered = true;
          this.stats.nodesRegistered++;
          for (const k of this.informer.indexer.indexKeys('byNode', n.name)) this.queue.add(k);
        } catch (e) {
          if (signal.aborted) return;
          this.report(e, `register node ${n.name}`);
          await sleep(this.clock, backoff, signal);
          backoff = Math.min(backoff * 2, 10_000);
        }
      }
    })));
  }

  /** Creates the Node (status included), or brings an existing one up to date. */
  private async register(n: SimNode, signal: AbortSignal): Promise<void> {
    const c = this.heartbeatClient;
    const obj = this.nodeObject(n);
    try {
      const created = await c.create(NODES, null, obj, { signal });
      n.uid = created.metadata?.uid;
      n.lastStatusReport = this.clock.now();
      return;
    } catch (e) {
      if (!isStatusError(e, 'AlreadyExists')) throw e;
    }
    const cur = await c.get(NODES, null, n.name, { signal });
    n.uid = cur.metadata?.uid;
    const spec = (cur.spec ?? {}) as { podCIDR?: string };
    const p: Record<string, unknown> = { metadata: { labels: obj.metadata!.labels, annotations: obj.metadata!.annotations } };
    // podCIDR cannot change once set; keep an existing one (and hand out pod IPs from it)
    if (!spec.podCIDR) p.spec = obj.spec;
    else {
      const m = /^(\d+\.\d+\.\d+\.\d+)\/24$/.exec(spec.podCIDR);
      if (m) { n.podCIDR = spec.podCIDR; n.podNetBase = ipToInt(m[1]!); }
    }
    await c.patch(NODES, null, n.name, p, 'merge', { signal });
    await c.patch(NODES, null, n.name, { status: obj.status }, 'merge', { subresource: 'status', signal });
    n.lastStatusReport = this.clock.now();
  }

  // ---- heartbeats ----

  private startHeartbeats(): void {
    const every = this.o.heartbeatIntervalMs;
    for (const n of this.nodes.values()) {
      if (!n.registered) continue;
      const tick = (): void => {
        if (this.stopping) return;
        n.timer = this.clock.setTimeout(tick, every);
        if (!n.stopped && !n.leaseInFlight) this.track(this.heartbeat(n));
      };
      // spread the nodes' renewals over the interval
      n.timer = this.clock.setTimeout(tick, Math.floor(Math.random() * every));
    }
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async heartbeat(n: SimNode): Promise<void> {
    n.leaseInFlight = true;
    try {
      await this.heartbeatGate.run(async () => {
        if (n.stopped || this.stopping) return;
        await this.renewLease(n);
        const now = this.clock.now();
        if (now - n.lastStatusReport >= this.o.nodeStatusReportIntervalMs) {
          await this.heartbeatClient.patch(NODES, null, n.name, { status: { conditions: this.conditions(n, now) } }, 'merge', { subresource: 'status' });
          n.lastStatusReport = now;
          this.stats.statusReports++;
        }
      });
    } catch (e) {
      this.report(e, `heartbeat of ${n.name}`);
    } finally {
      n.leaseInFlight = false;
    }
  }

  /** Renews the node's Lease (merge patch of its spec); creates it when missing, or first when `create`. */
  private async renewLease(n: SimNode, signal?: AbortSignal, create = false): Promise<void> {
    const now = microTime(this.clock.now());
    const spec = { holderIdentity: n.name, leaseDurationSeconds: this.o.leaseDurationSeconds, renewTime: now };
    const c = this.heartbeatClient;
    const patch = (): Promise<unknown> => c.patch(LEASES, NODE_LEASE_NAMESPACE, n.name, { spec }, 'merge', { signal });
    const make = (): Promise<unknown> => c.create(LEASES, NODE_LEASE_NAMESPACE, {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: {
        name: n.name, namespace: NODE_LEASE_NAMESPACE,
        ...(n.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: n.name, uid: n.uid }] } : {}),
      },
      spec,
    }, { signal });
    if (create) {
      try { await make(); } catch (e) {
        if (!isStatusError(e, 'AlreadyExists')) throw e;
        await patch();
      }
    } else {
      try { await patch(); } catch (e) {
        if (!isStatusError(e, 'NotFound')) throw e;
        try { await make(); } catch (e2) {
          if (!isStatusError(e2, 'AlreadyExists')) throw e2;
          await patch();
        }
      }
    }
    this.stats.leaseRenewals++;
  }

  // ---- pods ----

  private enqueue(p: PodObj): void {
    const node = p.spec?.nodeName;
    if (!node || !this.nodes.has(node)) return;
    this.queue.add(keyOf(p));
  }

  private forget(p: PodObj): void {
    const uid = p.metadata?.uid;
    if (!uid) return;
    const st = this.pods.get(uid);
    if (!st) return;
    this.pods.delete(uid);
    if (st.ip) this.nodes.get(st.node)?.usedIPs.delete(Number(st.ip.split('.')[3]));
  }

  private allocateIP(n: SimNode): string {
    for (let tries = 0; tries < 254; tries++) {
      const host = n.nextIP;
      n.nextIP = n.nextIP >= 254 ? 1 : n.nextIP + 1;
      if (!n.usedIPs.has(host)) { n.usedIPs.add(host); return intToIP(n.podNetBase + host); }
    }
    throw new Error(`node ${n.name}: no free pod IP in ${n.podCIDR}`);
  }

  private async syncPod(key: string): Promise<void> {
    if (this.stopping) return;
    const pod = this.informer.indexer.getByKey(key);
    if (!pod) return;
    const nodeName = pod.spec?.nodeName;
    const n = nodeName ? this.nodes.get(nodeName) : undefined;
    if (!n || n.stopped || !n.registered) return; // requeued on resumeHeartbeat / after registration
    const uid = pod.metadata!.uid!;
    const now = this.clock.now();
    let st = this.pods.get(uid);
    if (!st) { st = { node: n.name, firstSeen: now }; this.pods.set(uid, st); }
    const ns = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;

    if (pod.metadata?.deletionTimestamp) {
      if (st.deleteIssued) return;
      st.deleteSeen ??= now;
      const grace = (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
      const wait = Math.min(grace, this.o.podStopDelayMs) - (now - st.deleteSeen);
      if (wait > 0) { this.queue.addAfter(key, wait); return; }
      try {
        await this.podClient.delete(PODS, ns, name, { gracePeriodSeconds: 0, preconditions: { uid } });
      } catch (e) {
        if (!isStatusError(e, 'NotFound') && !isStatusError(e, 'Conflict')) throw e;
      }
      st.deleteIssued = true;
      this.stats.podsDeleted++;
      return;
    }

    const phase = pod.status?.phase;
    if (phase && TERMINAL.has(phase)) return;
    if (st.writtenFrom !== undefined && st.writtenFrom === pod.metadata?.resourceVersion) return; // cache behind our write

    if (this.isRunningAsReported(pod)) {
      this.maybeExit(key, pod, st, now);
      return;
    }
    const wait = this.o.podStartDelayMs - (now - st.firstSeen);
    if (wait > 0) { this.queue.addAfter(key, wait); return; }

    st.ip ??= this.allocateIP(n);
    st.startedAt ??= now;
    const status = this.runningStatus(pod, n, st, now);
    await this.podClient.patch(PODS, ns, name, { status }, 'merge', { subresource: 'status' });
    st.writtenFrom = pod.metadata?.resourceVersion;
    this.stats.podsStarted++;
    this.maybeExit(key, pod, st, now);
  }

  /** Running, Ready, with our IP and one running status per container of the current spec. */
  private isRunningAsReported(pod: PodObj): boolean {
    const s = pod.status;
    if (s?.phase !== 'Running' || !s.podIP) return false;
    if (!s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return false;
    const cs = s.containerStatuses ?? [];
    const containers = pod.spec?.containers ?? [];
    return containers.length === cs.length && containers.every((c) => cs.some((x) => x.name === c.name && x.image === c.image && x.ready && x.state?.running));
  }

  private runningStatus(pod: PodObj, n: SimNode, st: PodState, now: number): Record<string, unknown> {
    const t = rfc3339(now);
    const started = rfc3339(st.startedAt ?? now);
    const uid = pod.metadata!.uid!;
    const old = pod.status?.conditions ?? [];
    const cond = (type: string): PodCondition => {
      const prev = old.find((c) => c.type === type);
      return { type, status: 'True', lastProbeTime: null as unknown as string, lastTransitionTime: prev?.status === 'True' && prev.lastTransitionTime ? prev.lastTransitionTime : t };
    };
    const prevStatuses = new Map((pod.status?.containerStatuses ?? []).map((c) => [c.name, c]));
    const containerStatuses: ContainerStatus[] = (pod.spec?.containers ?? []).map((c) => {
      const prev = prevStatuses.get(c.name);
      const sameImage = prev?.image === c.image && prev?.state?.running;
      return {
        name: c.name, ready: true, started: true, restartCount: prev?.restartCount ?? 0,
        state: { running: { startedAt: sameImage ? prev!.state!.running!.startedAt : started } },
        image: c.image ?? '', imageID: `simulated://${c.image ?? ''}`,
        containerID: `simulated://${uid}-${c.name}`,
      };
    });
    const initContainerStatuses: ContainerStatus[] = (pod.spec?.initContainers ?? []).map((c) => ({
      name: c.name, ready: true, started: false, restartCount: 0,
      state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: started, containerID: `simulated://${uid}-${c.name}` } },
      image: c.image ?? '', imageID: `simulated://${c.image ?? ''}`, containerID: `simulated://${uid}-${c.name}`,
    }));
    const status: Record<string, unknown> = {
      phase: 'Running',
      conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(cond),
      hostIP: n.internalIP, hostIPs: [{ ip: n.internalIP }],
      podIP: st.ip, podIPs: [{ ip: st.ip }],
      startTime: pod.status?.startTime ?? started,
      containerStatuses,
    };
    if (initContainerStatuses.length) status.initContainerStatuses = initContainerStatuses;
    return status;
  }

  /** The optional "containers exit" simulation for run-to-completion pods. */
  private maybeExit(key: string, pod: PodObj, st: PodState, now: number): void {
    const after = Number(pod.metadata?.annotations?.[EXIT_AFTER_ANNOTATION]);
    const policy = pod.spec?.restartPolicy ?? 'Always';
    if (!Number.isFinite(after) || after < 0 || policy === 'Always' || st.startedAt === undefined) return;
    const wait = st.startedAt + after - now;
    if (wait > 0) { this.queue.addAfter(key, wait); return; }
    const code = Number(pod.metadata?.annotations?.[EXIT_CODE_ANNOTATION] ?? 0) || 0;
    const t = rfc3339(now);
    const uid = pod.metadata!.uid!;
    const failed = code !== 0;
    if (failed && policy === 'OnFailure') {
      // restarted in place: one more restart, running again from now
      const status = this.runningStatus(pod, this.nodes.get(st.node)!, { ...st, startedAt: now }, now);
      for (const c of status.containerStatuses as ContainerStatus[]) {
        const prev = pod.status?.containerStatuses?.find((x) => x.name === c.name);
        c.restartCount = (prev?.restartCount ?? 0) + 1;
        c.state = { running: { startedAt: t } };
        c.lastState = { terminated: { exitCode: code, reason: 'Error', startedAt: rfc3339(st.startedAt), finishedAt: t, containerID: c.containerID } };
      }
      st.startedAt = now;
      this.track(this.podClient.patch(PODS, pod.metadata!.namespace!, pod.metadata!.name!, { status }, 'merge', { subresource: 'status' })
        .then(() => { st.writtenFrom = pod.metadata?.resourceVersion; this.queue.addAfter(key, after); }, (e) => { this.report(e, 'pod restart'); this.queue.addAfter(key, 1000); }));
      return;
    }
    const old = pod.status?.conditions ?? [];
    const notReady = (type: string): PodCondition => ({ type, status: 'False', reason: 'PodCompleted', lastProbeTime: null as unknown as string, lastTransitionTime: t });
    const conditions = old.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady' || c.type === 'PodReadyToStartContainers' ? (c.type === 'PodReadyToStartContainers' ? { ...c, status: 'False', lastTransitionTime: t } : notReady(c.type)) : c));
    const containerStatuses = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name, ready: false, started: false, restartCount: pod.status?.containerStatuses?.find((x) => x.name === c.name)?.restartCount ?? 0,
      state: { terminated: { exitCode: code, reason: failed ? 'Error' : 'Completed', startedAt: rfc3339(st.startedAt!), finishedAt: t, containerID: `simulated://${uid}-${c.name}` } },
      image: c.image ?? '', imageID: `simulated://${c.image ?? ''}`, containerID: `simulated://${uid}-${c.name}`,
    }));
    const status = { phase: failed ? 'Failed' : 'Succeeded', conditions, containerStatuses };
    this.track(this.podClient.patch(PODS, pod.metadata!.namespace!, pod.metadata!.name!, { status }, 'merge', { subresource: 'status' })
      .then(() => { st.writtenFrom = pod.metadata?.resourceVersion; this.stats.podsExited++; }, (e) => { this.report(e, 'pod exit'); this.queue.addAfter(key, 1000); }));
  }

  // ---- helpers ----

  private mustGet(nodeName: string): SimNode {
    const n = this.nodes.get(nodeName);
    if (!n) throw new Error(`no simulated node ${JSON.stringify(nodeName)}`);
    return n;
  }

  private report(e: unknown, during: string): void {
    this.stats.errors++;
    if (this.opts.onError) { this.opts.onError(e, during); return; }
    if (this.loggedErrors++ < 20) console.error(`simulated nodes: ${during}:`, e instanceof Error ? e.message : e);
  }
}
