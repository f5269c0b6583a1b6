// ServiceLB (the idea of k3s' klipper-lb, without its DaemonSet of pods): Services of
// type LoadBalancer get status.loadBalancer.ingress = the addresses of the Ready nodes, so
// `kubectl get svc` shows an EXTERNAL-IP; the Service proxy makes the port answer on those nodes.
//
// As k3s: ExternalIPs of the nodes are used if any node has one, else their InternalIPs; addresses
// are filtered to the Service's ipFamilies (IPv4 before IPv6 as listed) and sorted. If any node has
// the label svccontroller.k3s.cattle.io/enablelb, only nodes with enablelb=true serve load balancers.
// With externalTrafficPolicy Local, only nodes that host a ready endpoint of the Service count
// (read from its EndpointSlices). Services with spec.loadBalancerClass belong to another
// implementation and are left alone. A Service that stops being a LoadBalancer has its ingress
// cleared. Events as k3s: UpdatedLoadBalancer, UnAvailableLoadBalancer (no node available).
//
// Level-triggered: Service, Node and EndpointSlice events enqueue Service keys; sync(key) computes
// the ingress list and writes services/status only when it differs.
import { isDeepStrictEqual } from 'node:util';
import type * as core from 'kubernetes-types/core/v1.js';
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import {
  type Clock, type EventRecorder, type Informer, type ResourceRef, WorkQueue, keyOf, realClock, runWorkers, splitKey,
  waitForCacheSync,
} from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import {
  type EndpointSlice, type Node, type Service, endpointSlicesResource, isIPv6, nodesResource, servicesResource,
} from '../endpointslice/endpoint-util.js';

export const controllerName = 'service-lb-controller';
/** k3s' node label: when any node has it, only nodes labelled "true" carry load balancers */
export const EnableLBLabel = 'svccontroller.k3s.cattle.io/enablelb';

type LoadBalancerIngress = core.LoadBalancerIngress;

/** What the controller needs of a client; RestClient fits. */
export interface ServiceLBClient {
  updateStatus<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
}

export interface ServiceLBControllerOptions {
  client: ServiceLBClient;
  serviceInformer: Informer<Service>;
  nodeInformer: Informer<Node>;
  sliceInformer: Informer<EndpointSlice>;
  recorder?: Pick<EventRecorder, 'event'>;
  clock?: Clock;
  workers?: number;
}

/** Runs the ServiceLB controller on the context's shared informers until signal aborts. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Record<string, unknown> = {}): Promise<void> {
  const c = new ServiceLBController({
    client: ctx.client,
    serviceInformer: ctx.informers.informerFor<Service>(servicesResource),
    nodeInformer: ctx.informers.informerFor<Node>(nodesResource),
    sliceInformer: ctx.informers.informerFor<EndpointSlice>(endpointSlicesResource),
    recorder: ctx.recorder(controllerName),
    clock: ctx.clock,
    workers: typeof opts.workers === 'number' ? opts.workers : undefined,
  });
  ctx.informers.start(signal);
  await c.run(signal);
}

export function isNodeReady(n: Node): boolean {
  return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

/** This Service is ours: type LoadBalancer without a loadBalancerClass. */
export function wantsServiceLB(svc: Service): boolean {
  return svc.spec?.type === 'LoadBalancer' && !svc.spec.loadBalancerClass;
}

/** The nodes that may carry load balancers: Ready, not being deleted, and enablelb-selected if that label is in use. */
export function eligibleNodes(nodes: Node[]): Node[] {
  const pool = nodes.some((n) => n.metadata?.labels?.[EnableLBLabel] !== undefined);
  return nodes.filter((n) => isNodeReady(n) && !n.metadata?.deletionTimestamp && (!pool || n.metadata?.labels?.[EnableLBLabel] === 'true'));
}

/** Names of nodes hosting a ready endpoint of the Service, from its EndpointSlices. */
export function nodesWithReadyEndpoints(slices: EndpointSlice[]): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    for (const ep of s.endpoints ?? []) {
      const ready = ep.conditions?.ready ?? true;
      if (ready && ep.targetRef?.kind === 'Pod' && ep.nodeName) out.add(ep.nodeName);
    }
  }
  return out;
}

/** The ingress list for svc given the eligible nodes (and, for externalTrafficPolicy Local, which nodes have ready endpoints). */
export function desiredIngress(svc: Service, nodes: Node[], localNodes?: Set<string>): LoadBalancerIngress[] {
  const ext = new Set<string>(), int = new Set<string>();
  for (const n of nodes) {
    if (localNodes && !localNodes.has(n.metadata!.name!)) continue;
    for (const a of n.status?.addresses ?? []) {
      if (a.type === 'ExternalIP') ext.add(a.address);
      else if (a.type === 'InternalIP') int.add(a.address);
    }
  }
  const ips = [...(ext.size ? ext : int)];
  const v4 = ips.filter((ip) => !isIPv6(ip)).sort(), v6 = ips.filter(isIPv6).sort();
  const families = svc.spec?.ipFamilies?.length ? svc.spec.ipFamilies : ['IPv4'];
  const out: string[] = [];
  for (const f of families) out.push(...(f === 'IPv6' ? v6 : f === 'IPv4' ? v4 : []));
  return out.map((ip) => ({ ip, ipMode: 'VIP' }));
}

function ingressIPs(ing: LoadBalancerIngress[] | undefined): string {
  return `[${(ing ?? []).map((i) => i.ip ?? i.hostname ?? '').join(' ')}]`;
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

export class ServiceLBController {
  readonly queue: WorkQueue<string>;
  private readonly clock: Clock;

  constructor(private readonly opts: ServiceLBControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue<string>({ clock: this.clock, name: 'servicelb' });
    const enqueueAll = (): void => {
      for (const s of opts.serviceInformer.lister.list()) {
        if (s.spec?.type === 'LoadBalancer' || (s.status?.loadBalancer?.ingress?.length ?? 0) > 0) this.queue.add(keyOf(s));
      }
    };
    opts.serviceInformer.addEventHandler({
      onAdd: (s) => this.queue.add(keyOf(s)),
      onUpdate: (_o, s) => this.queue.add(keyOf(s)),
    });
    // only what changes the address set matters (heartbeats update nodes all the time)
    const nodeView = (n: Node): unknown => [isNodeReady(n), !!n.metadata?.deletionTimestamp, n.metadata?.labels?.[EnableLBLabel] ?? null,
      (n.status?.addresses ?? []).filter((a) => a.type === 'ExternalIP' || a.type === 'InternalIP').map((a) => `${a.type}=${a.address}`)];
    opts.nodeInformer.addEventHandler({
      onAdd: enqueueAll,
      onUpdate: (o, n) => { if (!isDeepStrictEqual(nodeView(o), nodeView(n))) enqueueAll(); },
      onDelete: enqueueAll,
    });
    const onSlice = (s: EndpointSlice): void => {
      const name = s.metadata?.labels?.['kubernetes.io/service-name'];
      if (!name) return;
      const svc = opts.serviceInformer.lister.get(s.metadata?.namespace, name);
      if (svc && wantsServiceLB(svc) && svc.spec?.externalTrafficPolicy === 'Local') this.queue.add(keyOf(svc));
    };
    opts.sliceInformer.addEventHandler({ onAdd: onSlice, onUpdate: (_o, s) => onSlice(s), onDelete: onSlice });
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.opts;
    if (!(await waitForCacheSync(signal, o.serviceInformer, o.nodeInformer, o.sliceInformer))) return;
    await runWorkers(this.queue, o.workers ?? 2, (k) => this.sync(k), signal, {
      onError: (k, e) => { if (!isStatusError(e, 'Conflict')) console.error(`${controllerName}: sync ${k}: ${errMessage(e)}`); },
    });
  }

  /** Brings one Service's load balancer status up to date. Throws to be retried. */
  async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const o = this.opts;
    const svc = o.serviceInformer.lister.get(namespace, name);
    if (!svc) return;
    if (svc.spec?.loadBalancerClass) return; // another load balancer implementation's
    const current = svc.status?.loadBalancer?.ingress ?? [];
    if (svc.spec?.type !== 'LoadBalancer') {
      if (current.length === 0) return;
      await this.write(svc, []);
      o.recorder?.event(svc, 'Normal', 'DeletedLoadBalancer', 'Deleted load balancer');
      return;
    }
    let local: Set<string> | undefined;
    if (svc.spec.externalTrafficPolicy === 'Local') {
      local = nodesWithReadyEndpoints(o.sliceInformer.lister.list(namespace).filter((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === name));
    }
    const want = desiredIngress(svc, eligibleNodes(o.nodeInformer.lister.list()), local);
    if (sameIngress(current, want)) return;
    await this.write(svc, want);
    if (want.length === 0) o.recorder?.event(svc, 'Warning', 'UnAvailableLoadBalancer', 'There are no available nodes for LoadBalancer');
    else o.recorder?.event(svc, 'Normal', 'UpdatedLoadBalancer', `Updated LoadBalancer with new IPs: ${ingressIPs(current)} -> ${ingressIPs(want)}`);
  }

  private async write(svc: Service, ingress: LoadBalancerIngress[]): Promise<void> {
    const copy = structuredClone(svc);
    const next: Service = { ...copy, status: { ...(copy.status ?? {}), loadBalancer: ingress.length ? { ingress } : {} } };
    await this.opts.client.updateStatus<Service>(servicesResource, svc.metadata?.namespace, next);
  }
}

/** Same IPs in the same order (ipMode defaulted to VIP, as the API server does for an ip). */
function sameIngress(a: LoadBalancerIngress[], b: LoadBalancerIngress[]): boolean {
  const norm = (l: LoadBalancerIngress[]) => l.map((i) => [i.ip ?? '', i.hostname ?? '', i.ip ? (i.ipMode ?? 'VIP') : (i.ipMode ?? ''), i.ports ?? []]);
  return isDeepStrictEqual(norm(a), norm(b));
}
