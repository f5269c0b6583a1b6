// What the Endpoints and EndpointSlice controllers share (upstream's k8s.io/endpointslice/util):
// which pods belong in a Service's endpoints and in which state (ready / serving / terminating),
// how a Service port's targetPort resolves on one pod (named ports are looked up per pod), which
// Services a pod change concerns, and the `endpoints.kubernetes.io/last-change-trigger-time`
// bookkeeping. Pure functions over the informer caches' objects; nothing here writes.
import type * as core from 'kubernetes-types/core/v1.js';
import type * as discovery from 'kubernetes-types/discovery/v1.js';
import type { KObject } from '../../api/types.js';
import type { ResourceRef } from '../../client/index.js';

export type Pod = core.Pod & KObject;
export type Service = core.Service & KObject;
export type Node = core.Node & KObject;
export type Endpoints = core.Endpoints & KObject;
export type EndpointSlice = discovery.EndpointSlice & KObject;
export type ServicePort = core.ServicePort;

export const podsResource: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
export const servicesResource: ResourceRef = { group: '', version: 'v1', plural: 'services' };
export const nodesResource: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
export const endpointsResource: ResourceRef = { group: '', version: 'v1', plural: 'endpoints' };
export const endpointSlicesResource: ResourceRef = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };

/** core/v1 annotation: when the change that this Endpoints(Slice) write reflects happened. */
export const LastChangeTriggerTimeAnnotation = 'endpoints.kubernetes.io/last-change-trigger-time';
/** core/v1 label on Endpoints and EndpointSlices of headless Services. */
export const HeadlessServiceLabel = 'service.kubernetes.io/headless';
/** node label read for EndpointSlice endpoints' zone */
export const TopologyZoneLabel = 'topology.kubernetes.io/zone';

/** upstream's IsServiceIPSet: a ClusterIP other than None / empty. */
export function isServiceIPSet(svc: Service): boolean {
  const ip = svc.spec?.clusterIP;
  return !!ip && ip !== 'None';
}

/** True for a Service selector that selects something. An empty map counts as none: upstream stores
 *  Services as protobuf, where an empty map reads back as nil, so `selector: {}` selects nothing there. */
export function hasSelector(svc: Service): boolean {
  const sel = svc.spec?.selector;
  return !!sel && Object.keys(sel).length > 0;
}

/** Services without a selector (or of type ExternalName) get no endpoints from the controllers. */
export function managesEndpoints(svc: Service): boolean {
  return svc.spec?.type !== 'ExternalName' && hasSelector(svc);
}

/** A map selector (Service.spec.selector) matches labels when every entry is there. */
export function selectorMatches(selector: Record<string, string> | undefined | null, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  for (const [k, v] of Object.entries(selector)) if ((labels ?? {})[k] !== v) return false;
  return true;
}

export function podReadyCondition(pod: Pod): core.PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Ready condition True. */
export function isPodReady(pod: Pod): boolean {
  return podReadyCondition(pod)?.status === 'True';
}

/** Succeeded or Failed: the containers will never run again. */
export function isPodTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

export function isPodTerminating(pod: Pod): boolean {
  return !!pod.metadata?.deletionTimestamp;
}

/** The pod's IPs: status.podIPs, or status.podIP when podIPs is missing. */
export function podIPs(pod: Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => !!ip);
  if (ips.length) return ips;
  return pod.status?.podIP ? [pod.status.podIP] : [];
}

export function isIPv6(ip: string): boolean { return ip.includes(':'); }

/**
 * upstream's ShouldPodBeInEndpoints: not terminal, has an IP, and (unless includeTerminating)
 * not being deleted.
 */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (podIPs(pod).length === 0) return false;
  if (!includeTerminating && isPodTerminating(pod)) return false;
  return true;
}

/** The pod's hostname goes into its endpoint when its subdomain names the Service. */
export function shouldSetHostname(pod: Pod, svc: Service): boolean {
  return !!pod.spec?.hostname && pod.spec.subdomain === svc.metadata?.name && pod.metadata?.namespace === svc.metadata?.namespace;
}

/**
 * The container port a Service port's targetPort means on this pod: a number is itself; a name is
 * looked up among the pod's containers' ports (and restartable init containers', i.e. sidecars)
 * with the same protocol. undefined when the pod has no such port.
 */
export function findPort(pod: Pod, sp: ServicePort): number | undefined {
  const target = sp.targetPort ?? sp.port;
  if (typeof target === 'number') return target;
  if (/^[0-9]+$/.test(target)) return Number(target);
  const protocol = sp.protocol ?? 'TCP';
  const containers = [
    ...(pod.spec?.containers ?? []),
    ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'),
  ];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

/** Keys (`ns/name`) of the Services in the pod's namespace whose selector matches these labels. */
export function servicesSelecting(services: Service[], labels: Record<string, string> | undefined): Set<string> {
  const out = new Set<string>();
  for (const s of services) {
    if (!hasSelector(s)) continue; // no selector selects nothing
    if (selectorMatches(s.spec!.selector, labels)) out.add(`${s.metadata!.namespace}/${s.metadata!.name}`);
  }
  return out;
}

/**
 * upstream's podEndpointsChanged: [podChanged, labelsChanged]. podChanged when something that
 * shows in an endpoint moved (deletion, readiness, IPs, phase, node); labelsChanged when the
 * Services it belongs to may have (labels, hostname, subdomain).
 */
export function podEndpointsChanged(oldPod: Pod, newPod: Pod): [boolean, boolean] {
  const labelsChanged = !sameStringMap(oldPod.metadata?.labels, newPod.metadata?.labels)
    || oldPod.spec?.hostname !== newPod.spec?.hostname || oldPod.spec?.subdomain !== newPod.spec?.subdomain;
  const podChanged = oldPod.metadata?.deletionTimestamp !== newPod.metadata?.deletionTimestamp
    || isPodReady(oldPod) !== isPodReady(newPod)
    || podIPs(oldPod).join(',') !== podIPs(newPod).join(',')
    || isPodTerminal(oldPod) !== isPodTerminal(newPod)
    || oldPod.spec?.nodeName !== newPod.spec?.nodeName;
  return [podChanged, labelsChanged];
}

/** The Service keys to sync after a pod update (upstream's GetServicesToUpdateOnPodChange). */
export function servicesToUpdateOnPodChange(services: Service[], oldPod: Pod, newPod: Pod): Set<string> {
  if (oldPod.metadata?.resourceVersion === newPod.metadata?.resourceVersion) return new Set();
  const [podChanged, labelsChanged] = podEndpointsChanged(oldPod, newPod);
  if (!podChanged && !labelsChanged) return new Set();
  const cur = servicesSelecting(services, newPod.metadata?.labels);
  if (!labelsChanged) return cur;
  const old = servicesSelecting(services, oldPod.metadata?.labels);
  if (podChanged) return new Set([...cur, ...old]);
  // only the labels moved: the Services the pod joined or left
  const out = new Set<string>();
  for (const k of cur) if (!old.has(k)) out.add(k);
  for (const k of old) if (!cur.has(k)) out.add(k);
  return out;
}

export function sameStringMap(a: Record<string, string> | undefined | null, b: Record<string, string> | undefined | null): boolean {
  const ea = Object.entries(a ?? {}), eb = b ?? {};
  if (ea.length !== Object.keys(eb).length) return false;
  for (const [k, v] of ea) if (eb[k] !== v) return false;
  return true;
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros, none when whole. */
export function formatRFC3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d+)Z$/, (_m, frac: string) => {
    const f = frac.replace(/0+$/, '');
    return f ? `.${f}Z` : 'Z';
  });
}

function parseTime(t: string | undefined | null): number | undefined {
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

interface ServiceTriggerState { serviceTime?: number; podTimes: Map<string, number> }

/**
 * upstream's TriggerTimeTracker: remembers, per Service, the trigger times (pod Ready condition
 * transitions, Service creation) seen at its last sync, and hands back the earliest one that
 * changed since — the time of the oldest change the coming write reflects. A Service synced for
 * the first time reports its creation time. undefined: no annotation.
 */
export class TriggerTimeTracker {
  private readonly states = new Map<string, ServiceTriggerState>();

  compute(svc: Service, pods: Pod[]): number | undefined {
    const key = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
    const prev = this.states.get(key);
    const podTimes = new Map<string, number>();
    let min: number | undefined;
    const consider = (t: number): void => { if (min === undefined || t < min) min = t; };
    for (const p of pods) {
      const t = parseTime(podReadyCondition(p)?.lastTransitionTime);
      if (t === undefined) continue;
      const name = p.metadata!.name!;
      podTimes.set(name, t);
      const before = prev?.podTimes.get(name);
      if (before === undefined || t > before) consider(t);
    }
    const serviceTime = parseTime(svc.metadata?.creationTimestamp);
    if (serviceTime !== undefined && (prev?.serviceTime === undefined || serviceTime > prev.serviceTime)) consider(serviceTime);
    this.states.set(key, { serviceTime, podTimes });
    if (!prev) return serviceTime;
    return min;
  }

  delete(namespace: string, name: string): void { this.states.delete(`${namespace}/${name}`); }
}
