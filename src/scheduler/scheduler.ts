// The scheduler: informers on pods, nodes and namespaces feed the cache (assigned pods, nodes) and
// the scheduling queue (pending pods with our schedulerName); one loop pops a pod, runs the
// framework synchronously, assumes the pod on the chosen node, and binds it through pods/binding
// asynchronously while the next pod is already being placed. A pod that fits nowhere gets
// PodScheduled=False/Unschedulable and a FailedScheduling event, and waits for a cluster change
// or its backoff.
import type { Namespace as V1Namespace, Node as V1Node, Pod as V1Pod } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../api/types.js';
import { type Clock, realClock } from '../client/clock.js';
import { EventRecorder } from '../client/event-recorder.js';
import { Informer, waitForCacheSync } from '../client/informer.js';
import type { RestClient, ResourceRef } from '../client/rest-client.js';
import { isStatusError } from '../machinery/status.js';
import { SchedulerCache } from './cache.js';
import type { Framework } from './framework.js';
import type { PodInfo } from './node-info.js';
import { SchedulingQueue, type QueuedPodInfo } from './queue.js';
import { buildFramework, type ScoringProfile } from './registry.js';
import { FitError, ScheduleAlgorithm } from './schedule-algorithm.js';
import { recordAttempt, trackPendingPods } from './metrics.js'; // prometheus

type Pod = V1Pod & KObject;
type Node = V1Node & KObject;
type Namespace = V1Namespace & KObject;

export const podsResource: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
export const nodesResource: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
export const namespacesResource: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };

export const DefaultSchedulerName = 'default-scheduler';

export interface SchedulerOptions {
  /** pods whose spec.schedulerName equals this are ours (default 'default-scheduler') */
  schedulerName?: string;
  /** resource scoring: LeastAllocated (spread, default) or MostAllocated (bin packing) */
  profile?: ScoringProfile;
  clock?: Clock;
  /** binding requests in flight at most (default 64) */
  parallelism?: number;
  /** percentageOfNodesToScore; 0/undefined = adaptive (50 - nodes/125, at least 5) */
  percentageOfNodesToScore?: number;
  /** backoff of failed pods (upstream: 1 s → 10 s) */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** emit a Normal "Scheduled" event per bound pod (default true, as upstream) */
  recordScheduledEvents?: boolean;
  /** unexpected errors (default console.error) */
  onError?(err: unknown, context: string): void;
}

export interface SchedulerMetrics {
  /** pods bound */
  scheduled: number;
  /** attempts that found no node */
  unschedulable: number;
  /** binding requests that failed */
  bindErrors: number;
  /** scheduling attempts */
  attempts: number;
  /** ms from first queued to bound, last 100 000 pods */
  e2eLatencyMs: number[];
  /** ms of the synchronous algorithm per attempt, last 100 000 */
  algorithmMs: number[];
}

function isAssigned(p: Pod): boolean { return !!p.spec?.nodeName; }
function isTerminal(p: Pod): boolean { const ph = p.status?.phase; return ph === 'Succeeded' || ph === 'Failed'; }
function keyOfPod(p: V1Pod): string { return `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`; }

/** What of a node, when changed, may let pending pods fit (heartbeats do not count). */
function nodeSchedulingRelevant(n: Node): string {
  return JSON.stringify([n.metadata?.labels, n.spec?.taints, n.spec?.unschedulable, n.status?.allocatable, n.status?.capacity]);
}

export class Scheduler {
  readonly schedulerName: string;
  readonly cache = new SchedulerCache();
  readonly queue: SchedulingQueue;
  readonly framework: Framework;
  readonly metrics: SchedulerMetrics = { scheduled: 0, unschedulable: 0, bindErrors: 0, attempts: 0, e2eLatencyMs: [], algorithmMs: [] };
  private readonly algorithm: ScheduleAlgorithm;
  private readonly clock: Clock;
  private readonly recorder: EventRecorder;
  private readonly podInformer: Informer<Pod>;
  private readonly nodeInformer: Informer<Node>;
  private readonly nsInformer: Informer<Namespace>;
  private readonly inflight = new Set<Promise<void>>();
  private readonly maxInflight: number;
  private slotWaiter: (() => void) | undefined;

  constructor(private readonly client: RestClient, private readonly opts: SchedulerOptions = {}) {
    this.schedulerName = opts.schedulerName ?? DefaultSchedulerName;
    this.clock = opts.clock ?? realClock;
    this.maxInflight = Math.max(1, opts.parallelism ?? 64);
    this.queue = new SchedulingQueue({ clock: this.clock, initialBackoffMs: opts.initialBackoffMs, maxBackoffMs: opts.maxBackoffMs });
    this.framework = buildFramework(this.schedulerName, { scoring: opts.profile ?? 'LeastAllocated' });
    this.algorithm = new ScheduleAlgorithm(this.framework, { percentageOfNodesToScore: opts.percentageOfNodesToScore });
    this.recorder = new EventRecorder({ client, component: this.schedulerName, clock: this.clock });
    const onError = (e: unknown, during: string): void => this.report(e, `informer ${during}`);
    this.podInformer = new Informer<Pod>({ client, resource: podsResource, clock: this.clock, onError });
    this.nodeInformer = new Informer<Node>({ client, resource: nodesResource, clock: this.clock, onError });
    this.nsInformer = new Informer<Namespace>({ client, resource: namespacesResource, clock: this.clock, onError });
    this.wireHandlers();
  }

  /** Is this pending pod ours to schedule? */
  responsibleFor(p: Pod): boolean {
    return (p.spec?.schedulerName ?? DefaultSchedulerName) === this.schedulerName && !isAssigned(p) && !p.metadata?.deletionTimestamp && !isTerminal(p);
  }

  private wireHandlers(): void {
    this.podInformer.addEventHandler({
      onAdd: (p) => {
        if (isAssigned(p)) {
          if (isTerminal(p)) return;
          this.cache.addOrUpdatePod(p);
          this.queue.delete(keyOfPod(p));
          this.queue.moveAllToActiveOrBackoff('AssignedPodAdd');
        } else if (this.responsibleFor(p)) this.queue.add(p);
      },
      onUpdate: (old, p) => {
        const key = keyOfPod(p);
        if (isAssigned(p)) {
          this.queue.delete(key);
          if (isTerminal(p)) {
            if (this.cache.nodeOf(key) !== undefined) { this.cache.removePod(key); this.queue.moveAllToActiveOrBackoff('AssignedPodDelete'); }
            return;
          }
          const wasKnown = this.cache.nodeOf(key) !== undefined && !this.cache.isAssumed(key);
          this.cache.addOrUpdatePod(p);
          this.queue.done(key);
          if (wasKnown && old.metadata?.resourceVersion !== p.metadata?.resourceVersion) this.queue.moveAllToActiveOrBackoff('AssignedPodUpdate');
          else if (!wasKnown) this.queue.moveAllToActiveOrBackoff('AssignedPodAdd');
          return;
        }
        if (this.cache.isAssumed(key)) return; // being bound right now
        if (this.responsibleFor(p)) this.queue.update(old, p);
        else this.queue.delete(key);
      },
      onDelete: (p) => {
        const key = keyOfPod(p);
        this.queue.delete(key);
        if (this.cache.nodeOf(key) !== undefined) {
          this.cache.removePod(key);
          this.queue.moveAllToActiveOrBackoff('AssignedPodDelete');
        }
      },
    });
    this.nodeInformer.addEventHandler({
      onAdd: (n) => { this.cache.addOrUpdateNode(n); this.queue.moveAllToActiveOrBackoff('NodeAdd'); },
      onUpdate: (old, n) => {
        this.cache.addOrUpdateNode(n);
        if (nodeSchedulingRelevant(old) !== nodeSchedulingRelevant(n)) this.queue.moveAllToActiveOrBackoff('NodeUpdate');
      },
      onDelete: (n) => { this.cache.removeNode(n.metadata!.name!); },
    });
    this.nsInformer.addEventHandler({
      onAdd: (ns) => this.cache.setNamespaceLabels(ns.metadata!.name!, ns.metadata?.labels ?? {}),
      onUpdate: (_o, ns) => this.cache.setNamespaceLabels(ns.metadata!.name!, ns.metadata?.labels ?? {}),
      onDelete: (ns) => this.cache.setNamespaceLabels(ns.metadata!.name!, undefined),
    });
  }

  /** Runs until signal aborts; resolves once informers, the loop and in-flight binds have stopped. */
  async run(signal: AbortSignal): Promise<void> {
    const informers = [this.nodeInformer.run(signal), this.nsInformer.run(signal), this.podInformer.run(signal)];
    try {
      if (!(await waitForCacheSync(signal, this.nodeInformer, this.nsInformer, this.podInformer))) return;
      this.queue.start();
      const untrack = trackPendingPods(this.queue); // prometheus
      signal.addEventListener('abort', untrack, { once: true }); // prometheus
      signal.addEventListener('abort', () => this.queue.close(), { once: true });
      let sliceStart = performance.now();
      for (;;) {
        const q = this.queue.tryPop() ?? (await this.queue.pop(signal));
        if (!q || signal.aborted) break;
        if (this.inflight.size >= this.maxInflight) await this.waitForSlot(signal);
        this.scheduleOne(q);
        // let I/O (watch events, bind replies) in regularly
        if (performance.now() - sliceStart > 8) {
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
    } finally {
      this.queue.close();
      await Promise.allSettled([...this.inflight]);
      await Promise.allSettled(informers);
      await this.recorder.close();
    }
  }

  private waitForSlot(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { signal.removeEventListener('abort', done); this.slotWaiter = undefined; resolve(); };
      this.slotWaiter = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One scheduling cycle for q (synchronous); the bind runs on in the background. */
  scheduleOne(q: QueuedPodInfo): void {
    const pod = q.podInfo;
    // skip pods that were bound or deleted since they were queued
    const cur = this.podInformer.indexer.getByKey(q.key);
    if (!cur || !this.responsibleFor(cur) || this.cache.nodeOf(q.key) !== undefined) { this.queue.done(q.key); return; }
    const cycle = this.queue.cycle;
    this.metrics.attempts++;
    const t0 = performance.now();
    let nodeName: string;
    try {
      nodeName = this.algorithm.schedule(pod, this.cache).nodeName;
    } catch (e) {
      this.pushSample(this.metrics.algorithmMs, performance.now() - t0);
      recordAttempt(this.schedulerName, e instanceof FitError || (e as Error)?.message === 'no nodes available to schedule pods' ? 'unschedulable' : 'error', t0); // prometheus
      this.handleFailure(q, cycle, e);
      return;
    }
    this.pushSample(this.metrics.algorithmMs, performance.now() - t0);
    this.cache.assumePod(pod, nodeName);
    const p = this.bind(q, pod, nodeName, cycle, t0);
    this.inflight.add(p);
    void p.finally(() => {
      this.inflight.delete(p);
      this.slotWaiter?.();
    });
  }

  private async bind(q: QueuedPodInfo, pod: PodInfo, nodeName: string, cycle: number, t0 = performance.now()): Promise<void> {
    const m = pod.pod.metadata!;
    try {
      await this.client.createSubresource(podsResource, m.namespace, m.name!, 'binding', {
        apiVersion: 'v1', kind: 'Binding',
        metadata: { name: m.name, namespace: m.namespace },
        target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
      });
    } catch (e) {
      recordAttempt(this.schedulerName, 'error', t0); // prometheus
      this.metrics.bindErrors++;
      this.cache.forgetPod(pod.key);
      if (isStatusError(e, 'NotFound')) { this.queue.done(pod.key); return; }
      // someone else bound it, or it is being deleted: the informer will tell
      if (isStatusError(e, 'Conflict')) { this.queue.done(pod.key); return; }
      this.report(e, `binding ${pod.key} to ${nodeName}`);
      this.queue.addUnschedulable(q, cycle, false);
      return;
    }
    this.metrics.scheduled++;
    recordAttempt(this.schedulerName, 'scheduled', t0); // prometheus
    this.pushSample(this.metrics.e2eLatencyMs, this.clock.now() - q.initialTimestamp);
    if (this.opts.recordScheduledEvents !== false) {
      this.recorder.event(this.podRef(pod.pod), 'Normal', 'Scheduled', `Successfully assigned ${m.namespace}/${m.name} to ${nodeName}`);
    }
  }

  private handleFailure(q: QueuedPodInfo, cycle: number, err: unknown): void {
    const pod = q.podInfo.pod;
    let message: string;
    if (err instanceof FitError) {
      this.metrics.unschedulable++;
      q.unschedulablePlugins = err.diagnosis.unschedulablePlugins;
      message = err.message;
      this.queue.addUnschedulable(q, cycle, true);
    } else {
      message = err instanceof Error ? err.message : String(err);
      const noNodes = message === 'no nodes available to schedule pods';
      if (noNodes) { this.metrics.unschedulable++; q.unschedulablePlugins = new Set(); }
      else this.report(err, `scheduling ${q.key}`);
      this.queue.addUnschedulable(q, cycle, noNodes);
    }
    this.recorder.event(this.podRef(pod), 'Warning', 'FailedScheduling', message);
    void this.setUnschedulableCondition(pod, message);
  }

  private async setUnschedulableCondition(pod: V1Pod, message: string): Promise<void> {
    const existing = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (existing && existing.status === 'False' && existing.reason === 'Unschedulable' && existing.message === message) return;
    const m = pod.metadata!;
    const now = new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const condition = {
      type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null,
      lastTransitionTime: existing?.status === 'False' && existing.lastTransitionTime ? existing.lastTransitionTime : now,
    };
    try {
      await this.client.patch(podsResource, m.namespace, m.name!, { status: { conditions: [condition] } }, 'strategic', { subresource: 'status' });
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) this.report(e, `updating status of ${keyOfPod(pod)}`);
    }
  }

  private podRef(p: V1Pod): { kind: string; apiVersion: string; namespace?: string; name?: string; uid?: string; resourceVersion?: string } {
    const m = p.metadata ?? {};
    return { kind: 'Pod', apiVersion: 'v1', namespace: m.namespace, name: m.name, uid: m.uid, resourceVersion: m.resourceVersion };
  }

  private pushSample(arr: number[], v: number): void {
    if (arr.length >= 100_000) arr.splice(0, arr.length - 99_999);
    arr.push(v);
  }

  private report(e: unknown, context: string): void {
    if (this.opts.onError) this.opts.onError(e, context);
    else console.error(`scheduler: ${context}:`, e);
  }
}

/** Starts a scheduler; resolves when signal aborts and everything stopped (for `kyb server`). */
export function runScheduler(client: RestClient, signal: AbortSignal, opts: SchedulerOptions = {}): Promise<void> {
  return new Scheduler(client, opts).run(signal);
}
