// The HorizontalPodAutoscaler controller (autoscaling/v2), as upstream's podautoscaler: every sync
// period each HPA reads its target's `/scale`, asks the metrics API for the usage of the pods behind
// the scale's selector, computes a replica count per metric (the largest wins), stabilizes and
// rate-limits it (the legacy rules when `spec.behavior` is unset, the behavior's policies and
// windows otherwise), writes the new count through `/scale`, and reports what it saw and did in the
// HPA's status, conditions (AbleToScale, ScalingActive, ScalingLimited) and events, with upstream's
// reasons and messages. Level-triggered: handlers enqueue `namespace/name`; sync(key) does the work
// and re-queues the key one sync period later (upstream's fixed-interval HPA queue). Recommendation
// and scale-event history live in memory, per HPA, as upstream keeps them.
import { parseLabelSelector as parseSelector, type LabelSelector } from '../../machinery/labels.js';
import { formatQuantity, tryParseQuantity } from '../../machinery/quantity.js';
import {
  type Clock, type EventRecorder, type EventType, type Informer, type ObjectReference, type ResourceRef, WorkQueue, keyOf,
  realClock, runWorkers, splitKey,
} from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import type { ControllerContext } from '../context.js';
import { RestMetricsClient, type MetricsClient } from './metrics-client.js';
import { ReplicaCalculator } from './replica-calculator.js';
import { RestScaleClient, parseGroupVersion, type ScaleClient } from './scale-client.js';
import type {
  HPAPod, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
  MetricSpec, MetricStatus, MetricTarget, MetricValueStatus, Scale,
} from './types.js';

export const hpaResource: ResourceRef = { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers' };
export const podsResource: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
/** the event source component, as upstream */
export const controllerName = 'horizontal-pod-autoscaler';

/** upstream's kube-controller-manager defaults */
export const defaults = {
  syncPeriodMs: 15_000,
  tolerance: 0.1,
  downscaleStabilizationMs: 300_000,
  cpuInitializationPeriodMs: 300_000,
  initialReadinessDelayMs: 30_000,
  workers: 5,
};

/** The legacy (no `spec.behavior`) scale-up limit: max(2 × current, 4). */
const scaleUpLimitFactor = 2.0;
const scaleUpLimitMinimum = 4.0;

/** The defaults the API server fills into a `spec.behavior` (upstream's GenerateHPAScale{Up,Down}Rules). */
export function defaultScaleUpRules(): HPAScalingRules {
  return { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] };
}
export function defaultScaleDownRules(): HPAScalingRules {
  return { selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] };
}
function withDefaults(from: HPAScalingRules | undefined, to: HPAScalingRules): HPAScalingRules {
  if (!from) return to;
  if (from.selectPolicy != null) to.selectPolicy = from.selectPolicy;
  if (from.stabilizationWindowSeconds != null) to.stabilizationWindowSeconds = from.stabilizationWindowSeconds;
  if (from.policies != null) to.policies = from.policies;
  return to;
}

/** What the controller needs of an API client; RestClient fits. */
export interface HPAClient {
  updateStatus<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
}

export interface HorizontalControllerOptions {
  client: HPAClient;
  scales: ScaleClient;
  metrics: MetricsClient;
  hpaInformer: Informer<HorizontalPodAutoscaler>;
  podInformer: Informer<HPAPod>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
  syncPeriodMs?: number;
  tolerance?: number;
  downscaleStabilizationMs?: number;
  cpuInitializationPeriodMs?: number;
  initialReadinessDelayMs?: number;
  /** a failed reconcile (default: console.error); the key is retried one sync period later anyway */
  onError?(err: unknown, key: string): void;
}

/** `start`'s options (the controller manager's per-controller options; `kyb server` flags). */
export interface HPAControllerStartOptions {
  /** --horizontal-pod-autoscaler-sync-period (default 15 s) */
  syncPeriodMs?: number;
  /** --horizontal-pod-autoscaler-tolerance (default 0.1) */
  tolerance?: number;
  /** --horizontal-pod-autoscaler-downscale-stabilization (default 5 min) */
  downscaleStabilizationMs?: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (default 5 min) */
  cpuInitializationPeriodMs?: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (default 30 s) */
  initialReadinessDelayMs?: number;
  /** --concurrent-horizontal-pod-autoscaler-syncs (default 5) */
  workers?: number;
  /** a MetricsClient instead of metrics.k8s.io through the context's client (tests) */
  metricsClient?: MetricsClient;
  /** failed reconciles (default: console.error) */
  onError?(err: unknown, key: string): void;
}

function num(v: unknown): number | undefined { return typeof v === 'number' && Number.isFinite(v) ? v : undefined; }

/**
 * Runs the HPA controller on the context's shared informers until signal aborts; resolves when stopped.
 */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Record<string, unknown> = {}): Promise<void> {
  const o = opts as HPAControllerStartOptions;
  const c = new HorizontalController({
    client: ctx.client,
    scales: new RestScaleClient(ctx.client),
    metrics: o.metricsClient ?? new RestMetricsClient(ctx.client),
    hpaInformer: ctx.informers.informerFor<HorizontalPodAutoscaler>(hpaResource),
    podInformer: ctx.informers.informerFor<HPAPod>(podsResource),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
    workers: num(o.workers),
    syncPeriodMs: num(o.syncPeriodMs),
    tolerance: num(o.tolerance),
    downscaleStabilizationMs: num(o.downscaleStabilizationMs),
    cpuInitializationPeriodMs: num(o.cpuInitializationPeriodMs),
    initialReadinessDelayMs: num(o.initialReadinessDelayMs),
    onError: typeof o.onError === 'function' ? o.onError : undefined,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

/** metav1.Time: RFC 3339, whole seconds */
function toTime(ms: number): string { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }

/** JSON-level equality (what apiequality.Semantic.DeepEqual amounts to for these plain fields). */
function sameJSON(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) { const x = (v as Record<string, unknown>)[k]; if (x !== undefined) out[k] = norm(x); }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

interface TimestampedRecommendation { recommendation: number; timestamp: number }
interface TimestampedScaleEvent { replicaChange: number; timestamp: number; outdated: boolean }

/** Upstream's setConditionInList: lastTransitionTime moves only when the status changes. */
export function setCondition(status: HorizontalPodAutoscalerStatus, type: string, cstatus: 'True' | 'False', reason: string, message: string, nowMs: number): void {
  const list = (status.conditions ??= []);
  let c = list.find((x) => x.type === type);
  if (!c) { c = { type, status: '' }; list.push(c); }
  if (c.status !== cstatus) c.lastTransitionTime = toTime(nowMs);
  c.status = cstatus;
  c.reason = reason;
  c.message = message;
}

interface MetricResult { replicas: number; metricName: string; timestampMs: number; status: MetricStatus }
class MetricError extends Error {
  constructor(message: string, readonly condition: HorizontalPodAutoscalerCondition) { super(message); }
}

export class HorizontalController {
  readonly queue: WorkQueue<string>;
  private readonly clock: Clock;
  private readonly calc: ReplicaCalculator;
  private readonly syncPeriodMs: number;
  private readonly downscaleStabilizationMs: number;
  /** latest unstabilized recommendations per HPA */
  readonly recommendations = new Map<string, TimestampedRecommendation[]>();
  readonly scaleUpEvents = new Map<string, TimestampedScaleEvent[]>();
  readonly scaleDownEvents = new Map<string, TimestampedScaleEvent[]>();
  /** the selector each HPA last used (to find pods claimed by two HPAs) */
  private readonly selectors = new Map<string, LabelSelector | null>();

  constructor(private readonly opts: HorizontalControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.syncPeriodMs = opts.syncPeriodMs ?? defaults.syncPeriodMs;
    this.downscaleStabilizationMs = opts.downscaleStabilizationMs ?? defaults.downscaleStabilizationMs;
    // every add is delayed by one sync period and an earlier pending add wins: one sync per period
    const period = this.syncPeriodMs;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'horizontalpodautoscaler', rateLimiter: { when: () => period, forget() {}, numRequeues: () => 0 } });
    this.calc = new ReplicaCalculator({
      metrics: opts.metrics,
      listPods: (ns, selector) => opts.podInformer.lister.list(ns, selector),
      tolerance: opts.tolerance ?? defaults.tolerance,
      cpuInitializationPeriodMs: opts.cpuInitializationPeriodMs ?? defaults.cpuInitializationPeriodMs,
      initialReadinessDelayMs: opts.initialReadinessDelayMs ?? defaults.initialReadinessDelayMs,
      clock: this.clock,
    });
    opts.hpaInformer.addEventHandler({
      onAdd: (h) => this.enqueue(h),
      onUpdate: (_o, h) => this.enqueue(h),
      onDelete: (h) => { const k = keyOf(h); this.queue.forget(k); this.selectors.delete(k); },
    });
  }

  private enqueue(h: HorizontalPodAutoscaler): void {
    const key = keyOf(h);
    this.queue.addRateLimited(key);
    if (!this.selectors.has(key)) this.selectors.set(key, null);
  }

  async run(signal: AbortSignal): Promise<void> {
    const synced = await Promise.all([this.opts.hpaInformer.waitForSync(signal), this.opts.podInformer.waitForSync(signal)]);
    if (!synced.every(Boolean)) return;
    await runWorkers(this.queue, this.opts.workers ?? defaults.workers, (k) => this.sync(k), signal);
  }

  /** Reconciles one HPA and queues it again one sync period later (unless it is gone). Never throws. */
  async sync(key: string): Promise<void> {
    let deleted = false;
    try {
      deleted = await this.reconcileKey(key);
    } catch (e) {
      this.reportError(e, key);
    }
    if (!deleted) this.queue.addRateLimited(key);
  }

  private reportError(e: unknown, key: string): void {
    if (this.opts.onError) this.opts.onError(e, key);
    else console.error(`${controllerName}: ${errMessage(e)}`);
  }

  /** One reconcile; true when the HPA no longer exists. Throws what upstream's reconcileKey returns. */
  async reconcileKey(key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key);
    const hpa = this.opts.hpaInformer.lister.get(namespace, name);
    if (!hpa) {
      this.recommendations.delete(key);
      this.scaleUpEvents.delete(key);
      this.scaleDownEvents.delete(key);
      return true;
    }
    await this.reconcileAutoscaler(hpa, key);
    return false;
  }

  private now(): number { return this.clock.now(); }

  private event(hpa: HorizontalPodAutoscaler, type: EventType, reason: string, message: string): void {
    const m = hpa.metadata ?? {};
    const ref: ObjectReference = {
      kind: 'HorizontalPodAutoscaler', namespace: m.namespace, name: m.name, uid: m.uid, apiVersion: 'autoscaling/v2', resourceVersion: m.resourceVersion,
    };
    this.opts.recorder?.event(ref, type, reason, message);
  }

  private async reconcileAutoscaler(shared: HorizontalPodAutoscaler, key: string): Promise<void> {
    const hpa: HorizontalPodAutoscaler = structuredClone(shared);
    const original = structuredClone(hpa.status ?? { desiredReplicas: 0 });
    const status: HorizontalPodAutoscalerStatus = (hpa.status ??= { desiredReplicas: 0 });
    status.desiredReplicas ??= 0;
    const spec = hpa.spec!;
    const ns = hpa.metadata?.namespace ?? '';
    const ref = spec.scaleTargetRef ?? { kind: '', name: '' };
    const reference = `${ref.kind}/${ns}/${ref.name}`;
    const set = (type: string, s: 'True' | 'False', reason: string, message: string): void => setCondition(status, type, s, reason, message, this.now());

    const failGetScale = async (err: string, returned: string): Promise<never> => {
      this.event(hpa, 'Warning', 'FailedGetScale', err);
      set('AbleToScale', 'False', 'FailedGetScale', `the HPA controller was unable to get the target's current scale: ${err}`);
      await this.updateStatusIfNeeded(original, hpa).catch((e) => this.reportError(e, key));
      throw new Error(returned);
    };

    try { parseGroupVersion(ref.apiVersion); } catch (e) {
      return failGetScale(errMessage(e), `invalid API version in scale target reference: ${errMessage(e)}`);
    }
    let target: ResourceRef;
    try { target = this.opts.scales.resourceFor(ref); } catch (e) {
      return failGetScale(errMessage(e), `unable to determine resource for scale target reference: ${errMessage(e)}`);
    }
    let scale: Scale;
    try { scale = await this.opts.scales.getScale(target, ns, ref.name); } catch (e) {
      return failGetScale(errMessage(e), `failed to query scale subresource for ${reference}: ${errMessage(e)}`);
    }
    set('AbleToScale', 'True', 'SucceededGetScale', "the HPA controller was able to get the target's current scale");
    const currentReplicas = scale.spec?.replicas ?? 0;
    if (!this.recommendations.has(key)) this.recommendations.set(key, [{ recommendation: currentReplicas, timestamp: this.now() }]);

    let metricStatuses: MetricStatus[] | undefined;
    let desiredReplicas = 0;
    let rescaleReason = '';
    const minReplicas = spec.minReplicas ?? 1;
    const maxReplicas = spec.maxReplicas;
    let rescale = true;
    let retErr: Error | undefined;

    if (currentReplicas === 0 && minReplicas !== 0) {
      desiredReplicas = 0;
      rescale = false;
      set('ScalingActive', 'False', 'ScalingDisabled', 'scaling is disabled since the replica count of the target is zero');
    } else if (currentReplicas > maxReplicas) {
      rescaleReason = 'Current number of replicas above Spec.MaxReplicas';
      desiredReplicas = maxReplicas;
    } else if (currentReplicas < minReplicas) {
      rescaleReason = 'Current number of replicas below Spec.MinReplicas';
      desiredReplicas = minReplicas;
    } else {
      const r = await this.computeReplicasForMetrics(hpa, scale, spec.metrics ?? []);
      metricStatuses = r.statuses;
      if (r.error && r.replicas === -1) {
        this.setStatus(hpa, currentReplicas, status.desiredReplicas, metricStatuses, false);
        await this.updateStatusIfNeeded(original, hpa).catch((e) => this.reportError(e, key));
        this.event(hpa, 'Warning', 'FailedComputeMetricsReplicas', r.error.message);
        throw new Error(`failed to compute desired number of replicas based on listed metrics for ${reference}: ${r.error.message}`);
      }
      if (r.error) retErr = r.error; // some metrics work: scale on them, report the rest
      let rescaleMetric = '';
      if (r.replicas > desiredReplicas) { desiredReplicas = r.replicas; rescaleMetric = r.metric; }
      if (desiredReplicas > currentReplicas) rescaleReason = `${rescaleMetric} above target`;
      if (desiredReplicas < currentReplicas) rescaleReason = 'All metrics below target';
      desiredReplicas = spec.behavior == null
        ? this.normalizeDesiredReplicas(hpa, key, currentReplicas, desiredReplicas, minReplicas)
        : this.normalizeDesiredReplicasWithBehaviors(hpa, key, currentReplicas, desiredReplicas, minReplicas);
      rescale = desiredReplicas !== currentReplicas;
    }

    if (rescale) {
      const next: Scale = structuredClone(scale);
      (next.spec ??= {}).replicas = desiredReplicas;
      try {
        await this.opts.scales.updateScale(target, ns, next);
      } catch (e) {
        this.event(hpa, 'Warning', 'FailedRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}; error: ${errMessage(e)}`);
        set('AbleToScale', 'False', 'FailedUpdateScale', `the HPA controller was unable to update the target scale: ${errMessage(e)}`);
        this.setStatus(hpa, currentReplicas, status.desiredReplicas, metricStatuses, false);
        await this.updateStatusIfNeeded(original, hpa).catch((x) => this.reportError(x, key));
        throw new Error(`failed to rescale ${reference}: ${errMessage(e)}`);
      }
      set('AbleToScale', 'True', 'SucceededRescale', `the HPA controller was able to update the target scale to ${desiredReplicas}`);
      this.event(hpa, 'Normal', 'SuccessfulRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}`);
      this.storeScaleEvent(spec.behavior != null, spec.behavior?.scaleUp, spec.behavior?.scaleDown, key, currentReplicas, desiredReplicas);
    } else {
      desiredReplicas = currentReplicas;
    }

    this.setStatus(hpa, currentReplicas, desiredReplicas, metricStatuses, rescale);
    await this.updateStatusIfNeeded(original, hpa);
    if (retErr) throw retErr;
  }

  // ---------------------------------------------------------------------------------------------
  // metrics

  /** The largest proposal over the metrics; replicas -1 when none could be computed (or some failed
   *  and the rest would scale down). Sets ScalingActive. */
  private async computeReplicasForMetrics(hpa: HorizontalPodAutoscaler, scale: Scale, specs: MetricSpec[]): Promise<{ replicas: number; metric: string; statuses: MetricStatus[] | undefined; timestampMs: number; error?: Error }> {
    const status = hpa.status!;
    const set = (type: string, s: 'True' | 'False', reason: string, message: string): void => setCondition(status, type, s, reason, message, this.now());
    const selector = this.validateAndParseSelector(hpa, scale.status?.selector ?? '');
    if (typeof selector !== 'string') return { replicas: -1, metric: '', statuses: undefined, timestampMs: 0, error: selector };
    const specReplicas = scale.spec?.replicas ?? 0;
    const statuses: MetricStatus[] = specs.map(() => ({ type: '' }));
    let replicas = 0, metric = '', timestampMs = 0;
    let invalid = 0;
    let firstErr: MetricError | undefined;
    for (let i = 0; i < specs.length; i++) {
      try {
        const r = await this.computeReplicasForMetric(hpa, specs[i]!, specReplicas, selector);
        statuses[i] = r.status;
        if (replicas === 0 || r.replicas > replicas) { replicas = r.replicas; metric = r.metricName; timestampMs = r.timestampMs; }
      } catch (e) {
        if (!firstErr) firstErr = e instanceof MetricError ? e : new MetricError(errMessage(e), { type: 'ScalingActive', status: 'False', reason: 'FailedGetMetric', message: errMessage(e) });
        invalid++;
      }
    }
    const error = firstErr ? new Error(`invalid metrics (${invalid} invalid out of ${specs.length}), first error is: ${firstErr.message}`) : undefined;
    if (invalid >= specs.length || (invalid > 0 && replicas < specReplicas)) {
      const c = firstErr?.condition;
      if (c) set(c.type, c.status as 'True' | 'False', c.reason ?? '', c.message ?? '');
      return { replicas: -1, metric: '', statuses, timestampMs: 0, error: error ?? new Error('no metrics') };
    }
    set('ScalingActive', 'True', 'ValidMetricFound', `the HPA was able to successfully calculate a replica count from ${metric}`);
    return { replicas, metric, statuses, timestampMs, error };
  }

  /** Upstream's validateAndParseSelector: the selector string, or the error (condition and event set). */
  private validateAndParseSelector(hpa: HorizontalPodAutoscaler, selector: string): string | Error {
    const status = hpa.status!;
    const set = (reason: string, message: string): void => setCondition(status, 'ScalingActive', 'False', reason, message, this.now());
    if (selector === '') {
      this.event(hpa, 'Warning', 'SelectorRequired', 'selector is required');
      set('InvalidSelector', "the HPA target's scale is missing a selector");
      return new Error('selector is required');
    }
    let parsed: LabelSelector;
    try { parsed = parseSelector(selector); } catch (e) {
      const msg = `couldn't convert selector into a corresponding internal selector object: ${errMessage(e)}`;
      this.event(hpa, 'Warning', 'InvalidSelector', msg);
      set('InvalidSelector', msg);
      return new Error(msg);
    }
    const ns = hpa.metadata?.namespace ?? '';
    const key = keyOf(hpa);
    if (this.selectors.has(key)) this.selectors.set(key, parsed);
    const pods = this.opts.podInformer.lister.list(ns, (l) => parsed.matches(l));
    const controlling = new Set<string>();
    for (const [k, sel] of this.selectors) {
      if (!sel || !k.startsWith(`${ns}/`)) continue;
      if (pods.some((p) => sel.matches(p.metadata?.labels))) controlling.add(k);
    }
    if (controlling.size > 1) {
      const msg = `pods by selector ${selector} are controlled by multiple HPAs: [${[...controlling].sort().join(' ')}]`;
      this.event(hpa, 'Warning', 'AmbiguousSelector', msg);
      set('AmbiguousSelector', msg);
      return new Error(msg);
    }
    return selector;
  }

  private unableToCompute(hpa: HorizontalPodAutoscaler, reason: string, err: string): HorizontalPodAutoscalerCondition {
    this.event(hpa, 'Warning', reason, err);
    return { type: 'ScalingActive', status: 'False', reason, message: `the HPA was unable to compute the replica count: ${err}` };
  }

  private async computeReplicasForMetric(hpa: HorizontalPodAutoscaler, spec: MetricSpec, specReplicas: number, selector: string): Promise<MetricResult> {
    const ns = hpa.metadata?.namespace ?? '';
    switch (spec.type) {
      case 'Resource':
      case 'ContainerResource': {
        const container = spec.type === 'ContainerResource';
        const src = container ? spec.containerResource : spec.resource;
        const reason = container ? 'FailedGetContainerResourceMetric' : 'FailedGetResourceMetric';
        const name = src?.name ?? '';
        try {
          const r = await this.computeResource(specReplicas, src?.target ?? { type: '' }, name, ns, container ? spec.containerResource!.container : '', selector, container);
          const status: MetricStatus = container
            ? { type: 'ContainerResource', containerResource: { name, container: spec.containerResource!.container, current: r.current } }
            : { type: 'Resource', resource: { name, current: r.current } };
          return { replicas: r.replicas, metricName: r.metricName, timestampMs: r.timestampMs, status };
        } catch (e) {
          const cond = this.unableToCompute(hpa, reason, errMessage(e));
          const what = container ? `${spec.containerResource?.container ?? ''} container metric value` : `${name} resource metric value`;
          throw new MetricError(`failed to get ${what}: ${errMessage(e)}`, cond);
        }
      }
      case 'Pods':
      case 'Object':
      case 'External': {
        // no custom or external metrics API is served: report it as upstream reports an unreachable one
        const api = spec.type === 'External' ? 'external' : 'custom';
        const m = (spec[spec.type.toLowerCase()] as { metric?: { name?: string } } | undefined)?.metric?.name ?? '';
        const err = `unable to get metric ${m}: unable to fetch metrics from ${api} metrics API: the server could not find the requested resource`;
        const cond = this.unableToCompute(hpa, `FailedGet${spec.type}Metric`, err);
        throw new MetricError(`failed to get ${spec.type.toLowerCase()} metric value: ${err}`, cond);
      }
      default: {
        const err = `unknown metric source type "${spec.type}"`;
        throw new MetricError(err, this.unableToCompute(hpa, 'InvalidMetricSourceType', err));
      }
    }
  }

  /** Upstream's computeStatusForResourceMetricGeneric. */
  private async computeResource(currentReplicas: number, target: MetricTarget, resource: string, ns: string, container: string, selector: string, isContainer: boolean): Promise<{ replicas: number; current: MetricValueStatus; timestampMs: number; metricName: string }> {
    if (target.averageValue != null) {
      const q = tryParseQuantity(String(target.averageValue));
      let r;
      try {
        if (!q) throw new Error(`invalid averageValue ${JSON.stringify(target.averageValue)}`);
        r = await this.calc.getRawResourceReplicas(currentReplicas, q.milliValue(), resource, ns, selector, container);
      } catch (e) { throw new Error(`failed to get ${resource} usage: ${errMessage(e)}`); }
      return { replicas: r.replicas, current: { averageValue: formatQuantity(r.usage, 'DecimalSI') }, timestampMs: r.timestampMs, metricName: `${resource} resource` };
    }
    if (target.averageUtilization == null) {
      throw new Error('invalid resource metric source: neither an average utilization target nor an average value (usage) target was set');
    }
    let r;
    try {
      r = await this.calc.getResourceReplicas(currentReplicas, target.averageUtilization, resource, ns, selector, container);
    } catch (e) { throw new Error(`failed to get ${resource} utilization: ${errMessage(e)}`); }
    const metricName = isContainer ? `${resource} container resource utilization (percentage of request)` : `${resource} resource utilization (percentage of request)`;
    return {
      replicas: r.replicas, timestampMs: r.timestampMs, metricName,
      current: { averageValue: formatQuantity(r.rawUtilization, 'DecimalSI'), averageUtilization: r.utilization },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // normalization: stabilization and rate limits

  /** Legacy (no behavior): remember the recommendation; the max over the downscale window wins. */
  private stabilizeRecommendation(key: string, prenormalized: number): number {
    let max = prenormalized;
    let oldIndex = -1;
    const now = this.now();
    const cutoff = now - this.downscaleStabilizationMs;
    const recs = this.recommendations.get(key) ?? [];
    recs.forEach((rec, i) => {
      if (rec.timestamp < cutoff) oldIndex = i;
      else if (rec.recommendation > max) max = rec.recommendation;
    });
    if (oldIndex >= 0) recs[oldIndex] = { recommendation: prenormalized, timestamp: now };
    else recs.push({ recommendation: prenormalized, timestamp: now });
    this.recommendations.set(key, recs);
    return max;
  }

  private normalizeDesiredReplicas(hpa: HorizontalPodAutoscaler, key: string, currentReplicas: number, prenormalized: number, minReplicas: number): number {
    const status = hpa.status!;
    const set = (type: string, s: 'True' | 'False', reason: string, message: string): void => setCondition(status, type, s, reason, message, this.now());
    const stabilized = this.stabilizeRecommendation(key, prenormalized);
    if (stabilized !== prenormalized) {
      set('AbleToScale', 'True', 'ScaleDownStabilized', 'recent recommendations were higher than current one, applying the highest recent recommendation');
    } else {
      set('AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size');
    }
    const [desired, reason, message] = convertDesiredReplicasWithRules(currentReplicas, stabilized, minReplicas, hpa.spec!.maxReplicas);
    set('ScalingLimited', desired === stabilized ? 'False' : 'True', reason, message);
    return desired;
  }

  private normalizeDesiredReplicasWithBehaviors(hpa: HorizontalPodAutoscaler, key: string, currentReplicas: number, prenormalized: number, minReplicas: number): number {
    const status = hpa.status!;
    const set = (type: string, s: 'True' | 'False', reason: string, message: string): void => setCondition(status, type, s, reason, message, this.now());
    const behavior = hpa.spec!.behavior!;
    const scaleUp = withDefaults(behavior.scaleUp, defaultScaleUpRules());
    const scaleDown = withDefaults(behavior.scaleDown, defaultScaleDownRules());
    scaleDown.stabilizationWindowSeconds ??= Math.trunc(this.downscaleStabilizationMs / 1000);
    const args: NormalizationArg = { key, scaleUp, scaleDown, minReplicas, maxReplicas: hpa.spec!.maxReplicas, currentReplicas, desiredReplicas: prenormalized };
    const [stabilized, sReason, sMessage] = this.stabilizeRecommendationWithBehaviors(args);
    args.desiredReplicas = stabilized;
    if (stabilized !== prenormalized) set('AbleToScale', 'True', sReason, sMessage);
    else set('AbleToScale', 'True', 'ReadyForNewScale', 'recommended size matches current size');
    const [desired, reason, message] = this.convertDesiredReplicasWithBehaviorRate(args);
    set('ScalingLimited', desired === stabilized ? 'False' : 'True', reason, message);
    return desired;
  }

  /** Keeps the recommendation inside [min over the scale-up window, max over the scale-down window]. */
  private stabilizeRecommendationWithBehaviors(args: NormalizationArg): [number, string, string] {
    const now = this.now();
    let up = args.desiredReplicas;
    const upCutoff = now - (args.scaleUp.stabilizationWindowSeconds ?? 0) * 1000;
    let down = args.desiredReplicas;
    const downCutoff = now - (args.scaleDown.stabilizationWindowSeconds ?? 0) * 1000;
    let oldIndex = -1;
    const recs = this.recommendations.get(args.key) ?? [];
    recs.forEach((rec, i) => {
      if (rec.timestamp > upCutoff) up = Math.min(rec.recommendation, up);
      if (rec.timestamp > downCutoff) down = Math.max(rec.recommendation, down);
      if (rec.timestamp < upCutoff && rec.timestamp < downCutoff) oldIndex = i;
    });
    let recommendation = args.currentReplicas;
    if (recommendation < up) recommendation = up;
    if (recommendation > down) recommendation = down;
    if (oldIndex >= 0) recs[oldIndex] = { recommendation: args.desiredReplicas, timestamp: now };
    else recs.push({ recommendation: args.desiredReplicas, timestamp: now });
    this.recommendations.set(args.key, recs);
    if (args.desiredReplicas >= args.currentReplicas) {
      return [recommendation, 'ScaleUpStabilized', 'recent recommendations were lower than current one, applying the lowest recent recommendation'];
    }
    return [recommendation, 'ScaleDownStabilized', 'recent recommendations were higher than current one, applying the highest recent recommendation'];
  }

  private convertDesiredReplicasWithBehaviorRate(args: NormalizationArg): [number, string, string] {
    const up = this.scaleUpEvents.get(args.key) ?? [];
    const down = this.scaleDownEvents.get(args.key) ?? [];
    const now = this.now();
    if (args.desiredReplicas > args.currentReplicas) {
      let limit = calculateScaleUpLimitWithScalingRules(args.currentReplicas, up, down, args.scaleUp, now);
      if (limit < args.currentReplicas) limit = args.currentReplicas; // no further scale-up until events age out
      let max = args.maxReplicas;
      let reason: string, message: string;
      if (max > limit) {
        max = limit;
        reason = 'ScaleUpLimit'; message = 'the desired replica count is increasing faster than the maximum scale rate';
      } else {
        reason = 'TooManyReplicas'; message = 'the desired replica count is more than the maximum replica count';
      }
      if (args.desiredReplicas > max) return [max, reason, message];
    } else if (args.desiredReplicas < args.currentReplicas) {
      let limit = calculateScaleDownLimitWithBehaviors(args.currentReplicas, up, down, args.scaleDown, now);
      if (limit > args.currentReplicas) limit = args.currentReplicas;
      let min = args.minReplicas;
      let reason: string, message: string;
      if (min < limit) {
        min = limit;
        reason = 'ScaleDownLimit'; message = 'the desired replica count is decreasing faster than the maximum scale rate';
      } else {
        reason = 'TooFewReplicas'; message = 'the desired replica count is less than the minimum replica count';
      }
      if (args.desiredReplicas < min) return [min, reason, message];
    }
    return [args.desiredReplicas, 'DesiredWithinRange', 'the desired count is within the acceptable range'];
  }

  /** Remembers a scale event (behavior HPAs only), reusing a slot that aged out of the longest policy period. */
  private storeScaleEvent(hasBehavior: boolean, upRules: HPAScalingRules | undefined, downRules: HPAScalingRules | undefined, key: string, prev: number, next: number): void {
    if (!hasBehavior) return;
    const now = this.now();
    const isUp = next > prev;
    const rules = isUp ? withDefaults(upRules, defaultScaleUpRules()) : withDefaults(downRules, defaultScaleDownRules());
    const map = isUp ? this.scaleUpEvents : this.scaleDownEvents;
    const events = map.get(key) ?? [];
    const longest = Math.max(0, ...(rules.policies ?? []).map((p) => p.periodSeconds));
    const cutoff = now - longest * 1000;
    let oldIndex = -1;
    events.forEach((e, i) => { if (e.timestamp < cutoff) e.outdated = true; if (e.outdated) oldIndex = i; });
    const ev: TimestampedScaleEvent = { replicaChange: Math.abs(next - prev), timestamp: now, outdated: false };
    if (oldIndex >= 0) events[oldIndex] = ev; else events.push(ev);
    map.set(key, events);
  }

  // ---------------------------------------------------------------------------------------------
  // status

  private setStatus(hpa: HorizontalPodAutoscaler, currentReplicas: number, desiredReplicas: number, metricStatuses: MetricStatus[] | undefined, rescale: boolean): void {
    const old = hpa.status!;
    const status: HorizontalPodAutoscalerStatus = { desiredReplicas };
    if (currentReplicas) status.currentReplicas = currentReplicas;
    if (old.observedGeneration !== undefined) status.observedGeneration = old.observedGeneration;
    const last = rescale ? toTime(this.now()) : old.lastScaleTime;
    if (last) status.lastScaleTime = last;
    if (metricStatuses?.length) status.currentMetrics = metricStatuses;
    if (old.conditions?.length) status.conditions = old.conditions;
    hpa.status = status;
  }

  private async updateStatusIfNeeded(original: HorizontalPodAutoscalerStatus, hpa: HorizontalPodAutoscaler): Promise<void> {
    if (sameJSON(original, hpa.status)) return;
    try {
      await this.opts.client.updateStatus<HorizontalPodAutoscaler>(hpaResource, hpa.metadata?.namespace, { ...hpa, apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' });
    } catch (e) {
      this.event(hpa, 'Warning', 'FailedUpdateStatus', errMessage(e));
      throw new Error(`failed to update status for ${hpa.metadata?.name ?? ''}: ${errMessage(e)}`);
    }
  }
}

interface NormalizationArg {
  key: string;
  scaleUp: HPAScalingRules;
  scaleDown: HPAScalingRules;
  minReplicas: number;
  maxReplicas: number;
  currentReplicas: number;
  desiredReplicas: number;
}

/** Legacy normalization (no behavior): [min, min(max, max(2 × current, 4))], with the reason. */
export function convertDesiredReplicasWithRules(currentReplicas: number, desiredReplicas: number, min: number, max: number): [number, string, string] {
  const scaleUpLimit = Math.trunc(Math.max(scaleUpLimitFactor * currentReplicas, scaleUpLimitMinimum));
  let maximumAllowed: number, condition: string, reason: string;
  if (max > scaleUpLimit) {
    maximumAllowed = scaleUpLimit;
    condition = 'ScaleUpLimit'; reason = 'the desired replica count is increasing faster than the maximum scale rate';
  } else {
    maximumAllowed = max;
    condition = 'TooManyReplicas'; reason = 'the desired replica count is more than the maximum replica count';
  }
  if (desiredReplicas < min) return [min, 'TooFewReplicas', 'the desired replica count is less than the minimum replica count'];
  if (desiredReplicas > maximumAllowed) return [maximumAllowed, condition, reason];
  return [desiredReplicas, 'DesiredWithinRange', 'the desired count is within the acceptable range'];
}

function replicasChangePerPeriod(periodSeconds: number, events: TimestampedScaleEvent[], now: number): number {
  const cutoff = now - periodSeconds * 1000;
  let n = 0;
  for (const e of events) if (e.timestamp > cutoff) n += e.replicaChange;
  return n;
}

/** The most replicas the scale-up rules allow now (upstream's calculateScaleUpLimitWithScalingRules). */
export function calculateScaleUpLimitWithScalingRules(currentReplicas: number, up: TimestampedScaleEvent[], down: TimestampedScaleEvent[], rules: HPAScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const useMin = rules.selectPolicy === 'Min';
  let result = useMin ? 2147483647 : -2147483648;
  for (const p of rules.policies ?? []) {
    const periodStart = currentReplicas - replicasChangePerPeriod(p.periodSeconds, up, now) + replicasChangePerPeriod(p.periodSeconds, down, now);
    let proposed = 0;
    if (p.type === 'Pods') proposed = periodStart + p.value;
    else if (p.type === 'Percent') proposed = Math.ceil(periodStart * (1 + p.value / 100));
    result = useMin ? Math.min(result, proposed) : Math.max(result, proposed);
  }
  return result;
}

/** The fewest replicas the scale-down rules allow now (upstream's calculateScaleDownLimitWithBehaviors). */
export function calculateScaleDownLimitWithBehaviors(currentReplicas: number, up: TimestampedScaleEvent[], down: TimestampedScaleEvent[], rules: HPAScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const useMin = rules.selectPolicy === 'Min';
  let result = useMin ? -2147483648 : 2147483647;
  for (const p of rules.policies ?? []) {
    const periodStart = currentReplicas - replicasChangePerPeriod(p.periodSeconds, up, now) + replicasChangePerPeriod(p.periodSeconds, down, now);
    let proposed = 0;
    if (p.type === 'Pods') proposed = periodStart - p.value;
    else if (p.type === 'Percent') proposed = Math.trunc(periodStart * (1 - p.value / 100));
    result = useMin ? Math.max(result, proposed) : Math.min(result, proposed);
  }
  return result;
}
