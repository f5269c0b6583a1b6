// Prometheus metrics of the API server (prom-client, default registry of this thread):
//
//   apiserver_request_total{verb,group,version,resource,subresource,scope,component,code}
//   apiserver_request_duration_seconds{verb,dry_run,group,version,resource,subresource,scope,component}
//       (histogram, upstream's buckets; only requests that are not long-running)
//   apiserver_longrunning_requests{verb,group,version,resource,subresource,scope,component}
//       (gauge: open WATCH, CONNECT (exec/attach/portforward/proxy) and pods/log requests)
//
// Names, labels and verbs follow kube-apiserver so dashboards written for it work here: the verb is
// GET/LIST/WATCH/POST/PUT/PATCH/APPLY/DELETE/DELETECOLLECTION/CONNECT, derived from the method, the
// URL and (for APPLY) the Content-Type. Label values are bounded: a resource this server does not
// serve is reported with empty group/version/resource, an unknown subresource as '', an unknown
// method as 'other', so a client probing random URLs cannot grow the series without limit.
//
// `instrumentHandler` wraps the handler (every request passes through it, so it is kept cheap: one
// path parse, one string key per request, label children cached by that key). `metricsRoute` is the
// authenticated `/metrics` route (HandlerOptions.routes); it can merge in metrics gathered from other
// threads (the components worker of `kyb server`) as `getMetricsAsJSON()` arrays.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { AggregatorRegistry, register, collectDefaultMetrics, type Registry } from 'prom-client';
import { FastCounter, FastHistogram, type CounterSeries } from './fast-metrics.js';
import { findResource } from '../api/resources.js';
import { StatusError, errors } from '../machinery/status.js';
import { parseRequestInfo } from './request.js';
import type { ExtraRoute } from './handler.js';

/** One metric family as `Registry.getMetricsAsJSON()` returns it (the type prom-client does not export). */
export type MetricJSON = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

const LR_LABELS = ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] as const;

/** kube-apiserver's request latency buckets (seconds). */
export const REQUEST_DURATION_BUCKETS = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];

/** A metric of the default registry, created once per thread even if this module were loaded twice. */
function once<M>(name: string, make: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? make();
}

const requestTotal = once('apiserver_request_total', () => new FastCounter(
  'apiserver_request_total',
  'Counter of apiserver requests broken out for each verb, group, version, resource, subresource, scope, component and HTTP response code.',
));
const requestDuration = once('apiserver_request_duration_seconds', () => new FastHistogram(
  'apiserver_request_duration_seconds',
  'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component (long-running requests excluded).',
  REQUEST_DURATION_BUCKETS,
));
const longRunning = once('apiserver_longrunning_requests', () => new FastCounter(
  'apiserver_longrunning_requests',
  'Gauge of all active long-running apiserver requests (WATCH, CONNECT, pods/log) broken out by verb, group, version, resource, subresource, scope and component.',
  'gauge',
));

/** The labels of one request, known before it is served (the code comes at the end). */
export interface RequestLabels {
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  scope: string;
  dryRun: string;
  longRunning: boolean;
}

const KNOWN_SUBRESOURCES = new Set(['status', 'scale', 'binding', 'log', 'exec', 'attach', 'portforward', 'proxy', 'eviction', 'token', 'finalize', 'ephemeralcontainers', 'approval', 'resize']);
const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'proxy']);
const WATCH_QUERY = /(?:^|&)watch=(?:true|1)(?:&|$)/;
const DRY_RUN_QUERY = /(?:^|&)dryRun=All(?:&|$)/;

/** Labels of a request as kube-apiserver would report them (pure; exported for tests). */
export function requestLabels(method: string | undefined, rawUrl: string | undefined, contentType: string | undefined): RequestLabels {
  const url = rawUrl ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const m = method === 'HEAD' ? 'GET' : (method ?? 'GET');
  const info = pathInfo(path);
  const dryRun = query && DRY_RUN_QUERY.test(query) ? 'All' : '';
  const def = info?.resource ? findResource(info.group, info.version, info.resource) : undefined;
  if (!info || !def) {
    // non-resource paths (/version, /openapi, discovery, /metrics) and resources not served here
    return { verb: VERBS.has(m) ? m : 'other', group: '', version: '', resource: '', subresource: '', scope: '', dryRun, longRunning: false };
  }
  const s0 = info.subresource ? info.subresource.split('/', 1)[0] : ''; // nodes/x/proxy/<path> → proxy
  const sub = s0 && KNOWN_SUBRESOURCES.has(s0) ? s0 : '';
  const scope = info.name ? 'resource' : info.namespace !== undefined && def.namespaced ? 'namespace' : 'cluster';
  let verb: string;
  if (CONNECT_SUBRESOURCES.has(sub)) verb = 'CONNECT';
  else switch (m) {
    case 'GET': verb = info.name ? 'GET' : (query && WATCH_QUERY.test(query) ? 'WATCH' : 'LIST'); break;
    case 'PATCH': verb = contentType?.startsWith('application/apply-patch') ? 'APPLY' : 'PATCH'; break;
    case 'DELETE': verb = info.name ? 'DELETE' : 'DELETECOLLECTION'; break;
    case 'POST': case 'PUT': verb = m; break;
    default: verb = 'other';
  }
  return {
    verb, group: def.group, version: def.version, resource: def.plural, subresource: sub, scope, dryRun,
    longRunning: verb === 'WATCH' || verb === 'CONNECT' || sub === 'log',
  };
}
const VERBS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What the labels need of a path: parseRequestInfo's answer, without its per-segment decoding and
 *  filtering for the common path (no %-escape, no empty segment); this runs on every request. */
function pathInfo(path: string): { group: string; version: string; namespace?: string; resource?: string; name?: string; subresource?: string } | undefined {
  if (path.includes('%') || path.includes('//') || path.endsWith('/') || path[0] !== '/') {
    try { return parseRequestInfo(path); } catch { return undefined; } // malformed %-escapes
  }
  const segs = path.split('/'); // ['', 'api', 'v1', ...]
  let group = '', version: string, i: number;
  if (segs[1] === 'api') { version = segs[2] ?? ''; i = 3; }
  else if (segs[1] === 'apis') { group = segs[2] ?? ''; version = segs[3] ?? ''; i = 4; }
  else return undefined;
  if (segs.length <= i) return { group, version };
  const rest = segs.slice(i);
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    return { group, version, namespace: rest[1], resource: rest[2], name: rest[3], subresource: rest.length > 4 ? rest.slice(4).join('/') : undefined };
  }
  return { group, version, resource: rest[0], name: rest[1], subresource: rest.length > 2 ? rest.slice(2).join('/') : undefined };
}

function baseKey(l: RequestLabels): string {
  return `${l.verb}\u0000${l.group}\u0000${l.version}\u0000${l.resource}\u0000${l.subresource}\u0000${l.scope}`;
}

function lrLabels(l: RequestLabels): Record<(typeof LR_LABELS)[number], string> {
  return { verb: l.verb, group: l.group, version: l.version, resource: l.resource, subresource: l.subresource, scope: l.scope, component: 'apiserver' };
}

/** Records one finished request. */
function record(l: RequestLabels, base: string, code: number, seconds: number): void {
  const c = String(code);
  requestTotal.child(`${base}\u0000${c}`, () => ({ ...lrLabels(l), code: c })).value++;
  if (!l.longRunning) requestDuration.child(`${base}\u0000${l.dryRun}`, () => ({ ...lrLabels(l), dry_run: l.dryRun })).observe(seconds);
}

function safeLabels(req: IncomingMessage): RequestLabels {
  try {
    return requestLabels(req.method, req.url, req.headers['content-type']);
  } catch {
    return { verb: 'other', group: '', version: '', resource: '', subresource: '', scope: '', dryRun: '', longRunning: false };
  }
}

/** Wraps a request handler: counts every request by labels and code, times the short ones, and keeps
 *  the gauge of open long-running requests. */
export function instrumentHandler(handle: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const start = performance.now();
    const l = safeLabels(req);
    const base = baseKey(l);
    let lr: CounterSeries | undefined;
    if (l.longRunning) { lr = longRunning.child(base, () => lrLabels(l)); lr.value++; }
    res.once('close', () => {
      if (lr) lr.value--;
      record(l, base, res.statusCode, (performance.now() - start) / 1000);
    });
    handle(req, res);
  };
}

/** Wraps an HTTP `upgrade` listener (exec/attach/port-forward over WebSocket or SPDY, node tunnels):
 *  the connection counts as an open long-running request until its socket closes. */
export function instrumentUpgrade(handle: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const l = safeLabels(req);
    l.longRunning = true;
    if (l.resource) l.verb = 'CONNECT';
    const base = baseKey(l);
    const lr = longRunning.child(base, () => lrLabels(l));
    lr.value++;
    let upgraded = false;
    // a refused upgrade gets an HTTP status line written to the socket; an accepted one, 101
    const write = socket.write;
    let code = 101;
    socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]): boolean {
      if (!upgraded) {
        upgraded = true;
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.subarray(0, 16).toString('latin1') : '');
        if (m) code = Number(m[1]);
        socket.write = write;
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Duplex['write'];
    socket.once('close', () => { lr.value--; record(l, base, code, 0); });
    handle(req, socket, head);
  };
}

/** Starts prom-client's process and Node.js metrics on the default registry (idempotent). A no-op
 *  off the main thread: the process figures are per process, and the main thread's `/metrics` adds
 *  the worker threads' metrics to its own, so a worker's copy would be counted twice. */
export function collectProcessMetrics(): void {
  if (isMainThread && !register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();
}

/**
 * Merges metric families from several registries (this thread's and other threads'): a family found
 * in one source is kept as it is; one found in several is added up, sample by sample (counters,
 * histograms, and gauges such as work-queue depth, where the sum across threads is the meaning).
 */
export function mergeMetrics(sources: MetricJSON[][]): Registry {
  const seen = new Map<string, number>();
  for (const s of sources) for (const m of s) seen.set(m.name, (seen.get(m.name) ?? 0) + 1);
  const keep = new Set(['sum', 'first', 'min', 'max', 'average']);
  const prepared = sources.map((s) => s.map((m) => ({
    ...m,
    // 'first' of a single source leaves it untouched (prom-client would drop an 'omit' family)
    aggregator: seen.get(m.name) === 1 ? 'first' as const : keep.has(m.aggregator) && m.aggregator !== 'first' ? m.aggregator : 'sum' as const,
  })));
  return AggregatorRegistry.aggregate(prepared);
}

/** The Prometheus text of this thread's registry merged with other sources. */
export async function metricsText(extra: MetricJSON[][] = []): Promise<string> {
  if (!extra.length) return register.metrics();
  const own = await register.getMetricsAsJSON();
  return mergeMetrics([own, ...extra]).metrics();
}

export interface MetricsRouteOptions {
  /** metrics of other threads (e.g. the components worker), each as getMetricsAsJSON() returns them */
  sources?: () => Promise<MetricJSON[][]>;
}

/** The authenticated `/metrics` route: Prometheus text format 0.0.4. */
export function metricsRoute(opts: MetricsRouteOptions = {}): ExtraRoute {
  return {
    prefix: '/metrics',
    async handle(req, res, url) {
      if (url.pathname !== '/metrics' && url.pathname !== '/metrics/') throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
      if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
      let extra: MetricJSON[][] = [];
      if (opts.sources) {
        try { extra = await opts.sources(); } catch (e) { process.stderr.write(`apiserver: /metrics: other threads' metrics: ${(e as Error).message}\n`); }
      }
      const text = await metricsText(extra);
      res.writeHead(200, { 'Content-Type': register.contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
  };
}
