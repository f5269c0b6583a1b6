// The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`),
// rolled from old to new by the RollingUpdate or Recreate strategy, with upstream's revision
// annotations, conditions (Progressing / Available / ReplicaFailure), pause, proportional scaling
// and history cleanup. Rollback (`kubectl rollout undo`) is a template change back to an old
// ReplicaSet's template: that ReplicaSet is found again and gets the next revision.
// Level-triggered: informer handlers enqueue `namespace/name`; sync(key) does the work.
import type { KObject } from '../../api/types.js';
import { selectorFromLabelSelector, type LabelSelector } from '../../machinery/labels.js';
import { isStatusError } from '../../machinery/status.js';
import {
  type Clock, type EventRecorder, type Informer, type PatchType, type ResourceRef, WorkQueue, indexFuncs, keyOf,
  realClock, runWorkers, splitKey,
} from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import { claimObjects, newControllerRef } from '../replicaset/controller-ref.js';
import { controllerRefOf } from '../replicaset/pod-util.js';
import { podsResource, replicaSetsResource } from '../replicaset/replicaset-controller.js';
import type { Deployment, DeploymentStatus, Pod, ReplicaSet } from '../replicaset/types.js';
import {
  Available, Progressing, ReplicaFailure, activeReplicaSets, byCreation, byRevision, computeHash, deploymentComplete,
  deploymentProgressing, deploymentTimedOut, desiredReplicasOf, equalIgnoreHash, findActiveOrLatest, findNewReplicaSet,
  getCondition, hasProgressDeadline, isRollingUpdate, isSaturated, maxRevision, maxSurge, maxUnavailable, newCondition,
  newRSNewReplicas, normalize, podTemplateHashLabel, proportionalSizes, reasons, removeCondition, replicasOf,
  revisionAnnotation, revisionOf, setCondition, setNewReplicaSetAnnotations, setReplicasAnnotations, sumReplicas, sumStatus,
} from './deployment-util.js';

export const deploymentsResource: ResourceRef = { group: 'apps', version: 'v1', plural: 'deployments' };
export const controllerName = 'deployment-controller';

/** What the controller needs of a client; RestClient fits. */
export interface DeploymentClient {
  get<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string): Promise<T>;
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  update<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  updateStatus<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  patch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType): Promise<T>;
  delete(res: ResourceRef, ns: string | undefined | null, name: string, opts?: { preconditions?: { uid?: string } }): Promise<unknown>;
}

export interface DeploymentControllerOptions {
  client: DeploymentClient;
  deploymentInformer: Informer<Deployment>;
  rsInformer: Informer<ReplicaSet>;
  podInformer: Informer<Pod>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
}

/** Runs the Deployment controller on the context's shared informers until signal aborts; resolves when stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal): Promise<void> {
  const c = new DeploymentController({
    client: ctx.client,
    deploymentInformer: ctx.informers.informerFor<Deployment>(deploymentsResource),
    rsInformer: ctx.informers.informerFor<ReplicaSet>(replicaSetsResource, { indexers: { byControllerOwner: indexFuncs.byControllerOwner } }),
    podInformer: ctx.informers.informerFor<Pod>(podsResource, { indexers: { byControllerOwner: indexFuncs.byControllerOwner } }),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }
function sameJSON(a: unknown, b: unknown): boolean { return JSON.stringify(normalize(a) ?? null) === JSON.stringify(normalize(b) ?? null); }

export class DeploymentController {
  readonly queue: WorkQueue<string>;
  private readonly clock: Clock;
  private readonly client: DeploymentClient;
  private readonly dInformer: Informer<Deployment>;
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly recorder?: Pick<EventRecorder, 'event'>;
  private readonly selectorCache = new WeakMap<object, LabelSelector>();

  constructor(private readonly opts: DeploymentControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.client = opts.client;
    this.dInformer = opts.deploymentInformer;
    this.rsInformer = opts.rsInformer;
    this.podInformer = opts.podInformer;
    this.recorder = opts.recorder;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'deployment' });
    this.dInformer.addEventHandler({
      onAdd: (d) => this.enqueue(d),
      onUpdate: (_o, d) => this.enqueue(d),
      onDelete: (d) => this.enqueue(d),
    });
    this.rsInformer.addEventHandler({
      onAdd: (rs) => this.addReplicaSet(rs),
      onUpdate: (o, rs) => this.updateReplicaSet(o, rs),
      onDelete: (rs) => { const d = this.resolveControllerRef(rs); if (d) this.enqueue(d); },
    });
    this.podInformer.addEventHandler({ onDelete: (p) => this.deletePod(p) });
  }

  async run(signal: AbortSignal): Promise<void> {
    const synced = await Promise.all([this.dInformer.waitForSync(signal), this.rsInformer.waitForSync(signal), this.podInformer.waitForSync(signal)]);
    if (!synced.every(Boolean)) return;
    await runWorkers(this.queue, this.opts.workers ?? 5, (k) => this.sync(k), signal, {
      onError: (k, e) => { if (!isStatusError(e, 'Conflict')) console.error(`${controllerName}: sync ${k}: ${errMessage(e)}`); },
    });
  }

  private enqueue(d: Deployment): void { this.queue.add(keyOf(d)); }

  private nowIso(): string { return new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'); }

  private selectorOf(d: Deployment): LabelSelector {
    const sel = d.spec?.selector;
    if (!sel) return selectorFromLabelSelector(null);
    let s = this.selectorCache.get(sel);
    if (!s) {
      try { s = selectorFromLabelSelector(sel); } catch { s = selectorFromLabelSelector(null); }
      this.selectorCache.set(sel, s);
    }
    return s;
  }

  private resolveControllerRef(rs: ReplicaSet): Deployment | undefined {
    const ref = controllerRefOf(rs);
    if (!ref || ref.kind !== 'Deployment') return undefined;
    const d = this.dInformer.lister.get(rs.metadata?.namespace, ref.name);
    return d && d.metadata?.uid === ref.uid ? d : undefined;
  }

  private deploymentsMatching(rs: ReplicaSet): Deployment[] {
    const labels = rs.metadata?.labels;
    if (!labels) return [];
    return this.dInformer.lister.list(rs.metadata?.namespace).filter((d) => {
      const s = this.selectorOf(d);
      return !s.empty && s.matches(labels);
    });
  }

  private addReplicaSet(rs: ReplicaSet): void {
    if (controllerRefOf(rs)) { const d = this.resolveControllerRef(rs); if (d) this.enqueue(d); return; }
    for (const d of this.deploymentsMatching(rs)) this.enqueue(d);
  }

  private updateReplicaSet(old: ReplicaSet, cur: ReplicaSet): void {
    if (old.metadata?.resourceVersion === cur.metadata?.resourceVersion) return;
    const oldRef = controllerRefOf(old), curRef = controllerRefOf(cur);
    const refChanged = oldRef?.uid !== curRef?.uid;
    if (refChanged && oldRef) { const d = this.resolveControllerRef(old); if (d) this.enqueue(d); }
    if (curRef) { const d = this.resolveControllerRef(cur); if (d) this.enqueue(d); return; }
    const labelsChanged = JSON.stringify(old.metadata?.labels ?? {}) !== JSON.stringify(cur.metadata?.labels ?? {});
    if (labelsChanged || refChanged) for (const d of this.deploymentsMatching(cur)) this.enqueue(d);
  }

  /** Recreate waits for old pods to be gone: their deletion is the signal to go on. */
  private deletePod(pod: Pod): void {
    const ref = controllerRefOf(pod);
    if (!ref || ref.kind !== 'ReplicaSet') return;
    const rs = this.rsInformer.lister.get(pod.metadata?.namespace, ref.name);
    if (!rs || rs.metadata?.uid !== ref.uid) return;
    const d = this.resolveControllerRef(rs);
    if (d && !isRollingUpdate(d)) this.enqueue(d);
  }

  // -------------------------------------------------------------------------------------------

  /** Reconciles one Deployment. Throws to be retried. */
  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const cached = this.dInformer.lister.get(namespace, name);
    if (!cached) return;
    const d = structuredClone(cached);
    const sel = d.spec?.selector;
    if (!sel || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)) {
      this.recorder?.event(d, 'Warning', 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
      if ((d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) {
        d.status = { ...(d.status ?? {}), observedGeneration: d.metadata?.generation };
        await this.writeStatus(d);
      }
      return;
    }
    const rsList = await this.getReplicaSetsForDeployment(d);
    if (d.metadata?.deletionTimestamp) return this.syncStatusOnly(d, rsList);
    await this.checkPausedConditions(d);
    if (d.spec?.paused) return this.syncScale(d, rsList);
    if (await this.isScalingEvent(d, rsList)) return this.syncScale(d, rsList);
    if (isRollingUpdate(d)) return this.rolloutRolling(d, rsList);
    return this.rolloutRecreate(d, rsList);
  }

  /** The ReplicaSets this Deployment controls (adopting matching orphans, releasing non-matching), as clones. */
  private async getReplicaSetsForDeployment(d: Deployment): Promise<ReplicaSet[]> {
    const ns = d.metadata?.namespace;
    const selector = this.selectorOf(d);
    const claimed = await claimObjects<ReplicaSet>(this.rsInformer.lister.list(ns), {
      client: this.client, resource: replicaSetsResource, owner: d, ownerApiVersion: 'apps/v1', ownerKind: 'Deployment',
      matches: (rs) => !selector.empty && selector.matches(rs.metadata?.labels),
      canAdopt: async () => {
        const fresh = await this.client.get<Deployment>(deploymentsResource, ns, d.metadata!.name!);
        if (fresh.metadata?.uid !== d.metadata?.uid) throw new Error(`original Deployment ${ns}/${d.metadata!.name} is gone: got uid ${fresh.metadata?.uid}, wanted ${d.metadata?.uid}`);
        if (fresh.metadata?.deletionTimestamp) throw new Error(`Deployment ${ns}/${d.metadata!.name} has just been deleted at ${fresh.metadata.deletionTimestamp}`);
      },
    });
    return claimed.map((rs) => structuredClone(rs));
  }

  /** Pods of the Deployment's ReplicaSets by ReplicaSet uid (terminating ones included). */
  private podMap(d: Deployment, rsList: ReplicaSet[]): Map<string, Pod[]> {
    const m = new Map<string, Pod[]>();
    for (const rs of rsList) {
      const uid = rs.metadata!.uid!;
      m.set(uid, this.podInformer.lister.byIndex('byControllerOwner', uid).filter((p) => p.metadata?.namespace === d.metadata?.namespace));
    }
    return m;
  }

  // --- writes ---------------------------------------------------------------------------------

  private async writeStatus(d: Deployment): Promise<void> {
    const out = await this.client.updateStatus<Deployment>(deploymentsResource, d.metadata?.namespace, d);
    d.metadata!.resourceVersion = out.metadata?.resourceVersion;
  }

  /** The Deployment's revision annotation follows its new ReplicaSet's. */
  private async setDeploymentRevision(d: Deployment, revision: string): Promise<void> {
    if (d.metadata?.annotations?.[revisionAnnotation] === revision) return;
    const out = await this.client.patch<Deployment>(deploymentsResource, d.metadata?.namespace, d.metadata!.name!,
      { metadata: { annotations: { [revisionAnnotation]: revision } } }, 'merge');
    (d.metadata!.annotations ??= {})[revisionAnnotation] = revision;
    d.metadata!.resourceVersion = out.metadata?.resourceVersion;
  }

  /** Writes rs (a working clone) and refreshes it in place from the reply. */
  private async writeReplicaSet(rs: ReplicaSet): Promise<void> {
    const out = await this.client.update<ReplicaSet>(replicaSetsResource, rs.metadata?.namespace, rs);
    Object.assign(rs, out);
  }

  private async scaleReplicaSet(rs: ReplicaSet, newScale: number, d: Deployment, op: string): Promise<boolean> {
    const oldScale = rs.spec?.replicas ?? 0;
    const sizeNeedsUpdate = oldScale !== newScale;
    const annotationsNeedUpdate = setReplicasAnnotations(rs, replicasOf(d), replicasOf(d) + maxSurge(d));
    if (!sizeNeedsUpdate && !annotationsNeedUpdate) return false;
    rs.spec = { ...(rs.spec ?? {}), replicas: newScale };
    await this.writeReplicaSet(rs);
    if (sizeNeedsUpdate) {
      this.recorder?.event(d, 'Normal', 'ScalingReplicaSet', `Scaled ${op} replica set ${rs.metadata!.name} from ${oldScale} to ${newScale}`);
      return true;
    }
    return false;
  }

  private scaleReplicaSetAndRecordEvent(rs: ReplicaSet, newScale: number, d: Deployment): Promise<boolean> {
    const cur = rs.spec?.replicas ?? 0;
    if (cur === newScale) return Promise.resolve(false);
    return this.scaleReplicaSet(rs, newScale, d, newScale > cur ? 'up' : 'down');
  }

  // --- new and old ReplicaSets ----------------------------------------------------------------

  private async getAllReplicaSetsAndSyncRevision(d: Deployment, rsList: ReplicaSet[], createIfNotExisted: boolean): Promise<{ newRS?: ReplicaSet; oldRSs: ReplicaSet[] }> {
    const existing = findNewReplicaSet(d, rsList);
    const oldRSs = rsList.filter((rs) => rs !== existing);
    const newRS = await this.getNewReplicaSet(d, existing, oldRSs, createIfNotExisted);
    return { newRS, oldRSs };
  }

  private async getNewReplicaSet(d: Deployment, existing: ReplicaSet | undefined, oldRSs: ReplicaSet[], create: boolean): Promise<ReplicaSet | undefined> {
    const newRevision = maxRevision(oldRSs) + 1;
    if (existing) {
      const annotationsUpdated = setNewReplicaSetAnnotations(d, existing, newRevision, true);
      const mrs = d.spec?.minReadySeconds ?? 0;
      const mrsNeedsUpdate = (existing.spec?.minReadySeconds ?? 0) !== mrs;
      if (annotationsUpdated || mrsNeedsUpdate) {
        existing.spec = { ...(existing.spec ?? {}), minReadySeconds: mrs };
        await this.writeReplicaSet(existing);
        return existing;
      }
      await this.setDeploymentRevision(d, existing.metadata?.annotations?.[revisionAnnotation] ?? '');
      if (hasProgressDeadline(d) && !getCondition(d.status, Progressing)) {
        d.status ??= {};
        setCondition(d.status, newCondition(Progressing, 'True', reasons.FoundNewReplicaSet, `Found new replica set "${existing.metadata!.name}"`, this.nowIso()));
        await this.writeStatus(d);
      }
      return existing;
    }
    if (!create) return undefined;

    const template = structuredClone(d.spec?.template ?? {});
    const hash = computeHash(d.spec?.template, d.status?.collisionCount);
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [podTemplateHashLabel]: hash } };
    const selector = structuredClone(d.spec?.selector ?? {});
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash };
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1', kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata!.name}-${hash}`, namespace: d.metadata?.namespace,
        ownerReferences: [newControllerRef(d, 'apps/v1', 'Deployment')], labels: { ...template.metadata.labels },
      },
      spec: { replicas: 0, minReadySeconds: d.spec?.minReadySeconds ?? 0, selector, template },
    };
    const count = newRSNewReplicas(d, [...oldRSs, rs], rs);
    rs.spec!.replicas = count;
    setNewReplicaSetAnnotations(d, rs, newRevision, false);

    let createdRS: ReplicaSet;
    let alreadyExists = false;
    try {
      createdRS = await this.client.create<ReplicaSet>(replicaSetsResource, d.metadata?.namespace, rs);
    } catch (e) {
      if (isStatusError(e, 'AlreadyExists')) {
        alreadyExists = true;
        let found: ReplicaSet | undefined;
        try { found = await this.client.get<ReplicaSet>(replicaSetsResource, d.metadata?.namespace, rs.metadata!.name!); } catch { /* gone again */ }
        if (found && controllerRefOf(found)?.uid === d.metadata?.uid && equalIgnoreHash(d.spec?.template, found.spec?.template)) {
          createdRS = found;
        } else {
          // a hash collision: bump collisionCount so the next sync computes another name
          d.status = { ...(d.status ?? {}), collisionCount: (d.status?.collisionCount ?? 0) + 1 };
          await this.writeStatus(d);
          throw e;
        }
      } else if (e instanceof Error && /is being terminated|NamespaceTerminating/.test(e.message)) {
        throw e;
      } else {
        const msg = `Failed to create new replica set "${rs.metadata!.name}": ${errMessage(e)}`;
        if (hasProgressDeadline(d)) {
          d.status ??= {};
          setCondition(d.status, newCondition(Progressing, 'False', reasons.FailedRSCreate, msg, this.nowIso()));
          try { await this.writeStatus(d); } catch { /* the bigger problem is reported */ }
        }
        this.recorder?.event(d, 'Warning', reasons.FailedRSCreate, msg);
        throw e;
      }
    }
    if (!alreadyExists && count > 0) {
      this.recorder?.event(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${createdRS.metadata!.name} from 0 to ${count}`);
    }
    await this.setDeploymentRevision(d, String(newRevision));
    if (!alreadyExists && hasProgressDeadline(d)) {
      d.status ??= {};
      setCondition(d.status, newCondition(Progressing, 'True', reasons.NewReplicaSetCreated, `Created new replica set "${createdRS.metadata!.name}"`, this.nowIso()));
      await this.writeStatus(d);
    }
    return structuredClone(createdRS);
  }

  // --- paused, scaling, status ----------------------------------------------------------------

  private async checkPausedConditions(d: Deployment): Promise<void> {
    if (!hasProgressDeadline(d)) return;
    const cond = getCondition(d.status, Progressing);
    if (cond?.reason === reasons.ProgressDeadlineExceeded) return;
    const pausedCondExists = cond?.reason === reasons.DeploymentPaused;
    d.status ??= {};
    if (d.spec?.paused && !pausedCondExists) {
      setCondition(d.status, newCondition(Progressing, 'Unknown', reasons.DeploymentPaused, 'Deployment is paused', this.nowIso()));
    } else if (!d.spec?.paused && pausedCondExists) {
      setCondition(d.status, newCondition(Progressing, 'Unknown', reasons.DeploymentResumed, 'Deployment is resumed', this.nowIso()));
    } else return;
    await this.writeStatus(d);
  }

  private async isScalingEvent(d: Deployment, rsList: ReplicaSet[]): Promise<boolean> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, false);
    for (const rs of activeReplicaSets([...oldRSs, newRS])) {
      const desired = desiredReplicasOf(rs);
      if (desired !== undefined && desired !== replicasOf(d)) return true;
    }
    return false;
  }

  /** Scaling and status only (paused deployments and scaling events; upstream's sync). */
  private async syncScale(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, false);
    await this.scale(d, newRS, oldRSs);
    if (d.spec?.paused) await this.cleanupDeployment(oldRSs, d);
    await this.syncDeploymentStatus([...oldRSs, newRS], newRS, d);
  }

  private async syncStatusOnly(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, false);
    await this.syncDeploymentStatus([...oldRSs, newRS], newRS, d);
  }

  private async scale(d: Deployment, newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): Promise<void> {
    const one = findActiveOrLatest(newRS, oldRSs);
    if (one) {
      if ((one.spec?.replicas ?? 0) === replicasOf(d)) return;
      await this.scaleReplicaSetAndRecordEvent(one, replicasOf(d), d);
      return;
    }
    if (isSaturated(d, newRS)) {
      for (const old of activeReplicaSets(oldRSs)) await this.scaleReplicaSetAndRecordEvent(old, 0, d);
      return;
    }
    if (!isRollingUpdate(d)) return;
    const active = activeReplicaSets([...oldRSs, newRS]);
    const sizes = proportionalSizes(d, active);
    const op = sumReplicas(active) < (replicasOf(d) > 0 ? replicasOf(d) + maxSurge(d) : 0) ? 'up' : 'down';
    for (const rs of active) await this.scaleReplicaSet(rs, sizes.get(rs.metadata!.name!) ?? (rs.spec?.replicas ?? 0), d, op);
  }

  calculateStatus(allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet | undefined, d: Deployment): DeploymentStatus {
    const available = sumStatus(allRSs, 'availableReplicas');
    const total = sumReplicas(allRSs);
    const status: DeploymentStatus = {
      observedGeneration: d.metadata?.generation,
      replicas: sumStatus(allRSs, 'replicas'),
      updatedReplicas: sumStatus([newRS], 'replicas'),
      readyReplicas: sumStatus(allRSs, 'readyReplicas'),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, total - available),
    };
    if (d.status?.conditions?.length) status.conditions = structuredClone(d.status.conditions);
    if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
    if (available >= replicasOf(d) - maxUnavailable(d)) {
      setCondition(status, newCondition(Available, 'True', reasons.MinimumReplicasAvailable, 'Deployment has minimum availability.', this.nowIso()));
    } else {
      setCondition(status, newCondition(Available, 'False', reasons.MinimumReplicasUnavailable, 'Deployment does not have minimum availability.', this.nowIso()));
    }
    return status;
  }

  private async syncDeploymentStatus(allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet | undefined, d: Deployment): Promise<void> {
    const status = this.calculateStatus(allRSs, newRS, d);
    if (sameJSON(d.status, status)) return;
    d.status = status;
    await this.writeStatus(d);
  }

  /** Status plus the Progressing condition (upstream's syncRolloutStatus). */
  private async syncRolloutStatus(allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet | undefined, d: Deployment): Promise<void> {
    const s = this.calculateStatus(allRSs, newRS, d);
    if (!hasProgressDeadline(d)) removeCondition(s, Progressing);
    const cur = getCondition(d.status, Progressing);
    const complete = s.replicas === s.updatedReplicas && cur?.reason === reasons.NewReplicaSetAvailable;
    if (hasProgressDeadline(d) && !complete) {
      const now = this.nowIso();
      const rsName = newRS?.metadata?.name ?? '';
      if (deploymentComplete(d, s)) {
        setCondition(s, newCondition(Progressing, 'True', reasons.NewReplicaSetAvailable, `ReplicaSet "${rsName}" has successfully progressed.`, now));
      } else if (deploymentProgressing(d, s)) {
        const c = newCondition(Progressing, 'True', reasons.ReplicaSetUpdated, `ReplicaSet "${rsName}" is progressing.`, now);
        if (cur) {
          if (cur.status === 'True') c.lastTransitionTime = cur.lastTransitionTime;
          removeCondition(s, Progressing);
        }
        setCondition(s, c);
      } else if (deploymentTimedOut(d, s, this.clock.now())) {
        setCondition(s, newCondition(Progressing, 'False', reasons.ProgressDeadlineExceeded, `ReplicaSet "${rsName}" has timed out progressing.`, now));
      }
    }
    const failure = [newRS, ...allRSs].map((rs) => rs?.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True')).find(Boolean);
    if (failure) setCondition(s, { type: ReplicaFailure, status: failure.status, lastUpdateTime: failure.lastTransitionTime, lastTransitionTime: failure.lastTransitionTime, reason: failure.reason, message: failure.message });
    else removeCondition(s, ReplicaFailure);
    if (sameJSON(d.status, s)) { this.requeueStuckDeployment(d, s); return; }
    d.status = s;
    await this.writeStatus(d);
  }

  /** Checks the progress deadline again when it would pass. */
  private requeueStuckDeployment(d: Deployment, s: DeploymentStatus): void {
    const c = getCondition(s, Progressing);
    if (!hasProgressDeadline(d) || !c || c.reason === reasons.NewReplicaSetAvailable || c.reason === reasons.ProgressDeadlineExceeded) return;
    if (deploymentComplete(d, s)) return;
    const from = Date.parse(c.lastUpdateTime ?? '');
    if (!Number.isFinite(from)) return;
    const after = from + d.spec!.progressDeadlineSeconds! * 1000 - this.clock.now();
    if (after < 1000) this.queue.add(keyOf(d));
    else this.queue.addAfter(keyOf(d), after + 1000);
  }

  /** Deletes the oldest zero-sized ReplicaSets beyond revisionHistoryLimit. */
  private async cleanupDeployment(oldRSs: ReplicaSet[], d: Deployment): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit;
    if (limit === undefined || limit === null) return;
    const cleanable = oldRSs.filter((rs) => !rs.metadata?.deletionTimestamp).sort(byRevision);
    const diff = cleanable.length - limit;
    for (let i = 0; i < diff; i++) {
      const rs = cleanable[i]!;
      if ((rs.status?.replicas ?? 0) !== 0 || (rs.spec?.replicas ?? 0) !== 0 || (rs.metadata?.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      try {
        await this.client.delete(replicaSetsResource, rs.metadata?.namespace, rs.metadata!.name!, { preconditions: { uid: rs.metadata?.uid } });
      } catch (e) {
        if (!isStatusError(e, 'NotFound')) throw e;
      }
    }
  }

  // --- RollingUpdate --------------------------------------------------------------------------

  private async rolloutRolling(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, true);
    const all = [...oldRSs, newRS!];
    if (await this.reconcileNewReplicaSet(all, newRS!, d)) return this.syncRolloutStatus(all, newRS, d);
    if (await this.reconcileOldReplicaSets(all, activeReplicaSets(oldRSs), newRS!, d)) return this.syncRolloutStatus(all, newRS, d);
    if (deploymentComplete(d, d.status ?? {})) await this.cleanupDeployment(oldRSs, d);
    return this.syncRolloutStatus(all, newRS, d);
  }

  private async reconcileNewReplicaSet(all: ReplicaSet[], newRS: ReplicaSet, d: Deployment): Promise<boolean> {
    const r = replicasOf(d);
    const cur = newRS.spec?.replicas ?? 0;
    if (cur === r) return false;
    if (cur > r) return this.scaleReplicaSetAndRecordEvent(newRS, r, d);
    return this.scaleReplicaSetAndRecordEvent(newRS, newRSNewReplicas(d, all, newRS), d);
  }

  private async reconcileOldReplicaSets(all: ReplicaSet[], oldRSs: ReplicaSet[], newRS: ReplicaSet, d: Deployment): Promise<boolean> {
    if (sumReplicas(oldRSs) === 0) return false;
    const minAvailable = replicasOf(d) - maxUnavailable(d);
    const newUnavailable = (newRS.spec?.replicas ?? 0) - (newRS.status?.availableReplicas ?? 0);
    const maxScaledDown = sumReplicas(all) - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    const cleaned = await this.cleanupUnhealthyReplicas(oldRSs, d, maxScaledDown);
    const scaled = await this.scaleDownOldReplicaSetsForRollingUpdate([...oldRSs, newRS], oldRSs, d);
    return cleaned + scaled > 0;
  }

  /** Scales down old ReplicaSets' unavailable replicas first, oldest first, at most maxCleanup. */
  private async cleanupUnhealthyReplicas(oldRSs: ReplicaSet[], d: Deployment, maxCleanup: number): Promise<number> {
    let total = 0;
    for (const rs of [...oldRSs].sort(byCreation)) {
      if (total >= maxCleanup) break;
      const size = rs.spec?.replicas ?? 0;
      if (size === 0) continue;
      const avail = Math.min(size, rs.status?.availableReplicas ?? 0);
      if (size === avail) continue;
      const n = Math.min(maxCleanup - total, size - avail);
      await this.scaleReplicaSetAndRecordEvent(rs, size - n, d);
      total += n;
    }
    return total;
  }

  /**
   * Scales old ReplicaSets down, oldest first, while availability stays at replicas - maxUnavailable.
   * A ReplicaSet's available pods are counted as at most its spec.replicas: pods above that are about
   * to be deleted by the ReplicaSet controller even when its status has not said so yet.
   */
  private async scaleDownOldReplicaSetsForRollingUpdate(all: ReplicaSet[], oldRSs: ReplicaSet[], d: Deployment): Promise<number> {
    const minAvailable = replicasOf(d) - maxUnavailable(d);
    let available = 0;
    for (const rs of all) available += Math.min(rs.spec?.replicas ?? 0, rs.status?.availableReplicas ?? 0);
    if (available <= minAvailable) return 0;
    const toScaleDown = available - minAvailable;
    let total = 0;
    for (const rs of [...oldRSs].sort(byCreation)) {
      if (total >= toScaleDown) break;
      const size = rs.spec?.replicas ?? 0;
      if (size === 0) continue;
      const n = Math.min(size, toScaleDown - total);
      await this.scaleReplicaSetAndRecordEvent(rs, size - n, d);
      total += n;
    }
    return total;
  }

  // --- Recreate -------------------------------------------------------------------------------

  private async rolloutRecreate(d: Deployment, rsList: ReplicaSet[]): Promise<void> {
    let { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, false);
    let all: (ReplicaSet | undefined)[] = [...oldRSs, newRS];
    let scaledDown = false;
    for (const rs of activeReplicaSets(oldRSs)) if (await this.scaleReplicaSetAndRecordEvent(rs, 0, d)) scaledDown = true;
    if (scaledDown) return this.syncRolloutStatus(all, newRS, d);
    if (this.oldPodsRunning(newRS, oldRSs, this.podMap(d, rsList))) return this.syncRolloutStatus(all, newRS, d);
    if (!newRS) {
      ({ newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(d, rsList, true));
      all = [...oldRSs, newRS];
    }
    await this.scaleReplicaSetAndRecordEvent(newRS!, replicasOf(d), d);
    if (deploymentComplete(d, d.status ?? {})) await this.cleanupDeployment(oldRSs, d);
    return this.syncRolloutStatus(all, newRS, d);
  }

  private oldPodsRunning(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[], podMap: Map<string, Pod[]>): boolean {
    if (sumStatus(oldRSs, 'replicas') > 0) return true;
    for (const [uid, pods] of podMap) {
      if (newRS && newRS.metadata?.uid === uid) continue;
      for (const p of pods) {
        const phase = p.status?.phase;
        if (phase === 'Failed' || phase === 'Succeeded') continue;
        return true;
      }
    }
    return false;
  }
}

export { revisionOf };
