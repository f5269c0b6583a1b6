// Conversion between versions that share one storage location: core/v1 ⇄ events.k8s.io/v1 Events
// and autoscaling/v2 ⇄ autoscaling/v1 HorizontalPodAutoscalers. Objects are stored in the storage
// version and converted on the way in and out; every other kind is served as stored.
import type { KObject, ResourceDef } from '../api/types.js';
import { apiVersionOf } from '../api/types.js';

type Obj = Record<string, any>;

const STORAGE_VERSION: Record<string, string> = {
  'core/events': 'v1',
  'autoscaling/horizontalpodautoscalers': 'autoscaling/v2',
};

export function storageVersionOf(def: ResourceDef): string {
  return STORAGE_VERSION[def.storageKey ?? ''] ?? apiVersionOf(def);
}

/** whether objects of this resource may need conversion at all */
export function needsConversion(def: ResourceDef): boolean {
  return storageVersionOf(def) !== apiVersionOf(def);
}

/** Convert obj (in any served version of its kind) to the given apiVersion. Returns obj itself when no change is needed. */
export function convert(obj: KObject, to: string): KObject {
  const from = obj.apiVersion;
  if (!from || from === to) return obj;
  const key = `${from}>${to}`;
  switch (key) {
    case 'v1>events.k8s.io/v1': return coreToEvents(obj as Obj);
    case 'events.k8s.io/v1>v1': return eventsToCore(obj as Obj);
    case 'autoscaling/v2>autoscaling/v1': return hpaV2ToV1(obj as Obj);
    case 'autoscaling/v1>autoscaling/v2': return hpaV1ToV2(obj as Obj);
    default: return { ...obj, apiVersion: to };
  }
}

function put(o: Obj, k: string, v: unknown): void { if (v !== undefined && v !== null) o[k] = v; }

function coreToEvents(e: Obj): KObject {
  const o: Obj = { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: e.metadata };
  put(o, 'eventTime', e.eventTime ?? null);
  o.eventTime = e.eventTime ?? null;
  put(o, 'series', e.series);
  put(o, 'reportingController', e.reportingComponent || e.source?.component);
  put(o, 'reportingInstance', e.reportingInstance || e.source?.host);
  put(o, 'action', e.action);
  put(o, 'reason', e.reason);
  put(o, 'regarding', e.involvedObject);
  put(o, 'related', e.related);
  put(o, 'note', e.message);
  put(o, 'type', e.type);
  if (e.source && (e.source.component || e.source.host)) o.deprecatedSource = e.source;
  put(o, 'deprecatedFirstTimestamp', e.firstTimestamp);
  put(o, 'deprecatedLastTimestamp', e.lastTimestamp);
  if (e.count) o.deprecatedCount = e.count;
  return o;
}

function eventsToCore(e: Obj): KObject {
  const o: Obj = { apiVersion: 'v1', kind: 'Event', metadata: e.metadata };
  o.involvedObject = e.regarding ?? {};
  put(o, 'reason', e.reason);
  put(o, 'message', e.note);
  o.source = e.deprecatedSource ?? {};
  put(o, 'firstTimestamp', e.deprecatedFirstTimestamp);
  put(o, 'lastTimestamp', e.deprecatedLastTimestamp);
  if (e.deprecatedCount) o.count = e.deprecatedCount;
  put(o, 'type', e.type);
  o.eventTime = e.eventTime ?? null;
  put(o, 'series', e.series);
  put(o, 'action', e.action);
  put(o, 'related', e.related);
  put(o, 'reportingComponent', e.reportingController ?? '');
  put(o, 'reportingInstance', e.reportingInstance ?? '');
  return o;
}

// autoscaling/v1 carries one CPU utilization target. As upstream, everything else of a v2 object
// travels in annotations of the v1 form (in v1's own MetricSpec/MetricStatus shapes) so that a v1
// read-modify-write keeps it: the other metrics, the current metrics, the behavior and the conditions.
const HPA_METRICS = 'autoscaling.alpha.kubernetes.io/metrics';
const HPA_CURRENT_METRICS = 'autoscaling.alpha.kubernetes.io/current-metrics';
const HPA_BEHAVIOR = 'autoscaling.alpha.kubernetes.io/behavior';
const HPA_CONDITIONS = 'autoscaling.alpha.kubernetes.io/conditions';

function isCPUUtilization(m: Obj): boolean {
  return m?.type === 'Resource' && m.resource?.name === 'cpu' && m.resource?.target?.averageUtilization != null;
}

function metricSpecToV1(m: Obj): Obj {
  const o: Obj = { type: m.type };
  const t = (x: Obj | undefined): Obj => x ?? {};
  switch (m.type) {
    case 'Object': {
      const src = m.object ?? {};
      o.object = { target: src.describedObject, metricName: src.metric?.name };
      put(o.object, 'targetValue', t(src.target).value);
      put(o.object, 'averageValue', t(src.target).averageValue);
      put(o.object, 'selector', src.metric?.selector);
      break;
    }
    case 'Pods': {
      const src = m.pods ?? {};
      o.pods = { metricName: src.metric?.name };
      put(o.pods, 'targetAverageValue', t(src.target).averageValue);
      put(o.pods, 'selector', src.metric?.selector);
      break;
    }
    case 'External': {
      const src = m.external ?? {};
      o.external = { metricName: src.metric?.name };
      put(o.external, 'metricSelector', src.metric?.selector);
      put(o.external, 'targetValue', t(src.target).value);
      put(o.external, 'targetAverageValue', t(src.target).averageValue);
      break;
    }
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const src = m[key] ?? {};
      o[key] = { name: src.name };
      put(o[key], 'container', src.container);
      put(o[key], 'targetAverageUtilization', t(src.target).averageUtilization);
      put(o[key], 'targetAverageValue', t(src.target).averageValue);
      break;
    }
    default:
  }
  return o;
}

/** v1's annotation form → a v2 MetricSpec (values under `target`, with its type) or MetricStatus (under
 *  `current`): the same shape, the v1 field names prefixed `target…` or `current…`. */
function metricFromV1(m: Obj, status: boolean): Obj {
  const o: Obj = { type: status ? (m.type ?? '') : m.type };
  const p = status ? 'current' : 'target';
  const values = (value: unknown, averageValue: unknown, averageUtilization?: unknown): Obj => {
    const v: Obj = status ? {} : { type: averageUtilization != null ? 'Utilization' : averageValue != null ? 'AverageValue' : 'Value' };
    put(v, 'value', value);
    put(v, 'averageValue', averageValue);
    put(v, 'averageUtilization', averageUtilization);
    return v;
  };
  const metric = (name: unknown, selector: unknown): Obj => { const id: Obj = { name }; put(id, 'selector', selector); return id; };
  switch (m.type) {
    case 'Object': { const x = m.object ?? {}; o.object = { describedObject: x.target, metric: metric(x.metricName, x.selector), [p]: values(x[`${p}Value`], x.averageValue) }; break; }
    case 'Pods': { const x = m.pods ?? {}; o.pods = { metric: metric(x.metricName, x.selector), [p]: values(undefined, x[`${p}AverageValue`]) }; break; }
    case 'External': { const x = m.external ?? {}; o.external = { metric: metric(x.metricName, x.metricSelector), [p]: values(x[`${p}Value`], x[`${p}AverageValue`]) }; break; }
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const x = m[key] ?? {};
      o[key] = { name: x.name };
      put(o[key], 'container', x.container);
      o[key][p] = values(undefined, x[`${p}AverageValue`], x[`${p}AverageUtilization`]);
      break;
    }
    default:
  }
  return o;
}

function metricStatusToV1(m: Obj): Obj {
  const o: Obj = { type: m.type ?? '' };
  const c = (x: Obj | undefined): Obj => x?.current ?? {};
  switch (m.type) {
    case 'Object': {
      const x = m.object ?? {};
      o.object = { target: x.describedObject, metricName: x.metric?.name };
      put(o.object, 'currentValue', c(x).value);
      put(o.object, 'averageValue', c(x).averageValue);
      put(o.object, 'selector', x.metric?.selector);
      break;
    }
    case 'Pods': { const x = m.pods ?? {}; o.pods = { metricName: x.metric?.name }; put(o.pods, 'currentAverageValue', c(x).averageValue); put(o.pods, 'selector', x.metric?.selector); break; }
    case 'External': {
      const x = m.external ?? {};
      o.external = { metricName: x.metric?.name };
      put(o.external, 'metricSelector', x.metric?.selector);
      put(o.external, 'currentValue', c(x).value);
      put(o.external, 'currentAverageValue', c(x).averageValue);
      break;
    }
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const x = m[key] ?? {};
      o[key] = { name: x.name };
      put(o[key], 'container', x.container);
      put(o[key], 'currentAverageUtilization', c(x).averageUtilization);
      put(o[key], 'currentAverageValue', c(x).averageValue);
      break;
    }
    default:
  }
  return o;
}

function hpaV2ToV1(h: Obj): KObject {
  const spec = h.spec ?? {};
  const status = h.status ?? {};
  const cpu = (spec.metrics ?? []).find((m: Obj) => isCPUUtilization(m));
  const annotations: Record<string, string> = { ...(h.metadata?.annotations ?? {}) };
  const others = (spec.metrics ?? []).filter((m: Obj) => !isCPUUtilization(m)).map(metricSpecToV1);
  if (others.length) annotations[HPA_METRICS] = JSON.stringify(others);
  if (status.currentMetrics?.length) annotations[HPA_CURRENT_METRICS] = JSON.stringify(status.currentMetrics.map(metricStatusToV1));
  if (spec.behavior) annotations[HPA_BEHAVIOR] = JSON.stringify(spec.behavior);
  if (status.conditions?.length) annotations[HPA_CONDITIONS] = JSON.stringify(status.conditions);
  const metadata = Object.keys(annotations).length ? { ...h.metadata, annotations } : h.metadata;
  const o: Obj = { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata, spec: { scaleTargetRef: spec.scaleTargetRef } };
  put(o.spec, 'minReplicas', spec.minReplicas);
  put(o.spec, 'maxReplicas', spec.maxReplicas);
  put(o.spec, 'targetCPUUtilizationPercentage', cpu?.resource?.target?.averageUtilization);
  if (h.status) {
    o.status = {};
    put(o.status, 'observedGeneration', status.observedGeneration);
    put(o.status, 'lastScaleTime', status.lastScaleTime);
    o.status.currentReplicas = status.currentReplicas ?? 0;
    o.status.desiredReplicas = status.desiredReplicas ?? 0;
    const cur = (status.currentMetrics ?? []).find((m: Obj) => m.type === 'Resource' && m.resource?.name === 'cpu');
    put(o.status, 'currentCPUUtilizationPercentage', cur?.resource?.current?.averageUtilization);
  }
  return o;
}

function parseAnnotation(annotations: Record<string, string>, key: string): unknown {
  const raw = annotations[key];
  delete annotations[key];
  if (raw === undefined) return undefined;
  try { return JSON.parse(raw); } catch { return undefined; }
}

function hpaV1ToV2(h: Obj): KObject {
  const spec = h.spec ?? {};
  const annotations: Record<string, string> = { ...(h.metadata?.annotations ?? {}) };
  const others = parseAnnotation(annotations, HPA_METRICS);
  const currentMetrics = parseAnnotation(annotations, HPA_CURRENT_METRICS);
  const behavior = parseAnnotation(annotations, HPA_BEHAVIOR);
  const conditions = parseAnnotation(annotations, HPA_CONDITIONS);
  const metadata: Obj = { ...h.metadata };
  if (Object.keys(annotations).length) metadata.annotations = annotations; else delete metadata.annotations;
  const o: Obj = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata, spec: { scaleTargetRef: spec.scaleTargetRef } };
  put(o.spec, 'minReplicas', spec.minReplicas);
  put(o.spec, 'maxReplicas', spec.maxReplicas);
  // as upstream: the annotation's metrics first, then the CPU target
  const metrics: Obj[] = Array.isArray(others) ? others.map((m) => metricFromV1(m as Obj, false)) : [];
  if (spec.targetCPUUtilizationPercentage != null) {
    metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.targetCPUUtilizationPercentage } } });
  }
  // no metric at all: upstream's v2 defaulting (applied when the stored object is read) makes it cpu 80%
  if (metrics.length === 0) metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } });
  o.spec.metrics = metrics;
  if (behavior && typeof behavior === 'object') o.spec.behavior = behavior;
  if (h.status) {
    const s = h.status;
    o.status = {};
    put(o.status, 'observedGeneration', s.observedGeneration);
    put(o.status, 'lastScaleTime', s.lastScaleTime);
    o.status.currentReplicas = s.currentReplicas ?? 0;
    o.status.desiredReplicas = s.desiredReplicas ?? 0;
    if (Array.isArray(currentMetrics)) o.status.currentMetrics = currentMetrics.map((m) => metricFromV1(m as Obj, true));
    else if (s.currentCPUUtilizationPercentage != null) {
      o.status.currentMetrics = [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: s.currentCPUUtilizationPercentage } } }];
    }
    if (Array.isArray(conditions)) o.status.conditions = conditions;
  }
  return o;
}
