// The ReplicaSet controller: keeps `spec.replicas` active pods matching a ReplicaSet's selector,
// adopting orphans and releasing pods that stopped matching, and reports counts in its status.
// Level-triggered: informer handlers only enqueue `namespace/name` keys; sync(key) does the work.
// Expectations keep a cache that lags behind our own writes from causing duplicate creates/deletes.
import type { KObject } from '../../api/types.js';
import { selectorFromLabelSelector, type LabelSelector } from '../../machinery/labels.js';
import { isStatusError } from '../../machinery/status.js';
import {
  type Clock, type EventRecorder, type Informer, type PatchType, type ResourceRef, WorkQueue, indexFuncs, keyOf,
  realClock, runWorkers, splitKey,
} from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import { claimObjects, newControllerRef } from './controller-ref.js';
import { ControllerExpectations } from './expectations.js';
import { controllerRefOf, isPodActive, isPodAvailable, isPodReady, podsToDelete } from './pod-util.js';
import type { Pod, ReplicaSet, ReplicaSetCondition } from './types.js';

export const replicaSetsResource: ResourceRef = { group: 'apps', version: 'v1', plural: 'replicasets' };
export const podsResource: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
export const controllerName = 'replicaset-controller';
/** upstream's BurstReplicas: at most this many creates/deletes per sync */
export const burstReplicas = 500;
/** upstream's SlowStartInitialBatchSize */
export const slowStartInitialBatchSize = 1;

/** What the controller needs of a client; RestClient fits. */
export interface ReplicaSetClient {
  get<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string): Promise<T>;
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  updateStatus<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  patch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType): Promise<T>;
  delete(res: ResourceRef, ns: string | undefined | null, name: string, opts?: { preconditions?: { uid?: string } }): Promise<unknown>;
}

export interface ReplicaSetControllerOptions {
  client: ReplicaSetClient;
  rsInformer: Informer<ReplicaSet>;
  podInformer: Informer<Pod>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
}

/**
 * Runs the ReplicaSet controller on the context's shared informers until signal aborts; resolves
 * when stopped.
 */
export async function start(ctx: ControllerContext, signal: AbortSignal): Promise<void> {
  const c = new ReplicaSetController({
    client: ctx.client,
    rsInformer: ctx.informers.informerFor<ReplicaSet>(replicaSetsResource, { indexers: { byControllerOwner: indexFuncs.byControllerOwner } }),
    podInformer: ctx.informers.informerFor<Pod>(podsResource, { indexers: { byControllerOwner: indexFuncs.byControllerOwner } }),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

/** Slow-start batches (1, 2, 4, … capped by what remains); stops at the first batch with an error.
 *  Returns the number of successes and the first error. */
export async function slowStartBatch(count: number, initialBatchSize: number, fn: () => Promise<void>): Promise<{ successes: number; error?: unknown }> {
  let remaining = count;
  let successes = 0;
  for (let batch = Math.min(remaining, initialBatchSize); batch > 0; batch = Math.min(2 * batch, remaining)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => fn()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    successes += batch - failed.length;
    if (failed.length) return { successes, error: failed[0]!.reason };
    remaining -= batch;
  }
  return { successes };
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

export class ReplicaSetController {
  readonly queue: WorkQueue<string>;
  readonly expectations: ControllerExpectations;
  private readonly clock: Clock;
  private readonly client: ReplicaSetClient;
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly recorder?: Pick<EventRecorder, 'event'>;
  private readonly selectorCache = new WeakMap<object, LabelSelector>();

  constructor(private readonly opts: ReplicaSetControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.client = opts.client;
    this.rsInformer = opts.rsInformer;
    this.podInformer = opts.podInformer;
    this.recorder = opts.recorder;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'replicaset' });
    this.expectations = new ControllerExpectations(this.clock);
    this.rsInformer.addEventHandler({
      onAdd: (rs) => this.enqueue(rs),
      onUpdate: (_o, rs) => this.enqueue(rs),
      onDelete: (rs) => { this.expectations.delete(keyOf(rs)); this.enqueue(rs); },
    });
    this.podInformer.addEventHandler({
      onAdd: (p) => this.addPod(p),
      onUpdate: (o, p) => this.updatePod(o, p),
      onDelete: (p) => this.deletePod(p),
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const synced = await Promise.all([this.rsInformer.waitForSync(signal), this.podInformer.waitForSync(signal)]);
    if (!synced.every(Boolean)) return;
    await runWorkers(this.queue, this.opts.workers ?? 5, (k) => this.sync(k), signal, {
      onError: (k, e) => { if (!isStatusError(e, 'Conflict')) console.error(`${controllerName}: sync ${k}: ${errMessage(e)}`); },
    });
  }

  private enqueue(rs: ReplicaSet): void { this.queue.add(keyOf(rs)); }

  private selectorOf(rs: ReplicaSet): LabelSelector {
    const sel = rs.spec?.selector;
    if (!sel) return selectorFromLabelSelector(null);
    let s = this.selectorCache.get(sel);
    if (!s) {
      try { s = selectorFromLabelSelector(sel); } catch { s = selectorFromLabelSelector(null); }
      this.selectorCache.set(sel, s);
    }
    return s;
  }

  /** The ReplicaSet a controllerRef points at, if it is in the cache with the same uid. */
  private resolveControllerRef(ns: string | undefined, pod: Pod): ReplicaSet | undefined {
    const ref = controllerRefOf(pod);
    if (!ref || ref.kind !== 'ReplicaSet') return undefined;
    const rs = this.rsInformer.lister.get(ns, ref.name);
    return rs && rs.metadata?.uid === ref.uid ? rs : undefined;
  }

  private replicaSetsMatching(pod: Pod): ReplicaSet[] {
    const labels = pod.metadata?.labels;
    if (!labels) return [];
    return this.rsInformer.lister.list(pod.metadata?.namespace).filter((rs) => {
      const s = this.selectorOf(rs);
      return !s.empty && s.matches(labels);
    });
  }

  private addPod(pod: Pod): void {
    if (pod.metadata?.deletionTimestamp) { this.deletePod(pod); return; }
    if (controllerRefOf(pod)) {
      const rs = this.resolveControllerRef(pod.metadata?.namespace, pod);
      if (!rs) return;
      this.expectations.creationObserved(keyOf(rs));
      this.enqueue(rs);
      return;
    }
    for (const rs of this.replicaSetsMatching(pod)) this.enqueue(rs);
  }

  private updatePod(old: Pod, cur: Pod): void {
    if (old.metadata?.resourceVersion === cur.metadata?.resourceVersion) return;
    const labelsChanged = JSON.stringify(old.metadata?.labels ?? {}) !== JSON.stringify(cur.metadata?.labels ?? {});
    if (cur.metadata?.deletionTimestamp) {
      this.deletePod(cur);
      if (labelsChanged) this.deletePod(old);
      return;
    }
    const oldRef = controllerRefOf(old), curRef = controllerRefOf(cur);
    const refChanged = oldRef?.uid !== curRef?.uid;
    if (refChanged && oldRef) {
      const rs = this.resolveControllerRef(old.metadata?.namespace, old);
      if (rs) this.enqueue(rs);
    }
    if (curRef) {
      const rs = this.resolveControllerRef(cur.metadata?.namespace, cur);
      if (!rs) return;
      this.enqueue(rs);
      const mrs = rs.spec?.minReadySeconds ?? 0;
      if (mrs > 0 && !isPodReady(old) && isPodReady(cur)) this.queue.addAfter(keyOf(rs), mrs * 1000 + 1000);
      return;
    }
    if (labelsChanged || refChanged) for (const rs of this.replicaSetsMatching(cur)) this.enqueue(rs);
  }

  private deletePod(pod: Pod): void {
    const rs = this.resolveControllerRef(pod.metadata?.namespace, pod);
    if (!rs) return;
    const key = keyOf(rs);
    this.expectations.deletionObserved(key, keyOf(pod));
    this.queue.add(key);
  }

  /** Reconciles one ReplicaSet. Throws to be retried. */
  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const cached = this.rsInformer.lister.get(namespace, name);
    if (!cached) { this.expectations.delete(key); return; }
    const rs = structuredClone(cached);
    const needsSync = this.expectations.satisfied(key);
    const selector = this.selectorOf(rs);

    const active = this.podInformer.lister.list(namespace).filter(isPodActive);
    const pods = await claimObjects<Pod>(active, {
      client: this.client, resource: podsResource, owner: rs, ownerApiVersion: 'apps/v1', ownerKind: 'ReplicaSet',
      matches: (p) => !selector.empty && selector.matches(p.metadata?.labels),
      canAdopt: async () => {
        const fresh = await this.client.get<ReplicaSet>(replicaSetsResource, namespace, name);
        if (fresh.metadata?.uid !== rs.metadata?.uid) throw new Error(`original ReplicaSet ${key} is gone: got uid ${fresh.metadata?.uid}, wanted ${rs.metadata?.uid}`);
        if (fresh.metadata?.deletionTimestamp) throw new Error(`ReplicaSet ${key} has just been deleted at ${fresh.metadata.deletionTimestamp}`);
      },
    });

    let manageErr: unknown;
    if (needsSync && !rs.metadata?.deletionTimestamp) {
      try { await this.manageReplicas(key, pods, rs); } catch (e) { manageErr = e; }
    }

    const status = this.calculateStatus(rs, pods, manageErr);
    const updated = await this.updateStatusIfNeeded(rs, status);
    if (manageErr) throw manageErr;
    const mrs = rs.spec?.minReadySeconds ?? 0;
    const want = rs.spec?.replicas ?? 1;
    if (mrs > 0 && updated.status?.readyReplicas === want && updated.status?.availableReplicas !== want) {
      this.queue.addAfter(key, mrs * 1000);
    }
  }

  private async manageReplicas(key: string, pods: Pod[], rs: ReplicaSet): Promise<void> {
    const want = rs.spec?.replicas ?? 1;
    let diff = pods.length - want;
    if (diff < 0) {
      diff = Math.min(-diff, burstReplicas);
      this.expectations.expectCreations(key, diff);
      const { successes, error } = await slowStartBatch(diff, slowStartInitialBatchSize, async () => {
        try {
          const created = await this.client.create<Pod>(podsResource, rs.metadata?.namespace, this.podFromTemplate(rs));
          this.recorder?.event(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata?.name ?? ''}`);
        } catch (e) {
          if (isStatusError(e, 'Timeout')) return; // may still be created; the informer will tell
          this.expectations.creationObserved(key);
          this.recorder?.event(rs, 'Warning', 'FailedCreate', `Error creating: ${errMessage(e)}`);
          throw e;
        }
      });
      const skipped = diff - successes - (error ? 1 : 0);
      if (skipped > 0) this.expectations.lowerExpectations(key, skipped);
      if (error) throw error;
    } else if (diff > 0) {
      diff = Math.min(diff, burstReplicas);
      const victims = podsToDelete(pods, this.relatedPods(rs), diff, this.clock.now());
      const victimKeys = victims.map((p) => keyOf(p));
      this.expectations.expectDeletions(key, victimKeys);
      const results = await Promise.allSettled(victims.map(async (p) => {
        try {
          await this.client.delete(podsResource, p.metadata?.namespace, p.metadata!.name!, { preconditions: { uid: p.metadata?.uid } });
          this.recorder?.event(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata!.name}`);
        } catch (e) {
          this.expectations.lowerExpectations(key, 0, [keyOf(p)]);
          if (isStatusError(e, 'NotFound')) return;
          this.recorder?.event(rs, 'Warning', 'FailedDelete', `Error deleting: ${errMessage(e)}`);
          throw e;
        }
      }));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  /** Pods controlled by any ReplicaSet that shares this one's controller (e.g. the same Deployment). */
  private relatedPods(rs: ReplicaSet): Pod[] {
    const owner = controllerRefOf(rs);
    const sets = owner ? this.rsInformer.lister.list(rs.metadata?.namespace).filter((x) => controllerRefOf(x)?.uid === owner.uid) : [rs];
    const out: Pod[] = [];
    for (const s of sets) {
      const uid = s.metadata?.uid;
      if (uid) out.push(...this.podInformer.lister.byIndex('byControllerOwner', uid));
    }
    return out;
  }

  podFromTemplate(rs: ReplicaSet): Pod {
    const t = rs.spec?.template ?? {};
    const meta = t.metadata ?? {};
    const pod: Pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        generateName: `${rs.metadata!.name}-`,
        namespace: rs.metadata?.namespace,
        labels: { ...(meta.labels ?? {}) },
        ownerReferences: [newControllerRef(rs, 'apps/v1', 'ReplicaSet')],
      },
      spec: structuredClone(t.spec ?? {}),
    };
    if (meta.annotations && Object.keys(meta.annotations).length) pod.metadata!.annotations = { ...meta.annotations };
    if (meta.finalizers?.length) pod.metadata!.finalizers = [...meta.finalizers];
    return pod;
  }

  calculateStatus(rs: ReplicaSet, pods: Pod[], manageErr: unknown): NonNullable<ReplicaSet['status']> {
    const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
    const now = this.clock.now();
    const mrs = rs.spec?.minReadySeconds ?? 0;
    let fully = 0, ready = 0, available = 0;
    for (const p of pods) {
      const l = p.metadata?.labels ?? {};
      if (Object.entries(templateLabels).every(([k, v]) => l[k] === v)) fully++;
      if (isPodReady(p)) ready++;
      if (isPodAvailable(p, mrs, now)) available++;
    }
    let conditions = [...(rs.status?.conditions ?? [])];
    const failure = conditions.find((c) => c.type === 'ReplicaFailure');
    if (manageErr && !failure) {
      const diff = pods.length - (rs.spec?.replicas ?? 1);
      const cond: ReplicaSetCondition = {
        type: 'ReplicaFailure', status: 'True', lastTransitionTime: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        reason: diff < 0 ? 'FailedCreate' : diff > 0 ? 'FailedDelete' : '', message: errMessage(manageErr),
      };
      conditions.push(cond);
    } else if (!manageErr && failure) {
      conditions = conditions.filter((c) => c.type !== 'ReplicaFailure');
    }
    const status: NonNullable<ReplicaSet['status']> = {
      replicas: pods.length, fullyLabeledReplicas: fully, readyReplicas: ready, availableReplicas: available,
      observedGeneration: rs.metadata?.generation ?? rs.status?.observedGeneration,
    };
    if (conditions.length) status.conditions = conditions;
    return status;
  }

  private async updateStatusIfNeeded(rs: ReplicaSet, status: NonNullable<ReplicaSet['status']>): Promise<ReplicaSet> {
    const cur = rs.status ?? {};
    const same = (cur.replicas ?? 0) === status.replicas && (cur.fullyLabeledReplicas ?? 0) === status.fullyLabeledReplicas
      && (cur.readyReplicas ?? 0) === status.readyReplicas && (cur.availableReplicas ?? 0) === status.availableReplicas
      && cur.observedGeneration === status.observedGeneration
      && JSON.stringify(cur.conditions ?? []) === JSON.stringify(status.conditions ?? []);
    if (same) return rs;
    return this.client.updateStatus<ReplicaSet>(replicaSetsResource, rs.metadata?.namespace, { ...rs, status });
  }
}
