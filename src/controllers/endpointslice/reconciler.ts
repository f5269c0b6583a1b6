// The EndpointSlice reconciler (upstream's k8s.io/endpointslice Reconciler), as a pure function:
// given a Service, the pods its selector matches, the Nodes, and the slices this controller already
// keeps for it, it returns which slices to create, update and delete. It keeps churn low the way
// upstream does:
//   1. each existing slice keeps the endpoints still wanted (updated in place where they changed);
//      a slice left empty is deleted, a changed one is updated;
//   2. leftover endpoints go first into slices being updated anyway (fullest first);
//   3. then into one unchanged slice they fit in whole (the one closest to full), else new slices
//      of up to maxEndpointsPerSlice;
//   4. a create paired with a delete becomes an update of the slice that would be deleted.
// Endpoints are grouped by their resolved ports (named targetPorts may differ per pod), one group of
// slices per port set and address type. A Service with no endpoints keeps one empty placeholder.
import { isDeepStrictEqual } from 'node:util';
import type * as discovery from 'kubernetes-types/discovery/v1.js';
import type { OwnerReference } from '../../api/types.js';
import {
  type EndpointSlice, type Node, type Pod, type Service, HeadlessServiceLabel, TopologyZoneLabel, findPort, isIPv6, isPodReady,
  isPodTerminating, isServiceIPSet, podIPs, shouldPodBeInEndpoints, shouldSetHostname,
} from './endpoint-util.js';

export const LabelServiceName = 'kubernetes.io/service-name';
export const LabelManagedBy = 'endpointslice.kubernetes.io/managed-by';
export const managedByValue = 'endpointslice-controller.k8s.io';
/** upstream's --max-endpoints-per-slice default */
export const defaultMaxEndpointsPerSlice = 100;

type Endpoint = discovery.Endpoint;
type EndpointPort = discovery.EndpointPort;
type AddressType = 'IPv4' | 'IPv6';

export interface ReconcileInput {
  service: Service;
  /** pods matching the Service's selector */
  pods: Pod[];
  /** the Node named by a pod, if known */
  nodeByName(name: string): Node | undefined;
  /** slices labelled for this Service and managed by this controller, not being deleted */
  existing: EndpointSlice[];
  maxEndpointsPerSlice?: number;
}

export interface ReconcilePlan {
  create: EndpointSlice[];
  update: EndpointSlice[];
  delete: EndpointSlice[];
  /** problems that did not stop the plan (pods skipped because their Node is unknown) */
  errors: string[];
}

/** The address types the Service's IP families ask for (upstream's getAddressTypesForService). */
export function addressTypesFor(svc: Service): Set<AddressType> {
  const out = new Set<AddressType>();
  for (const f of svc.spec?.ipFamilies ?? []) {
    if (f === 'IPv4') out.add('IPv4');
    if (f === 'IPv6') out.add('IPv6');
  }
  if (out.size) return out;
  const ip = svc.spec?.clusterIP;
  if (ip && ip !== 'None') return new Set([isIPv6(ip) ? 'IPv6' : 'IPv4']);
  return new Set(['IPv4', 'IPv6']);
}

/** The endpoint for one pod (upstream's podToEndpoint). */
export function podToEndpoint(pod: Pod, node: Node | undefined, svc: Service, addressType: AddressType): Endpoint {
  const serving = isPodReady(pod);
  const terminating = isPodTerminating(pod);
  // for compatibility, ready is never true while terminating unless the Service publishes not-ready addresses
  const ready = !!svc.spec?.publishNotReadyAddresses || (serving && !terminating);
  const ep: Endpoint = {
    addresses: podIPs(pod).filter((ip) => isIPv6(ip) === (addressType === 'IPv6')),
    conditions: { ready, serving, terminating },
  };
  if (shouldSetHostname(pod, svc)) ep.hostname = pod.spec!.hostname!;
  if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
  const zone = node?.metadata?.labels?.[TopologyZoneLabel];
  if (zone) ep.zone = zone;
  ep.targetRef = { kind: 'Pod', namespace: pod.metadata?.namespace, name: pod.metadata?.name, uid: pod.metadata?.uid };
  return ep;
}

/** The slice ports for a pod: every Service port whose targetPort resolves on it. */
export function endpointPorts(svc: Service, pod: Pod): EndpointPort[] {
  const out: EndpointPort[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    const num = findPort(pod, sp);
    if (num === undefined) continue;
    const p: EndpointPort = { name: sp.name ?? '', port: num, protocol: sp.protocol ?? 'TCP' };
    if (sp.appProtocol) p.appProtocol = sp.appProtocol;
    out.push(p);
  }
  return out;
}

function normPort(p: EndpointPort): EndpointPort {
  const q: EndpointPort = { name: p.name ?? '', protocol: p.protocol ?? 'TCP' };
  if (p.port !== undefined && p.port !== null) q.port = p.port;
  if (p.appProtocol) q.appProtocol = p.appProtocol;
  return q;
}

/** A key equal for equal port sets, whatever their order or defaulting. */
export function portMapKey(ports: EndpointPort[] | undefined | null): string {
  const norm = (ports ?? []).map(normPort).map((p) => JSON.stringify([p.name, p.port ?? null, p.protocol, p.appProtocol ?? '']));
  return JSON.stringify(norm.sort());
}

/** An endpoint's identity (upstream hashes addresses, hostname and the target's namespace/name). */
export function endpointKey(ep: Endpoint): string {
  return JSON.stringify([[...(ep.addresses ?? [])].sort(), ep.hostname ?? '', ep.targetRef?.namespace ?? '', ep.targetRef?.name ?? '']);
}

/** What matters of an endpoint beyond its identity (targetRef.resourceVersion ignored). */
function endpointBody(ep: Endpoint): unknown {
  const c = ep.conditions ?? {};
  const ref = ep.targetRef ? { kind: ep.targetRef.kind, namespace: ep.targetRef.namespace, name: ep.targetRef.name, uid: ep.targetRef.uid } : null;
  return [ep.nodeName ?? null, ep.zone ?? null, c.ready ?? null, c.serving ?? null, c.terminating ?? null, ref];
}

function endpointsEqual(a: Endpoint, b: Endpoint): boolean { return isDeepStrictEqual(endpointBody(a), endpointBody(b)); }

/** Labels of a slice: the Service's (without the reserved keys) plus the reserved ones. */
export function sliceLabels(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata?.labels ?? {})) {
    if (k === LabelServiceName || k === LabelManagedBy || k === HeadlessServiceLabel) continue;
    out[k] = v;
  }
  if (!isServiceIPSet(svc)) out[HeadlessServiceLabel] = '';
  out[LabelServiceName] = svc.metadata!.name!;
  out[LabelManagedBy] = managedByValue;
  return out;
}

export function serviceOwnerRef(svc: Service): OwnerReference {
  return { apiVersion: 'v1', kind: 'Service', name: svc.metadata!.name!, uid: svc.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

export function ownedBy(slice: EndpointSlice, svc: Service): boolean {
  return (slice.metadata?.ownerReferences ?? []).some((o) => o.uid === svc.metadata?.uid && o.kind === 'Service' && o.apiVersion === 'v1');
}

function newSlice(svc: Service, ports: EndpointPort[], addressType: AddressType): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: {
      generateName: `${svc.metadata!.name}-`, namespace: svc.metadata?.namespace,
      labels: sliceLabels(svc), ownerReferences: [serviceOwnerRef(svc)],
    },
    addressType, ports, endpoints: [],
  };
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ea = Object.entries(a ?? {});
  return ea.length === Object.keys(b).length && ea.every(([k, v]) => b[k] === v);
}

/** Sorted by address so that fills are deterministic. */
function sortedEndpoints(m: Map<string, Endpoint>): Endpoint[] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

interface PortGroupResult { create: EndpointSlice[]; update: EndpointSlice[]; delete: EndpointSlice[] }

function reconcilePortGroup(svc: Service, existing: EndpointSlice[], desired: Map<string, Endpoint>, ports: EndpointPort[], addressType: AddressType, max: number): PortGroupResult {
  const byName = new Map<string, EndpointSlice>();
  const unchanged: string[] = [];
  const toUpdate: string[] = [];
  const toDelete: string[] = [];
  const labels = sliceLabels(svc);

  // 1. keep wanted endpoints in place, refreshed; note slices that changed or emptied
  for (const slice of existing) {
    const name = slice.metadata!.name!;
    byName.set(name, slice);
    const kept: Endpoint[] = [];
    let changed = false;
    for (const ep of slice.endpoints ?? []) {
      const k = endpointKey(ep);
      const want = desired.get(k);
      if (!want) continue;
      kept.push(want);
      if (!endpointsEqual(want, ep)) changed = true;
      desired.delete(k);
    }
    const labelsChanged = !sameLabels(slice.metadata?.labels, labels);
    if (changed || kept.length !== (slice.endpoints ?? []).length) {
      if (kept.length === 0) { toDelete.push(name); continue; }
      const copy = structuredClone(slice);
      copy.endpoints = kept;
      copy.metadata!.labels = labels;
      byName.set(name, copy);
      toUpdate.push(name);
    } else if (labelsChanged) {
      const copy = structuredClone(slice);
      copy.metadata!.labels = labels;
      byName.set(name, copy);
      toUpdate.push(name);
    } else {
      unchanged.push(name);
    }
  }

  const remaining = sortedEndpoints(desired);
  // 2. fill the slices being updated anyway, fullest first
  if (remaining.length && toUpdate.length) {
    const slices = toUpdate.map((n) => byName.get(n)!).sort((a, b) => (b.endpoints?.length ?? 0) - (a.endpoints?.length ?? 0));
    for (const s of slices) {
      s.endpoints ??= [];
      while (remaining.length && s.endpoints.length < max) s.endpoints.push(remaining.shift()!);
    }
  }

  // 3. one unchanged slice that takes the rest whole (closest to full), else new slices
  const create: EndpointSlice[] = [];
  while (remaining.length) {
    let fill: EndpointSlice | undefined;
    if (remaining.length < max && unchanged.length) {
      let best = max;
      for (const n of unchanged) {
        const s = byName.get(n)!;
        const diff = max - (remaining.length + (s.endpoints?.length ?? 0));
        if (diff >= 0 && diff < best) { best = diff; fill = s; if (diff === 0) break; }
      }
    }
    if (fill) {
      fill = structuredClone(fill);
      byName.set(fill.metadata!.name!, fill);
    } else {
      fill = newSlice(svc, ports, addressType);
    }
    fill.endpoints ??= [];
    while (remaining.length && fill.endpoints.length < max) fill.endpoints.push(remaining.shift()!);
    const name = fill.metadata?.name;
    if (name) {
      toUpdate.push(name);
      unchanged.splice(unchanged.indexOf(name), 1);
    } else {
      create.push(fill);
    }
  }
  return { create, update: toUpdate.map((n) => byName.get(n)!), delete: toDelete.map((n) => byName.get(n)!) };
}

function isPlaceholderFor(slice: EndpointSlice, svc: Service, addressType: AddressType): boolean {
  return slice.addressType === addressType && (slice.ports ?? []).length === 0 && (slice.endpoints ?? []).length === 0
    && sameLabels(slice.metadata?.labels, sliceLabels(svc)) && ownedBy(slice, svc);
}

/** Plans the slice writes that bring the Service's EndpointSlices to the desired state. */
export function reconcile(input: ReconcileInput): ReconcilePlan {
  const svc = input.service;
  const max = input.maxEndpointsPerSlice ?? defaultMaxEndpointsPerSlice;
  const plan: ReconcilePlan = { create: [], update: [], delete: [], errors: [] };
  const types = addressTypesFor(svc);
  const byType = new Map<AddressType, EndpointSlice[]>();
  for (const s of input.existing) {
    const t = s.addressType as AddressType;
    if (!types.has(t)) { plan.delete.push(s); continue; }
    let l = byType.get(t);
    if (!l) byType.set(t, (l = []));
    l.push(s);
  }
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const headlessWithoutPorts = (svc.spec?.ports ?? []).length === 0 && svc.spec?.clusterIP === 'None';
  for (const addressType of [...types].sort()) {
    const existing = byType.get(addressType) ?? [];
    const create: EndpointSlice[] = [];
    const update: EndpointSlice[] = [];
    const del: EndpointSlice[] = [];
    const existingByPorts = new Map<string, EndpointSlice[]>();
    for (const s of existing) {
      if (!ownedBy(s, svc)) { del.push(s); continue; } // left from an older Service of the same name
      const k = portMapKey(s.ports);
      let l = existingByPorts.get(k);
      if (!l) existingByPorts.set(k, (l = []));
      l.push(s);
    }
    const desiredByPorts = new Map<string, { ports: EndpointPort[]; endpoints: Map<string, Endpoint> }>();
    for (const pod of input.pods) {
      if (!shouldPodBeInEndpoints(pod, true)) continue;
      const ports = headlessWithoutPorts ? [] : endpointPorts(svc, pod);
      const k = portMapKey(ports);
      let g = desiredByPorts.get(k);
      if (!g) desiredByPorts.set(k, (g = { ports, endpoints: new Map() }));
      const nodeName = pod.spec?.nodeName ?? '';
      const node = nodeName ? input.nodeByName(nodeName) : undefined;
      if (!node && !publishNotReady) {
        plan.errors.push(`skipping Pod ${pod.metadata?.name} for Service ${svc.metadata?.namespace}/${svc.metadata?.name}: Node ${nodeName} Not Found`);
        continue;
      }
      const ep = podToEndpoint(pod, node, svc, addressType);
      if (ep.addresses.length) g.endpoints.set(endpointKey(ep), ep);
    }
    for (const [k, g] of desiredByPorts) {
      const r = reconcilePortGroup(svc, existingByPorts.get(k) ?? [], g.endpoints, g.ports, addressType, max);
      create.push(...r.create);
      update.push(...r.update);
      del.push(...r.delete);
    }
    for (const [k, slices] of existingByPorts) if (!desiredByPorts.has(k)) del.push(...slices);

    // a Service without endpoints keeps one empty placeholder slice
    if (existing.length === del.length && create.length === 0) {
      if (del.length === 1 && isPlaceholderFor(del[0]!, svc, addressType)) del.length = 0;
      else create.push(newSlice(svc, [], addressType));
    }
    plan.create.push(...create);
    plan.update.push(...update);
    plan.delete.push(...del);
  }
  // turn create + delete pairs into updates of the slices that would be deleted
  for (let i = 0; i < plan.delete.length && plan.create.length;) {
    const old = plan.delete[i]!;
    const fresh = plan.create[plan.create.length - 1]!;
    if (old.addressType === fresh.addressType && ownedBy(old, svc)) {
      const reused: EndpointSlice = structuredClone(old);
      reused.metadata!.labels = fresh.metadata!.labels;
      reused.metadata!.ownerReferences = old.metadata!.ownerReferences;
      reused.ports = fresh.ports;
      reused.endpoints = fresh.endpoints;
      plan.create.pop();
      plan.update.push(reused);
      plan.delete.splice(i, 1);
    } else {
      i++;
    }
  }
  return plan;
}
