// The Endpoints controller (upstream's endpoint controller): for every Service with a selector it
// keeps a core/v1 Endpoints object of the same name listing the matching pods — ready ones under
// `addresses`, not-ready ones under `notReadyAddresses` (terminating pods nowhere, unless the Service
// publishes not-ready addresses) — with one subset per group of ports that share the same
// addresses (named targetPorts resolve per pod, so pods may differ). It deletes the Endpoints when
// the Service goes (Endpoints carry no ownerReference, as upstream), and at start deletes Endpoints
// whose Service no longer exists. Services without a selector (e.g. `kubernetes` in default, kept
// by the API server) and ExternalName Services are left alone.
//
// Level-triggered: handlers enqueue Service keys; sync(key) compares the desired subsets with the
// cached Endpoints and writes only on a difference. Over 1000 addresses are truncated (ready ones
// kept first) and marked `endpoints.kubernetes.io/over-capacity: truncated`.
import { isDeepStrictEqual } from 'node:util';
import type * as core from 'kubernetes-types/core/v1.js';
import { isStatusError, StatusError } from '../../machinery/status.js';
import {
  type Clock, type EventRecorder, type Informer, type ResourceRef, WorkQueue, indexFuncs, keyOf, realClock, runWorkers,
  splitKey, waitForCacheSync,
} from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import type { ControllerContext } from '../context.js';
import {
  type Endpoints, type Pod, type Service, HeadlessServiceLabel, LastChangeTriggerTimeAnnotation, TriggerTimeTracker,
  endpointsResource, findPort, formatRFC3339Nano, isIPv6, isPodReady, isServiceIPSet, managesEndpoints, podIPs, podsResource,
  sameStringMap, selectorMatches, servicesResource, servicesSelecting, servicesToUpdateOnPodChange, shouldPodBeInEndpoints,
  shouldSetHostname,
} from '../endpointslice/endpoint-util.js';

export const controllerName = 'endpoint-controller';
/** at most this many addresses (ready + not ready) in one Endpoints object */
export const maxCapacity = 1000;
export const OverCapacityAnnotation = 'endpoints.kubernetes.io/over-capacity';
/** Endpoints carrying this annotation are leader-election records, never orphans to clean up. */
export const LeaderElectionAnnotation = 'control-plane.alpha.kubernetes.io/leader';

type EndpointAddress = core.EndpointAddress;
type EndpointPort = core.EndpointPort;
type EndpointSubset = core.EndpointSubset;

/** What the controller needs of a client; RestClient fits. */
export interface EndpointsClient {
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  update<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  delete(res: ResourceRef, ns: string | undefined | null, name: string): Promise<unknown>;
}

export interface EndpointsControllerOptions {
  client: EndpointsClient;
  serviceInformer: Informer<Service>;
  podInformer: Informer<Pod>;
  endpointsInformer: Informer<Endpoints>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
  /** delay syncs triggered by pod changes by this much, to batch bursts (upstream's endpointUpdatesBatchPeriod; default 0) */
  batchPeriodMs?: number;
}

/** Runs the Endpoints controller on the context's shared informers until signal aborts. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Record<string, unknown> = {}): Promise<void> {
  const c = new EndpointsController({
    client: ctx.client,
    serviceInformer: ctx.informers.informerFor<Service>(servicesResource),
    podInformer: ctx.informers.informerFor<Pod>(podsResource, { indexers: { byNode: indexFuncs.byNode } }),
    endpointsInformer: ctx.informers.informerFor<Endpoints>(endpointsResource),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
    workers: typeof opts.workers === 'number' ? opts.workers : undefined,
    batchPeriodMs: typeof opts.batchPeriodMs === 'number' ? opts.batchPeriodMs : undefined,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

// ---------------------------------------------------------------------------------------------
// desired state (pure)

interface Entry { addr: EndpointAddress; ready: boolean }

function addrKey(a: EndpointAddress): string { return `${a.ip}\u0000${a.targetRef?.uid ?? ''}`; }

function compareAddresses(a: EndpointAddress, b: EndpointAddress): number {
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  const ua = a.targetRef?.uid ?? '', ub = b.targetRef?.uid ?? '';
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

function comparePorts(a: EndpointPort, b: EndpointPort): number {
  const na = a.name ?? '', nb = b.name ?? '';
  if (na !== nb) return na < nb ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  const pa = a.protocol ?? '', pb = b.protocol ?? '';
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** The address of pod in the Service's IP family (the first family of spec.ipFamilies). */
function podAddress(svc: Service, pod: Pod): EndpointAddress | undefined {
  const family = svc.spec?.ipFamilies?.[0]
    ?? (svc.spec?.clusterIP && svc.spec.clusterIP !== 'None' ? (isIPv6(svc.spec.clusterIP) ? 'IPv6' : 'IPv4') : (isIPv6(pod.status?.podIP ?? '') ? 'IPv6' : 'IPv4'));
  const ip = podIPs(pod).find((x) => isIPv6(x) === (family === 'IPv6'));
  if (!ip) return undefined;
  const a: EndpointAddress = { ip };
  if (shouldSetHostname(pod, svc)) a.hostname = pod.spec!.hostname!;
  if (pod.spec?.nodeName) a.nodeName = pod.spec.nodeName;
  a.targetRef = { kind: 'Pod', namespace: pod.metadata?.namespace, name: pod.metadata?.name, uid: pod.metadata?.uid };
  return a;
}

export interface DesiredSubsets { subsets: EndpointSubset[]; ready: number; notReady: number }

/**
 * The subsets the Endpoints of svc should hold for these pods (already filtered by the selector):
 * one (address, port) pair per pod and Service port, then repacked as upstream's RepackSubsets
 * does — ports with the same set of addresses share a subset; an address both ready and not
 * ready for a port counts as ready; everything sorted, so equal inputs give equal output.
 */
export function desiredSubsets(svc: Service, pods: Pod[]): DesiredSubsets {
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const ports = svc.spec?.ports ?? [];
  const headless = svc.spec?.clusterIP === 'None';
  // port key → { port, addresses }
  const byPort = new Map<string, { port?: EndpointPort; addrs: Map<string, Entry> }>();
  let ready = 0, notReady = 0;
  const add = (port: EndpointPort | undefined, addr: EndpointAddress, isReady: boolean): void => {
    const pk = port ? JSON.stringify([port.name ?? '', port.port, port.protocol ?? '', port.appProtocol ?? '']) : '';
    let g = byPort.get(pk);
    if (!g) byPort.set(pk, (g = { port, addrs: new Map() }));
    const k = addrKey(addr);
    const prev = g.addrs.get(k);
    if (!prev || (isReady && !prev.ready)) g.addrs.set(k, { addr, ready: isReady });
    if (isReady) ready++; else notReady++;
  };
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const addr = podAddress(svc, pod);
    if (!addr) continue;
    const isReady = publishNotReady || isPodReady(pod);
    if (ports.length === 0) {
      if (headless) add(undefined, addr, isReady); // headless Services may have no ports
      continue;
    }
    for (const sp of ports) {
      const num = findPort(pod, sp);
      if (num === undefined) continue;
      const ep: EndpointPort = { port: num, protocol: sp.protocol ?? 'TCP' };
      if (sp.name) ep.name = sp.name;
      if (sp.appProtocol) ep.appProtocol = sp.appProtocol;
      add(ep, addr, isReady);
    }
  }
  // group ports by identical address sets
  const groups = new Map<string, { ports: EndpointPort[]; addrs: Entry[] }>();
  for (const g of byPort.values()) {
    const entries = [...g.addrs.values()].sort((a, b) => compareAddresses(a.addr, b.addr));
    const sig = entries.map((e) => `${addrKey(e.addr)}\u0000${e.ready ? 1 : 0}`).join('\u0001');
    let grp = groups.get(sig);
    if (!grp) groups.set(sig, (grp = { ports: [], addrs: entries }));
    if (g.port) grp.ports.push(g.port);
  }
  const subsets: EndpointSubset[] = [];
  for (const grp of groups.values()) {
    const ss: EndpointSubset = {};
    const readyAddrs = grp.addrs.filter((e) => e.ready).map((e) => e.addr);
    const notReadyAddrs = grp.addrs.filter((e) => !e.ready).map((e) => e.addr);
    if (readyAddrs.length) ss.addresses = readyAddrs;
    if (notReadyAddrs.length) ss.notReadyAddresses = notReadyAddrs;
    if (grp.ports.length) ss.ports = grp.ports.sort(comparePorts);
    if (!readyAddrs.length && !notReadyAddrs.length) continue;
    subsets.push(ss);
  }
  subsets.sort((a, b) => {
    const fa = (a.addresses ?? a.notReadyAddresses)![0]!, fb = (b.addresses ?? b.notReadyAddresses)![0]!;
    const c = compareAddresses(fa, fb);
    if (c) return c;
    const pa = JSON.stringify(a.ports ?? []), pb = JSON.stringify(b.ports ?? []);
    return pa < pb ? -1 : pa > pb ? 1 : 0;
  });
  return { subsets, ready, notReady };
}

/**
 * upstream's truncateEndpoints: caps the subsets at maxCapacity addresses in place, spreading what
 * is kept over the subsets in proportion to their size; ready addresses are kept before any not
 * ready one. Returns true if anything was dropped.
 */
export function truncateSubsets(subsets: EndpointSubset[], capacity = maxCapacity): boolean {
  let totalReady = 0, totalNotReady = 0;
  for (const s of subsets) { totalReady += s.addresses?.length ?? 0; totalNotReady += s.notReadyAddresses?.length ?? 0; }
  if (totalReady + totalNotReady <= capacity) return false;
  const truncateReady = totalReady > capacity;
  const max = truncateReady ? capacity : capacity - totalReady;
  const numTotal = truncateReady ? totalReady : totalNotReady;
  let canBeAdded = max;
  for (const s of subsets) {
    const inSubset = truncateReady ? (s.addresses?.length ?? 0) : (s.notReadyAddresses?.length ?? 0);
    const toBeAdded = Math.min(Math.ceil((inSubset / numTotal) * max), canBeAdded);
    if (truncateReady) {
      if (s.addresses) s.addresses = s.addresses.slice(0, toBeAdded);
      delete s.notReadyAddresses;
      canBeAdded -= s.addresses?.length ?? 0;
    } else {
      if (s.notReadyAddresses) s.notReadyAddresses = s.notReadyAddresses.slice(0, toBeAdded);
      canBeAdded -= s.notReadyAddresses?.length ?? 0;
    }
    if (s.addresses?.length === 0) delete s.addresses;
    if (s.notReadyAddresses?.length === 0) delete s.notReadyAddresses;
  }
  return true;
}

/** Labels of the Endpoints: the Service's, plus the headless label when it has no ClusterIP. */
export function endpointsLabels(svc: Service): Record<string, string> {
  const labels: Record<string, string> = { ...(svc.metadata?.labels ?? {}) };
  if (!isServiceIPSet(svc)) labels[HeadlessServiceLabel] = '';
  else delete labels[HeadlessServiceLabel];
  return labels;
}

/** Address lists compared without targetRef.resourceVersion (pod updates must not cause writes). */
function normalizeSubsets(subsets: EndpointSubset[] | undefined): EndpointSubset[] {
  const strip = (as: EndpointAddress[] | undefined) => as?.map((a) => {
    if (!a.targetRef?.resourceVersion) return a;
    const { resourceVersion: _rv, ...ref } = a.targetRef;
    return { ...a, targetRef: ref };
  });
  return (subsets ?? []).map((s) => {
    const out: EndpointSubset = {};
    if (s.addresses?.length) out.addresses = strip(s.addresses);
    if (s.notReadyAddresses?.length) out.notReadyAddresses = strip(s.notReadyAddresses);
    if (s.ports?.length) out.ports = s.ports.map((p) => { const q: EndpointPort = { port: p.port, protocol: p.protocol ?? 'TCP' }; if (p.name) q.name = p.name; if (p.appProtocol) q.appProtocol = p.appProtocol; return q; });
    return out;
  });
}

function countAddresses(subsets: EndpointSubset[] | undefined): number {
  let n = 0;
  for (const s of subsets ?? []) n += (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0);
  return n;
}

// ---------------------------------------------------------------------------------------------
// the controller

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

/** A retryable error that says the informer cache lags behind our own write. */
export class StaleCacheError extends Error {
  constructor(message: string) { super(message); this.name = 'StaleCacheError'; }
}

export class EndpointsController {
  readonly queue: WorkQueue<string>;
  private readonly clock: Clock;
  private readonly triggerTimes = new TriggerTimeTracker();
  /** key → resourceVersion our last update replaced (a cache still showing it is stale) */
  private readonly staleRV = new Map<string, string>();
  /** keys we created whose Endpoints the cache has not shown yet */
  private readonly created = new Set<string>();

  constructor(private readonly opts: EndpointsControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'endpoint' });
    const batch = (k: string): void => { if (opts.batchPeriodMs) this.queue.addAfter(k, opts.batchPeriodMs); else this.queue.add(k); };
    const servicesIn = (ns: string | undefined): Service[] => opts.serviceInformer.lister.list(ns);
    const onPod = (p: Pod): void => { for (const k of servicesSelecting(servicesIn(p.metadata?.namespace), p.metadata?.labels)) batch(k); };
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
    opts.endpointsInformer.addEventHandler({
      onAdd: (e) => { this.created.delete(keyOf(e)); },
      onUpdate: (_o, e) => { this.created.delete(keyOf(e)); },
      onDelete: (e) => { const k = keyOf(e); this.created.delete(k); this.staleRV.delete(k); this.queue.add(k); },
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.opts;
    if (!(await waitForCacheSync(signal, o.serviceInformer, o.podInformer, o.endpointsInformer))) return;
    this.checkLeftoverEndpoints();
    await runWorkers(this.queue, o.workers ?? 5, (k) => this.sync(k), signal, {
      onError: (k, e) => {
        if (e instanceof StaleCacheError || isStatusError(e, 'Conflict')) return;
        console.error(`${controllerName}: sync ${k}: ${errMessage(e)}`);
      },
    });
  }

  /** Queues every existing Endpoints so those whose Service is gone get deleted (once, at start). */
  checkLeftoverEndpoints(): void {
    for (const ep of this.opts.endpointsInformer.lister.list()) {
      if (ep.metadata?.annotations?.[LeaderElectionAnnotation] !== undefined) continue;
      this.queue.add(keyOf(ep));
    }
  }

  /** Reconciles the Endpoints of one Service. Throws to be retried. */
  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const o = this.opts;
    const svc = o.serviceInformer.lister.get(namespace, name);
    if (!svc) {
      this.triggerTimes.delete(namespace, name);
      this.staleRV.delete(key);
      if (!o.endpointsInformer.lister.get(namespace, name)) return;
      try { await o.client.delete(endpointsResource, namespace, name); } catch (e) {
        if (!isStatusError(e, 'NotFound')) throw e;
      }
      return;
    }
    if (!managesEndpoints(svc)) return;

    const selector = svc.spec!.selector!;
    const pods = o.podInformer.lister.list(namespace).filter((p) => selectorMatches(selector, p.metadata?.labels));
    // computed on every sync so the tracker's state moves on even when nothing is written
    const triggerTime = this.triggerTimes.compute(svc, pods);
    const { subsets } = desiredSubsets(svc, pods);

    const current = o.endpointsInformer.lister.get(namespace, name);
    if (current && this.staleRV.get(key) === current.metadata?.resourceVersion) {
      throw new StaleCacheError(`endpoints informer cache is out of date, resource version ${current.metadata?.resourceVersion} already processed for endpoints ${key}`);
    }
    if (!current && this.created.has(key)) throw new StaleCacheError(`endpoints informer cache has not seen the Endpoints ${key} created`);

    const labels = endpointsLabels(svc);
    if (current) {
      const overCapacity = countAddresses(subsets) > maxCapacity;
      const capacityOk = !overCapacity && current.metadata?.annotations?.[OverCapacityAnnotation] === undefined;
      if (capacityOk && isDeepStrictEqual(normalizeSubsets(current.subsets), normalizeSubsets(subsets)) && sameStringMap(current.metadata?.labels, labels)) return;
    }

    const next: Endpoints = current ? structuredClone(current) : {
      apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace },
    };
    next.metadata!.labels = labels;
    const annotations: Record<string, string> = { ...(next.metadata!.annotations ?? {}) };
    if (triggerTime !== undefined) annotations[LastChangeTriggerTimeAnnotation] = formatRFC3339Nano(triggerTime);
    else delete annotations[LastChangeTriggerTimeAnnotation];
    if (truncateSubsets(subsets)) annotations[OverCapacityAnnotation] = 'truncated';
    else delete annotations[OverCapacityAnnotation];
    if (Object.keys(annotations).length) next.metadata!.annotations = annotations;
    else delete next.metadata!.annotations;
    if (subsets.length) next.subsets = subsets; else delete next.subsets;

    try {
      if (!current) {
        await o.client.create<Endpoints>(endpointsResource, namespace, next);
        if (!o.endpointsInformer.lister.get(namespace, name)) this.created.add(key);
      } else {
        const updated = await o.client.update<Endpoints>(endpointsResource, namespace, next);
        if (updated.metadata?.resourceVersion !== current.metadata?.resourceVersion) this.staleRV.set(key, current.metadata!.resourceVersion!);
      }
    } catch (e) {
      if (!current && e instanceof StatusError && e.code === 403 && e.details?.causes?.some((c) => c.reason === 'NamespaceTerminating')) return;
      const ref = { kind: 'Endpoints', apiVersion: 'v1', namespace, name, uid: current?.metadata?.uid };
      if (!ref.uid) delete ref.uid;
      if (!current) o.recorder?.event(ref, 'Warning', 'FailedToCreateEndpoint', `Failed to create endpoint for service ${namespace}/${name}: ${errMessage(e)}`);
      else o.recorder?.event(ref, 'Warning', 'FailedToUpdateEndpoint', `Failed to update endpoint ${namespace}/${name}: ${errMessage(e)}`);
      throw e;
    }
  }
}
