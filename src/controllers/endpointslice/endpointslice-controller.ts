// The EndpointSlice controller (upstream's endpointslice controller): for every Service with a
// selector it keeps discovery.k8s.io/v1 EndpointSlices (label kubernetes.io/service-name, managed-by
// endpointslice-controller.k8s.io, controlled by the Service so the garbage collector removes them
// with it) listing each matching pod that has an IP with conditions ready / serving / terminating,
// its node, the node's zone and a targetRef; at most 100 endpoints per slice. The planning is in
// reconciler.ts (pure); this file wires informers, the work queue and the writes.
//
// Level-triggered: pod, Service, slice and Node events enqueue Service keys; sync(key) plans from
// the caches and writes the difference. EndpointSliceTracker keeps a cache that lags our own writes
// from producing duplicate slices. Failures are reported as FailedToUpdateEndpointSlices events on
// the Service, as upstream.
import type { KObject } from '../../api/types.js';
import { isStatusError, StatusError } from '../../machinery/status.js';
import {
  type Clock, type EventRecorder, type Informer, type ResourceRef, WorkQueue, indexFuncs, keyOf, realClock, runWorkers,
  splitKey, waitForCacheSync,
} from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import {
  type EndpointSlice, type Node, type Pod, type Service, LastChangeTriggerTimeAnnotation, TopologyZoneLabel, TriggerTimeTracker,
  endpointSlicesResource, formatRFC3339Nano, managesEndpoints, nodesResource, podsResource, selectorMatches, servicesResource,
  servicesSelecting, servicesToUpdateOnPodChange,
} from './endpoint-util.js';
import { LabelManagedBy, LabelServiceName, defaultMaxEndpointsPerSlice, managedByValue, reconcile } from './reconciler.js';
import { EndpointSliceTracker, serviceKeyOf } from './slice-tracker.js';

export const controllerName = 'endpoint-slice-controller';
/** upstream's endpointSliceChangeMinSyncDelay: slice events trigger a sync this much later */
export const endpointSliceChangeMinSyncDelayMs = 1000;

/** What the controller needs of a client; RestClient fits. */
export interface EndpointSliceClient {
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  update<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  delete(res: ResourceRef, ns: string | undefined | null, name: string): Promise<unknown>;
}

export interface EndpointSliceControllerOptions {
  client: EndpointSliceClient;
  serviceInformer: Informer<Service>;
  podInformer: Informer<Pod>;
  nodeInformer: Informer<Node>;
  sliceInformer: Informer<EndpointSlice>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
  maxEndpointsPerSlice?: number;
  /** delay syncs triggered by pod changes by this much (upstream's endpointUpdatesBatchPeriod; default 0) */
  batchPeriodMs?: number;
}

/** Runs the EndpointSlice controller on the context's shared informers until signal aborts. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Record<string, unknown> = {}): Promise<void> {
  const c = new EndpointSliceController({
    client: ctx.client,
    serviceInformer: ctx.informers.informerFor<Service>(servicesResource),
    podInformer: ctx.informers.informerFor<Pod>(podsResource, { indexers: { byNode: indexFuncs.byNode } }),
    nodeInformer: ctx.informers.informerFor<Node>(nodesResource),
    sliceInformer: ctx.informers.informerFor<EndpointSlice>(endpointSlicesResource),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
    workers: typeof opts.workers === 'number' ? opts.workers : undefined,
    maxEndpointsPerSlice: typeof opts.maxEndpointsPerSlice === 'number' ? opts.maxEndpointsPerSlice : undefined,
    batchPeriodMs: typeof opts.batchPeriodMs === 'number' ? opts.batchPeriodMs : undefined,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

/** A retryable error that says the informer cache lags behind our own writes. */
export class StaleInformerCacheError extends Error {
  constructor(message: string) { super(message); this.name = 'StaleInformerCacheError'; }
}

function isManaged(s: EndpointSlice): boolean { return s.metadata?.labels?.[LabelManagedBy] === managedByValue; }

function withTriggerTime(slice: EndpointSlice, t: number | undefined): EndpointSlice {
  const ann = { ...(slice.metadata?.annotations ?? {}) };
  if (t !== undefined) ann[LastChangeTriggerTimeAnnotation] = formatRFC3339Nano(t);
  else delete ann[LastChangeTriggerTimeAnnotation];
  slice.metadata ??= {};
  if (Object.keys(ann).length) slice.metadata.annotations = ann; else delete slice.metadata.annotations;
  return slice;
}

export class EndpointSliceController {
  readonly queue: WorkQueue<string>;
  readonly tracker: EndpointSliceTracker;
  private readonly clock: Clock;
  private readonly triggerTimes = new TriggerTimeTracker();

  constructor(private readonly opts: EndpointSliceControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'endpoint_slice' });
    this.tracker = new EndpointSliceTracker(this.clock);
    const batch = (k: string): void => { if (opts.batchPeriodMs) this.queue.addAfter(k, opts.batchPeriodMs); else this.queue.add(k); };
    const servicesIn = (ns: string | undefined): Service[] => opts.serviceInformer.lister.list(ns);
    const onPod = (p: Pod): void => { for (const k of servicesSelecting(servicesIn(p.metadata?.namespace), p.metadata?.labels)) batch(k); };
    const onSlice = (s: EndpointSlice): void => {
      const k = serviceKeyOf(s);
      if (k) this.queue.addAfter(k, Math.max(endpointSliceChangeMinSyncDelayMs, opts.batchPeriodMs ?? 0));
    };
    // pods on a node that appeared or changed zone: their endpoints' zone (or presence) changes
    const onNodeChange = (n: Node): void => {
      for (const p of opts.podInformer.lister.byIndex('byNode', n.metadata!.name!)) onPod(p);
    };
    opts.serviceInformer.addEventHandler({
      onAdd: (s) => this.queue.add(keyOf(s)),
      onUpdate: (_o, s) => this.queue.add(keyOf(s)),
      onDelete: (s) => this.queue.add(keyOf(s)),
    });
    opts.podInformer.addEventHandler({
      onAdd: onPod,
      onUpdate: (o, p) => { for (const k of servicesToUpdateOnPodChange(servicesIn(p.metadata?.namespace), o, p)) batch(k); },
      onDelete: onPod,
    });
    opts.sliceInformer.addEventHandler({
      onAdd: (s) => { if (isManaged(s) && this.tracker.shouldSync(s)) onSlice(s); },
      onUpdate: (o, s) => {
        if (o.metadata?.labels?.[LabelServiceName] !== s.metadata?.labels?.[LabelServiceName]) { onSlice(o); onSlice(s); return; }
        if (isManaged(o) !== isManaged(s) || (isManaged(s) && this.tracker.shouldSync(s))) onSlice(s);
      },
      onDelete: (s) => { if (isManaged(s) && !this.tracker.handleDeletion(s)) onSlice(s); },
    });
    opts.nodeInformer.addEventHandler({
      onAdd: onNodeChange,
      onUpdate: (o, n) => { if (o.metadata?.labels?.[TopologyZoneLabel] !== n.metadata?.labels?.[TopologyZoneLabel]) onNodeChange(n); },
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.opts;
    if (!(await waitForCacheSync(signal, o.serviceInformer, o.podInformer, o.nodeInformer, o.sliceInformer))) return;
    await runWorkers(this.queue, o.workers ?? 5, (k) => this.sync(k), signal, {
      onError: (k, e) => {
        if (e instanceof StaleInformerCacheError || apiError(e)?.reason === 'Conflict') return;
        console.error(`${controllerName}: sync ${k}: ${errMessage(e)}`);
      },
    });
  }

  /** Reconciles the EndpointSlices of one Service. Throws to be retried. */
  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const o = this.opts;
    const svc = o.serviceInformer.lister.get(namespace, name);
    if (!svc) {
      // the garbage collector deletes the slices (they are owned by the Service)
      this.triggerTimes.delete(namespace, name);
      this.tracker.deleteService(key);
      return;
    }
    if (!managesEndpoints(svc)) return;

    const pods = o.podInformer.lister.list(namespace).filter((p) => selectorMatches(svc.spec!.selector!, p.metadata?.labels));
    const slices = o.sliceInformer.lister.list(namespace).filter((s) =>
      s.metadata?.labels?.[LabelServiceName] === name && isManaged(s) && !s.metadata?.deletionTimestamp);
    if (this.tracker.stale(key, slices)) throw new StaleInformerCacheError('EndpointSlice informer cache is out of date');
    const triggerTime = this.triggerTimes.compute(svc, pods);

    const plan = reconcile({
      service: svc, pods, existing: slices, maxEndpointsPerSlice: o.maxEndpointsPerSlice ?? defaultMaxEndpointsPerSlice,
      nodeByName: (n) => o.nodeInformer.lister.get(undefined, n),
    });
    try {
      await this.finalize(key, svc, plan.create, plan.update, plan.delete, triggerTime);
      if (plan.errors.length) throw new Error(plan.errors.length === 1 ? plan.errors[0] : `[${plan.errors.join(', ')}]`);
    } catch (e) {
      const api = apiError(e);
      if (api && api.code === 403 && api.details?.causes?.some((c) => c.reason === 'NamespaceTerminating')) return;
      o.recorder?.event(svc, 'Warning', 'FailedToUpdateEndpointSlices', `Error updating Endpoint Slices for Service ${namespace}/${name}: ${errMessage(e)}`);
      throw e;
    }
  }

  private async finalize(key: string, svc: Service, create: EndpointSlice[], update: EndpointSlice[], del: EndpointSlice[], triggerTime: number | undefined): Promise<void> {
    const o = this.opts;
    const ns = svc.metadata!.namespace!;
    const name = svc.metadata!.name!;
    // no new slices for a Service being deleted: the garbage collector is removing them
    if (!svc.metadata?.deletionTimestamp) {
      for (const s of create) {
        let created: EndpointSlice;
        try {
          created = await o.client.create<EndpointSlice>(endpointSlicesResource, ns, withTriggerTime(s, triggerTime));
        } catch (e) {
          throw new StatusErrorWrap(`failed to create EndpointSlice for Service ${ns}/${name}: ${errMessage(e)}`, e);
        }
        this.tracker.written(key, created);
      }
    }
    for (const s of update) {
      const from = o.sliceInformer.lister.get(ns, s.metadata!.name!)?.metadata?.resourceVersion;
      let updated: EndpointSlice;
      try {
        updated = await o.client.update<EndpointSlice>(endpointSlicesResource, ns, withTriggerTime(s, triggerTime));
      } catch (e) {
        throw new StatusErrorWrap(`failed to update ${s.metadata!.name} EndpointSlice for Service ${ns}/${name}: ${errMessage(e)}`, e);
      }
      this.tracker.written(key, updated, from);
    }
    for (const s of del) {
      try {
        await o.client.delete(endpointSlicesResource, ns, s.metadata!.name!);
      } catch (e) {
        if (isStatusError(e, 'NotFound')) continue;
        throw new StatusErrorWrap(`failed to delete ${s.metadata!.name} EndpointSlice for Service ${ns}/${name}: ${errMessage(e)}`, e);
      }
      this.tracker.expectDeletion(key, s);
    }
  }
}

/** An error with upstream's wording that keeps the API error (code, causes) it wraps as its cause. */
class StatusErrorWrap extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'EndpointSliceWriteError';
  }
}

/** The API error behind e (itself or the cause of a wrapped write error). */
function apiError(e: unknown): StatusError | undefined {
  if (e instanceof StatusError) return e;
  const c = (e as { cause?: unknown } | undefined)?.cause;
  return c instanceof StatusError ? c : undefined;
}
