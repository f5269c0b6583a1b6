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

function hpaV2ToV1(h: Obj): KObject {
  const spec = h.spec ?? {};
  const status = h.status ?? {};
  const cpu = (spec.metrics ?? []).find((m: Obj) => m.type === 'Resource' && m.resource?.name === 'cpu' && m.resource?.target?.type === 'Utilization');
  const o: Obj = { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: h.metadata, spec: { scaleTargetRef: spec.scaleTargetRef } };
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

function hpaV1ToV2(h: Obj): KObject {
  const spec = h.spec ?? {};
  const o: Obj = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: h.metadata, spec: { scaleTargetRef: spec.scaleTargetRef } };
  put(o.spec, 'minReplicas', spec.minReplicas);
  put(o.spec, 'maxReplicas', spec.maxReplicas);
  if (spec.targetCPUUtilizationPercentage !== undefined) {
    o.spec.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.targetCPUUtilizationPercentage } } }];
  }
  if (h.status) {
    const s = h.status;
    o.status = {};
    put(o.status, 'observedGeneration', s.observedGeneration);
    put(o.status, 'lastScaleTime', s.lastScaleTime);
    o.status.currentReplicas = s.currentReplicas ?? 0;
    o.status.desiredReplicas = s.desiredReplicas ?? 0;
    if (s.currentCPUUtilizationPercentage !== undefined) {
      o.status.currentMetrics = [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: s.currentCPUUtilizationPercentage } } }];
    }
  }
  return o;
}
