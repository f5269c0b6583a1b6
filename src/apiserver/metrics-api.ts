// The resource metrics API, `metrics.k8s.io/v1beta1`, served by the API server itself the way
// metrics-server serves it through aggregation, so `kubectl top` and the HorizontalPodAutoscaler work
// without installing anything:
//   GET /apis/metrics.k8s.io/v1beta1/nodes[/{name}]                       NodeMetrics(List)
//   GET /apis/metrics.k8s.io/v1beta1/pods                                  PodMetricsList (all namespaces)
//   GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods[/{name}]         PodMetrics(List)
// Lists take labelSelector (matched against the Node/Pod labels) and fieldSelector (metadata.name,
// metadata.namespace); a Node or Pod without metrics is left out of a list and is a 404 Status
// (`podmetrics.metrics.k8s.io "x" not found`) for a get. Watch and every write are 405, as upstream.
//
// The figures come from each node's agent (`GET /metrics/resource`, src/node/stats/resource-metrics.ts)
// over that node's tunnel (src/apiserver/tunnel.ts): HTTP/1.1 on a tunnel stream, as the streaming
// proxy does for logs. Only the nodes a request needs are asked, in parallel, each with a short
// timeout; a node that does not answer is skipped. Each node's answer is reused for `cacheTtlMs`
// (2 s), and concurrent requests share one fetch. As metrics-server does, metadata carries the labels
// of the Node/Pod and a creationTimestamp of the moment of the answer; `timestamp` is the time of the
// latest sample and `window` the time between the two samples the CPU rate comes from. CPU is printed
// in nanocores (`123456n`, canonical: `12m` when it is a whole number of millicores), memory in bytes
// (`1234Ki`).
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KObject, ResourceDef } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { errors, StatusError } from '../machinery/status.js';
import { parseLabelSelector, type LabelSelector } from '../machinery/labels.js';
import { parseFieldSelector, type FieldSelector } from '../machinery/fields.js';
import { Quantity, quantityFromValue } from '../machinery/quantity.js';
import type { Registry } from './registry.js';
import type { ExtraRoute } from './handler.js';
import type { UserInfo } from './auth.js';
import { sendJson } from './request.js';

export const METRICS_GROUP = 'metrics.k8s.io';
export const METRICS_VERSION = 'v1beta1';
const API_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;
export const METRICS_PREFIX = `/apis/${API_VERSION}/`;

// ----------------------------------------------------------------------- the agent's answer
// The shape of the agent's GET /metrics/resource (declared again here: src/apiserver may not import
// src/node; the agent's side is src/node/stats/resource-metrics.ts).

export interface AgentUsage { usageNanoCores: number; workingSetBytes: number; timestamp: string; windowMs: number }
export interface AgentPodUsage { namespace: string; name: string; uid: string; containers: (AgentUsage & { name: string })[] }
export interface AgentMetricsReport { nodeName: string; resolutionMs: number; node?: AgentUsage; pods: AgentPodUsage[] }

/** How the metrics API reaches an agent: a new stream to its streaming server (TunnelServer.dial). */
export interface NodeDialer { dial(node: string): Duplex }

export interface MetricsApiOptions {
  registry: Registry;
  tunnels: NodeDialer;
  /** how long one node's answer is reused (default 2000 ms) */
  cacheTtlMs?: number;
  /** how long to wait for a node's answer (default 3000 ms) */
  timeoutMs?: number;
  /** the clock (ms) */
  now?: () => number;
}

interface CacheSlot { at: number; report: Promise<AgentMetricsReport | undefined> }

// ----------------------------------------------------------------------- the route

export class MetricsApi implements ExtraRoute {
  readonly prefix = METRICS_PREFIX;
  private readonly cache = new Map<string, CacheSlot>();
  private readonly nodesDef: ResourceDef;
  private readonly podsDef: ResourceDef;
  private readonly now: () => number;

  constructor(private readonly o: MetricsApiOptions) {
    this.nodesDef = findResource('', 'v1', 'nodes')!;
    this.podsDef = findResource('', 'v1', 'pods')!;
    this.now = o.now ?? Date.now;
  }

  handle = async (req: IncomingMessage, res: ServerResponse, url: URL, _user: UserInfo): Promise<void> => {
    const segs = url.pathname.slice(METRICS_PREFIX.length).split('/').filter(Boolean).map(decodeURIComponent);
    let ns: string | undefined;
    let rest = segs;
    if (segs[0] === 'namespaces' && segs.length >= 3) { ns = segs[1]; rest = segs.slice(2); }
    const [resource, name, extra] = rest;
    const known = (resource === 'nodes' && ns === undefined) || resource === 'pods';
    if (!known || extra !== undefined || (segs[0] === 'namespaces' && segs.length < 3)) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    if ((method !== 'GET' && method !== 'HEAD') || isTrue(q.get('watch'))) {
      throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    }
    let body: unknown;
    if (resource === 'nodes') body = name ? await this.nodeMetrics(name) : await this.nodeMetricsList(q);
    else body = name ? await this.podMetrics(ns ?? 'default', name) : await this.podMetricsList(ns, q);
    sendJson(res, 200, body);
  };

  // --------------------------------------------------------------------- nodes

  private async nodeMetrics(name: string): Promise<KObject> {
    let node: KObject;
    try { node = (await this.o.registry.get(this.nodesDef, undefined, name)).obj; } catch { throw errors.notFound('nodemetrics', name, METRICS_GROUP); }
    const r = await this.report(name);
    if (!r?.node) throw errors.notFound('nodemetrics', name, METRICS_GROUP);
    return nodeMetricsOf(node, r.node, this.now());
  }

  private async nodeMetricsList(q: URLSearchParams): Promise<KObject> {
    const sel = selectors(q);
    const nodes = (await this.o.registry.list(this.nodesDef, undefined, sel)).items.map((e) => e.obj);
    const reports = await this.reports(nodes.map((n) => n.metadata?.name ?? ''));
    const now = this.now();
    const items: KObject[] = [];
    for (const n of nodes) {
      const u = reports.get(n.metadata?.name ?? '')?.node;
      if (u) items.push(nodeMetricsOf(n, u, now));
    }
    return { kind: 'NodeMetricsList', apiVersion: API_VERSION, metadata: {}, items } as KObject;
  }

  // --------------------------------------------------------------------- pods

  private async podMetrics(ns: string, name: string): Promise<KObject> {
    let pod: KObject;
    try { pod = (await this.o.registry.get(this.podsDef, ns, name)).obj; } catch { throw errors.notFound('podmetrics', name, METRICS_GROUP); }
    const node = nodeNameOf(pod);
    const r = node ? await this.report(node) : undefined;
    const u = r ? findPod(r, pod) : undefined;
    if (!u) throw errors.notFound('podmetrics', name, METRICS_GROUP);
    return podMetricsOf(pod, u, this.now());
  }

  private async podMetricsList(ns: string | undefined, q: URLSearchParams): Promise<KObject> {
    const sel = selectors(q);
    const pods = (await this.o.registry.list(this.podsDef, ns, sel)).items.map((e) => e.obj);
    const reports = await this.reports([...new Set(pods.map(nodeNameOf).filter((n): n is string => !!n))]);
    const now = this.now();
    const items: KObject[] = [];
    for (const p of pods) {
      const r = reports.get(nodeNameOf(p) ?? '');
      const u = r ? findPod(r, p) : undefined;
      if (u) items.push(podMetricsOf(p, u, now));
    }
    return { kind: 'PodMetricsList', apiVersion: API_VERSION, metadata: {}, items } as KObject;
  }

  // --------------------------------------------------------------------- agents

  /** Every named node's report, fetched in parallel; nodes that did not answer are absent. */
  private async reports(nodes: string[]): Promise<Map<string, AgentMetricsReport>> {
    const out = new Map<string, AgentMetricsReport>();
    await Promise.all(nodes.map(async (n) => { const r = await this.report(n); if (r) out.set(n, r); }));
    return out;
  }

  /** One node's report, from the cache when it is fresh; undefined when the node did not answer. */
  report(node: string): Promise<AgentMetricsReport | undefined> {
    const now = this.now();
    const slot = this.cache.get(node);
    if (slot && now - slot.at < (this.o.cacheTtlMs ?? 2000)) return slot.report;
    let stream: Duplex;
    try { stream = this.o.tunnels.dial(node); } catch { return Promise.resolve(undefined); } // not connected
    const report = fetchReport(stream, node, this.o.timeoutMs ?? 3000).catch(() => undefined);
    this.cache.set(node, { at: now, report });
    // a node that went away must not stay in the map forever
    if (this.cache.size > 64) for (const [k, v] of this.cache) if (now - v.at > 60_000) this.cache.delete(k);
    return report;
  }
}

/** GET /metrics/resource over one tunnel stream. */
function fetchReport(stream: Duplex, node: string, timeoutMs: number): Promise<AgentMetricsReport> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method: 'GET', path: '/metrics/resource', headers: { host: node, accept: 'application/json' },
      createConnection: () => stream as never,
    });
    const timer = setTimeout(() => req.destroy(new Error(`node ${node} did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); stream.destroy(); reject(e); });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
      res.on('end', () => {
        clearTimeout(timer);
        stream.destroy();
        if (res.statusCode !== 200) { reject(new Error(`node ${node} answered ${res.statusCode}`)); return; }
        try { resolve(JSON.parse(Buffer.concat(chunks).toString()) as AgentMetricsReport); } catch (e) { reject(e as Error); }
      });
    });
    req.end();
  });
}

// ----------------------------------------------------------------------- objects

function nodeMetricsOf(node: KObject, u: AgentUsage, now: number): KObject {
  return {
    kind: 'NodeMetrics', apiVersion: API_VERSION,
    metadata: { name: node.metadata?.name, ...labelsOf(node), creationTimestamp: rfc3339(now) },
    timestamp: rfc3339(Date.parse(u.timestamp)), window: goDuration(u.windowMs),
    usage: usageOf(u),
  } as KObject;
}

function podMetricsOf(pod: KObject, u: AgentPodUsage, now: number): KObject {
  const last = u.containers.reduce((a, c) => (c.timestamp > a.timestamp ? c : a), u.containers[0]!);
  return {
    kind: 'PodMetrics', apiVersion: API_VERSION,
    metadata: { name: pod.metadata?.name, namespace: pod.metadata?.namespace, ...labelsOf(pod), creationTimestamp: rfc3339(now) },
    timestamp: rfc3339(Date.parse(last.timestamp)), window: goDuration(last.windowMs),
    containers: u.containers.map((c) => ({ name: c.name, usage: usageOf(c) })),
  } as KObject;
}

function findPod(r: AgentMetricsReport, pod: KObject): AgentPodUsage | undefined {
  const uid = pod.metadata?.uid;
  const p = r.pods.find((x) => x.namespace === pod.metadata?.namespace && x.name === pod.metadata?.name && (!uid || !x.uid || x.uid === uid));
  return p && p.containers.length ? p : undefined;
}

function nodeNameOf(pod: KObject): string | undefined {
  return (pod.spec as { nodeName?: string } | undefined)?.nodeName || undefined;
}

function labelsOf(o: KObject): { labels?: Record<string, string> } {
  const l = o.metadata?.labels;
  return l && Object.keys(l).length ? { labels: { ...l } } : {};
}

/** cpu in nanocores, memory in bytes, printed as upstream's canonical quantities */
export function usageOf(u: { usageNanoCores: number; workingSetBytes: number }): { cpu: string; memory: string } {
  return {
    cpu: new Quantity(BigInt(Math.max(0, Math.round(u.usageNanoCores))), 'DecimalSI').toString(),
    memory: quantityFromValue(Math.max(0, Math.round(u.workingSetBytes)), 'BinarySI').toString(),
  };
}

function selectors(q: URLSearchParams): { labelSelector?: LabelSelector; fieldSelector?: FieldSelector } {
  const ls = q.get('labelSelector');
  const fs = q.get('fieldSelector');
  const fieldSelector = fs ? parseFieldSelector(fs) : undefined;
  for (const r of fieldSelector?.requirements ?? []) {
    if (r.field !== 'metadata.name' && r.field !== 'metadata.namespace') throw errors.badRequest(`field label not supported: ${r.field}`);
  }
  return { labelSelector: ls ? parseLabelSelector(ls) : undefined, fieldSelector };
}

function isTrue(v: string | null): boolean {
  return v !== null && ['', '1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}

/** metav1.Time: RFC 3339 in seconds */
function rfc3339(ms: number): string {
  return new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A duration as Go's time.Duration.String() prints it: `15s`, `15.002s`, `1m0s`, `500ms`, `0s`. */
export function goDuration(ms: number): string {
  let n = Math.max(0, Math.round(ms));
  if (n === 0) return '0s';
  if (n < 1000) return `${n}ms`;
  const h = Math.floor(n / 3_600_000); n -= h * 3_600_000;
  const m = Math.floor(n / 60_000); n -= m * 60_000;
  const secs = n / 1000;
  const s = secs.toFixed(3).replace(/\.?0+$/, '');
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}
