// Node lifecycle controller, as upstream's node-lifecycle-controller with the taint-eviction
// controller beside it.
//
// Health: every nodeMonitorPeriod each node is looked at. Its agent proves it is alive by renewing
// its Lease in kube-node-lease (spec.renewTime) or by posting a new Ready heartbeat; we note (on our
// own clock, so clock skew does not matter) when either last changed. A node silent for longer than
// nodeMonitorGracePeriod (nodeStartupGracePeriod while it has never posted Ready) gets every
// condition set to Unknown ("Kubelet stopped posting node status."), and its pods Ready=False.
//
// Taints follow the Ready condition: Unknown → node.kubernetes.io/unreachable, False →
// node.kubernetes.io/not-ready, each with NoSchedule and NoExecute; True → neither. The NoExecute
// taints carry timeAdded.
//
// Taint eviction: a pod bound to a node with NoExecute taints it does not tolerate is deleted at
// once; one tolerating them for tolerationSeconds is deleted that long after the taints were added
// (the smallest tolerationSeconds of the tolerations used); tolerating without tolerationSeconds
// keeps it. A deleted pod of an unreachable node stays terminating until the pod GC removes it.
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { Clock, EventRecorder, Informer, ResourceRef, RestClient, TimerHandle } from '../../client/index.js';
import { WorkQueue, indexFuncs, keyOf, realClock, runWorkers, splitKey, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import { type Taint, type Toleration, TaintNodeNotReady, TaintNodeUnreachable, minTolerationMs } from './taints.js';

const nodesRes: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const podsRes: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
const leasesRes: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };
export const NodeLeaseNamespace = 'kube-node-lease';

export interface NodeLifecycleTiming {
  /** how long a node may be silent before it is marked Unknown (upstream default 40 s) */
  nodeMonitorGracePeriodMs?: number;
  /** the same for a node that has never posted Ready (upstream default 60 s) */
  nodeStartupGracePeriodMs?: number;
  /** how often nodes are looked at (upstream default 5 s) */
  nodeMonitorPeriodMs?: number;
  /** accepted for compatibility with the old flag; eviction follows the pods' tolerationSeconds */
  podEvictionTimeoutMs?: number;
}

export const defaultTiming: Required<NodeLifecycleTiming> = {
  nodeMonitorGracePeriodMs: 40_000, nodeStartupGracePeriodMs: 60_000, nodeMonitorPeriodMs: 5_000, podEvictionTimeoutMs: 300_000,
};

/** A profile for simulated clusters and tests: a node is Unknown 8 s after its last heartbeat. */
export const fastTiming: Required<NodeLifecycleTiming> = {
  nodeMonitorGracePeriodMs: 8_000, nodeStartupGracePeriodMs: 16_000, nodeMonitorPeriodMs: 1_000, podEvictionTimeoutMs: 30_000,
};

export interface NodeLifecycleOptions extends NodeLifecycleTiming {
  client: RestClient;
  informerFor(res: ResourceRef): Informer;
  clock?: Clock;
  recorder?: EventRecorder;
  workers?: number;
  onError?(err: unknown): void;
}

interface Condition { type: string; status: string; reason?: string; message?: string; lastHeartbeatTime?: string; lastTransitionTime?: string }
interface NodeHealth { probeMs: number; renewTime?: string; heartbeat?: string }

const MONITORED_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

function rfc3339(ms: number): string { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }
function conditionsOf(node: KObject): Condition[] { return ((node.status as { conditions?: Condition[] } | undefined)?.conditions) ?? []; }
function taintsOf(node: KObject): Taint[] { return ((node.spec as { taints?: Taint[] } | undefined)?.taints) ?? []; }
function noExecuteTaints(node: KObject): Taint[] { return taintsOf(node).filter((t) => t.effect === 'NoExecute'); }

/** The node-condition taints a node should carry for its Ready condition. */
export function desiredConditionTaints(ready: Condition | undefined): Array<{ key: string; effect: string }> {
  const key = ready?.status === 'Unknown' ? TaintNodeUnreachable : ready?.status === 'False' ? TaintNodeNotReady : undefined;
  return key ? [{ key, effect: 'NoSchedule' }, { key, effect: 'NoExecute' }] : [];
}

export class NodeLifecycleController {
  private readonly clock: Clock;
  private readonly timing: Required<NodeLifecycleTiming>;
  private readonly health = new Map<string, NodeHealth>();
  /** pods waiting for their toleration to run out (namespace/name) */
  readonly evictionQueue: WorkQueue<string>;
  /** nodes whose taints need a look */
  readonly nodeQueue: WorkQueue<string>;
  private nodes!: Informer;
  private pods!: Informer;
  private leases!: Informer;

  constructor(private readonly opts: NodeLifecycleOptions) {
    this.clock = opts.clock ?? realClock;
    this.timing = {
      nodeMonitorGracePeriodMs: opts.nodeMonitorGracePeriodMs ?? defaultTiming.nodeMonitorGracePeriodMs,
      nodeStartupGracePeriodMs: opts.nodeStartupGracePeriodMs ?? defaultTiming.nodeStartupGracePeriodMs,
      nodeMonitorPeriodMs: opts.nodeMonitorPeriodMs ?? defaultTiming.nodeMonitorPeriodMs,
      podEvictionTimeoutMs: opts.podEvictionTimeoutMs ?? defaultTiming.podEvictionTimeoutMs,
    };
    this.evictionQueue = new WorkQueue<string>({ name: 'taint-eviction', clock: this.clock });
    this.nodeQueue = new WorkQueue<string>({ name: 'node-lifecycle', clock: this.clock });
  }

  async run(signal: AbortSignal): Promise<void> {
    this.nodes = this.opts.informerFor(nodesRes);
    this.pods = this.opts.informerFor(podsRes);
    this.leases = this.opts.informerFor(leasesRes);
    try { this.pods.indexer.addIndexers({ byNode: indexFuncs.byNode }); } catch { /* another controller added it */ }
    const enqueuePod = (p: KObject): void => {
      const node = (p.spec as { nodeName?: string } | undefined)?.nodeName;
      if (node && !p.metadata?.deletionTimestamp && this.nodes.indexer.getByKey(node) && noExecuteTaints(this.nodes.indexer.getByKey(node)!).length) this.evictionQueue.add(keyOf(p));
    };
    const offs = [
      this.nodes.addEventHandler({
        onAdd: (n) => this.nodeQueue.add(n.metadata!.name!),
        onUpdate: (a, n) => {
          this.nodeQueue.add(n.metadata!.name!);
          if (JSON.stringify(noExecuteTaints(a)) !== JSON.stringify(noExecuteTaints(n))) {
            for (const p of this.pods.indexer.byIndex('byNode', n.metadata!.name!)) this.evictionQueue.add(keyOf(p));
          }
        },
        onDelete: (n) => { this.health.delete(n.metadata!.name!); },
      }),
      this.pods.addEventHandler({
        onAdd: enqueuePod,
        onUpdate: (a, p) => { if ((a.spec as { nodeName?: string })?.nodeName !== (p.spec as { nodeName?: string })?.nodeName || a.metadata?.resourceVersion !== p.metadata?.resourceVersion) enqueuePod(p); },
      }),
    ];
    signal.addEventListener('abort', () => offs.forEach((f) => f()), { once: true });
    if (!(await waitForCacheSync(signal, this.nodes, this.pods, this.leases))) return;

    let timer: TimerHandle | undefined;
    const tick = (): void => {
      if (signal.aborted) return;
      void this.monitorNodes().catch((e) => this.report(e)).finally(() => {
        if (!signal.aborted) timer = this.clock.setTimeout(tick, this.timing.nodeMonitorPeriodMs);
      });
    };
    tick();
    const onError = (key: string, e: unknown): void => this.report(e, key);
    try {
      await Promise.all([
        runWorkers(this.nodeQueue, 1, (name) => this.syncTaints(name), signal, { onError }),
        runWorkers(this.evictionQueue, this.opts.workers ?? 4, (key) => this.syncPodEviction(key), signal, { onError }),
      ]);
    } finally {
      if (timer) this.clock.clearTimeout(timer);
    }
  }

  private report(e: unknown, key?: string): void {
    if (this.opts.onError) this.opts.onError(e);
    else if (!isStatusError(e, 'Conflict')) console.error(`node lifecycle controller${key ? `: ${key}` : ''}:`, e);
  }

  // ------------------------------------------------------------------ health

  /** One pass of the health check over every node. */
  async monitorNodes(): Promise<void> {
    const now = this.clock.now();
    for (const node of this.nodes.indexer.list()) {
      const name = node.metadata!.name!;
      const ready = conditionsOf(node).find((c) => c.type === 'Ready');
      const lease = this.leases.indexer.getByKey(`${NodeLeaseNamespace}/${name}`);
      const renewTime = (lease?.spec as { renewTime?: string } | undefined)?.renewTime;
      let h = this.health.get(name);
      if (!h) {
        this.health.set(name, (h = { probeMs: now, renewTime, heartbeat: ready?.lastHeartbeatTime }));
      } else if (h.renewTime !== renewTime || h.heartbeat !== ready?.lastHeartbeatTime) {
        if ((renewTime && renewTime !== h.renewTime) || (ready?.lastHeartbeatTime && ready.lastHeartbeatTime !== h.heartbeat)) h.probeMs = now;
        h.renewTime = renewTime;
        h.heartbeat = ready?.lastHeartbeatTime;
      }
      const grace = ready ? this.timing.nodeMonitorGracePeriodMs : this.timing.nodeStartupGracePeriodMs;
      if (now - h.probeMs <= grace) continue;
      if (MONITORED_CONDITIONS.every((t) => conditionsOf(node).find((c) => c.type === t)?.status === 'Unknown')) continue;
      try {
        await this.markUnknown(node, now);
      } catch (e) {
        if (!isStatusError(e, 'Conflict') && !isStatusError(e, 'NotFound')) this.report(e, name);
      }
    }
  }

  private async markUnknown(node: KObject, now: number): Promise<void> {
    const next = structuredClone(node);
    const status = (next.status ??= {}) as { conditions?: Condition[] };
    const conds = (status.conditions ??= []);
    const ts = rfc3339(now);
    for (const type of MONITORED_CONDITIONS) {
      const c = conds.find((x) => x.type === type);
      if (!c) {
        conds.push({ type, status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastHeartbeatTime: rfc3339(Date.parse(node.metadata?.creationTimestamp ?? '') || now), lastTransitionTime: ts });
      } else if (c.status !== 'Unknown') {
        c.status = 'Unknown';
        c.reason = 'NodeStatusUnknown';
        c.message = 'Kubelet stopped posting node status.';
        c.lastTransitionTime = ts;
      }
    }
    const written = await this.opts.client.updateStatus(nodesRes, undefined, next);
    this.opts.recorder?.eventf(written, 'Normal', 'NodeNotReady', 'Node %s status is now: NodeNotReady', node.metadata!.name!);
    await this.markPodsNotReady(node.metadata!.name!);
  }

  /** Sets Ready=False on the pods of a node that stopped reporting (endpoints then drop them). */
  private async markPodsNotReady(nodeName: string): Promise<void> {
    for (const pod of this.pods.indexer.byIndex('byNode', nodeName)) {
      const conds = ((pod.status as { conditions?: Condition[] } | undefined)?.conditions) ?? [];
      const ready = conds.find((c) => c.type === 'Ready');
      if (!ready || ready.status === 'False') continue;
      const next = structuredClone(pod);
      const c = ((next.status as { conditions: Condition[] }).conditions).find((x) => x.type === 'Ready')!;
      c.status = 'False';
      c.lastTransitionTime = rfc3339(this.clock.now());
      try {
        await this.opts.client.updateStatus(podsRes, pod.metadata!.namespace, next);
      } catch (e) {
        if (!isStatusError(e, 'Conflict') && !isStatusError(e, 'NotFound')) this.report(e, keyOf(pod));
      }
    }
  }

  // ------------------------------------------------------------------ taints

  /** Brings the node's not-ready / unreachable taints in line with its Ready condition. */
  async syncTaints(name: string): Promise<void> {
    const node = this.nodes.indexer.getByKey(name);
    if (!node) return;
    const want = desiredConditionTaints(conditionsOf(node).find((c) => c.type === 'Ready'));
    const managed = (t: Taint): boolean => t.key === TaintNodeNotReady || t.key === TaintNodeUnreachable;
    const have = taintsOf(node).filter(managed);
    const same = have.length === want.length && want.every((w) => have.some((h) => h.key === w.key && h.effect === w.effect));
    if (same) return;
    const next = structuredClone(node);
    const now = rfc3339(this.clock.now());
    const kept = taintsOf(node).filter((t) => !managed(t));
    const added = want.map((w) => {
      const old = have.find((h) => h.key === w.key && h.effect === w.effect);
      return old ?? (w.effect === 'NoExecute' ? { ...w, timeAdded: now } : { ...w });
    });
    const spec = (next.spec ??= {}) as { taints?: Taint[] };
    spec.taints = [...kept, ...added];
    if (spec.taints.length === 0) delete spec.taints;
    try {
      await this.opts.client.update(nodesRes, undefined, next);
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return;
      throw e; // Conflict: the queue retries with the newer node
    }
  }

  // ------------------------------------------------------------------ taint eviction

  async syncPodEviction(key: string): Promise<void> {
    const pod = this.pods.indexer.getByKey(key);
    if (!pod || pod.metadata?.deletionTimestamp) return;
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    if (!nodeName) return;
    const node = this.nodes.indexer.getByKey(nodeName);
    if (!node) return;
    const taints = noExecuteTaints(node);
    if (taints.length === 0) return;
    const tolerations = ((pod.spec as { tolerations?: Toleration[] }).tolerations) ?? [];
    const wait = minTolerationMs(tolerations, taints);
    if (wait === Infinity) return;
    if (wait !== undefined) {
      const since = Math.max(...taints.map((t) => (t.timeAdded ? Date.parse(t.timeAdded) : NaN)).filter((x) => !Number.isNaN(x)), -Infinity);
      const start = Number.isFinite(since) ? since : this.clock.now();
      const due = start + wait - this.clock.now();
      if (due > 0) { this.evictionQueue.addAfter(key, due); return; }
    }
    const { namespace, name } = splitKey(key);
    this.opts.recorder?.eventf(pod, 'Normal', 'TaintManagerEviction', 'Marking for deletion Pod %s', key);
    try {
      await this.opts.client.delete(podsRes, namespace, name, { preconditions: { uid: pod.metadata!.uid } });
    } catch (e) {
      if (isStatusError(e, 'NotFound') || isStatusError(e, 'Conflict')) return;
      throw e;
    }
  }
}

/** Runs the node lifecycle controller on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<NodeLifecycleOptions> = {}): Promise<void> {
  await new NodeLifecycleController({
    client: ctx.client, informerFor: (r) => ctx.informers.informerFor(r), clock: ctx.clock,
    recorder: ctx.recorder('node-controller'), ...opts,
  }).run(signal);
}
