// The node agent's streaming server: kubelet's streaming endpoints, served to the API server over the
// agent's tunnel (src/node/streaming/tunnel-client.ts hands each tunnel stream to this http.Server with
// `server.emit('connection', stream)`; the server never listens on a port).
//   GET /containerLogs/{ns}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes
//   /exec/{ns}/{pod}/{container}?command=…&stdin&stdout&stderr&tty   upgrade → protocols.handleExecUpgrade
//   /attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty            upgrade → protocols.handleExecUpgrade (attach: true)
//   /portForward/{ns}/{pod}                                          upgrade → protocols.handlePortForwardUpgrade
//   GET /healthz
//   GET /metrics/resource   CPU and memory of the node and every running container, as JSON in our own
//                           format (src/node/stats/resource-metrics.ts); the API server's metrics.k8s.io
//                           (src/apiserver/metrics-api.ts) reads it. 404 when the backend collects none.
//   GET /metrics            the agent's Prometheus metrics: prom-client's default registry, as text
// Logs are read here (src/node/logs); the exec/attach/port-forward wire protocols (WebSocket v5
// channels, SPDY) live in their own modules and are plugged in as `protocols`. Errors are Status
// bodies with the StatusError's code, which the API server relays to the client unchanged.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errors, StatusError } from '../../machinery/status.js';
import type { StreamingBackend } from './backend.js';
import { streamLog, type LogOptions } from '../logs/log-reader.js';
import type { ExecUpgradeParams, PortForwardUpgradeParams } from './backend.js';
import type { ResourceMetricsSource } from '../stats/resource-metrics.js';
import { register as promRegister } from 'prom-client';
export type { ExecUpgradeParams, PortForwardUpgradeParams } from './backend.js';



/**
 * A protocol handler for an upgrade request. It owns `socket` from then on: it answers the upgrade
 * (101 and the protocol, or an error response) and closes the socket when done. `head` holds bytes
 * the client sent after the request head (usually empty).
 */
export type UpgradeHandler<P> = (req: IncomingMessage, socket: Duplex, head: Buffer, params: P) => void;

export interface StreamingProtocols {
  handleExecUpgrade?: UpgradeHandler<ExecUpgradeParams>;
  handlePortForwardUpgrade?: UpgradeHandler<PortForwardUpgradeParams>;
}

/** The backend may also collect resource metrics (the Agent does). */
export type StreamingServerBackend = StreamingBackend & Partial<ResourceMetricsSource>;

/** The streaming server over `backend`; never listening: feed it connections with emit('connection'). */
export function createStreamingServer(backend: StreamingServerBackend, protocols: StreamingProtocols = {}): Server {
  const server = createServer((req, res) => {
    const done = isMetricsPath(req) ? serveMetrics(backend, req, res) : serveRequest(backend, req, res);
    done.catch((e) => sendError(res, e));
  });
  server.requestTimeout = 0; // logs -f is long
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      serveUpgrade(backend, protocols, req, socket, head);
    } catch (e) {
      writeStatusToSocket(socket, toStatusError(e));
    }
  });
  // a malformed request on a tunnel stream: answer 400 like node does for a TCP socket
  server.on('clientError', (_e, socket: Duplex) => {
    if (!socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  return server;
}

interface Route {
  kind: 'containerLogs' | 'exec' | 'attach' | 'portForward' | 'healthz';
  namespace: string;
  pod: string;
  container: string | undefined;
  query: URLSearchParams;
}

function route(req: IncomingMessage): Route {
  const url = new URL(req.url ?? '/', 'http://agent');
  const segs = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
  const [kind, namespace, pod, container] = segs;
  if (kind === 'healthz' && segs.length === 1) return { kind, namespace: '', pod: '', container: undefined, query: url.searchParams };
  const known = kind === 'containerLogs' || kind === 'exec' || kind === 'attach' || kind === 'portForward';
  const maxSegs = kind === 'portForward' ? 3 : 4;
  if (!known || !namespace || !pod || segs.length > maxSegs || (kind === 'containerLogs' && !container)) {
    throw new StatusError(404, 'NotFound', `the node agent has no endpoint ${url.pathname}`);
  }
  return { kind, namespace, pod, container: container || undefined, query: url.searchParams };
}

function isMetricsPath(req: IncomingMessage): boolean {
  const path = (req.url ?? '/').split('?')[0];
  return path === '/metrics' || path === '/metrics/resource';
}

async function serveMetrics(backend: StreamingServerBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
  const path = (req.url ?? '/').split('?')[0];
  let body: string;
  let type: string;
  if (path === '/metrics/resource') {
    if (typeof backend.resourceMetrics !== 'function') throw new StatusError(404, 'NotFound', 'this node agent collects no resource metrics');
    body = JSON.stringify(backend.resourceMetrics());
    type = 'application/json';
  } else {
    body = await promRegister.metrics();
    type = promRegister.contentType;
  }
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache, private' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function serveRequest(backend: StreamingBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = route(req);
  if (r.kind === 'healthz') { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); return; }
  if (r.kind !== 'containerLogs') throw errors.badRequest('Upgrade request required');
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
  const q = r.query;
  const opts = parseLogOptions(q);
  const source = await backend.logSource(r.namespace, r.pod, r.container, boolQ(q, 'previous'));
  res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff' });
  res.flushHeaders();
  // the API server went away (its client hung up): 'close' on the response before it finished
  const ac = new AbortController();
  const abort = () => ac.abort();
  res.on('close', abort);
  try {
    await streamLog(source, opts, res, ac.signal);
  } finally {
    res.off('close', abort);
    if (!res.destroyed) res.end();
  }
}

function serveUpgrade(backend: StreamingBackend, protocols: StreamingProtocols, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const r = route(req);
  const q = r.query;
  if (r.kind === 'exec' || r.kind === 'attach') {
    const h = protocols.handleExecUpgrade;
    if (!h) throw errors.internal(`${r.kind} is not supported by this node agent`);
    const params: ExecUpgradeParams = {
      backend, namespace: r.namespace, pod: r.pod, container: r.container,
      command: r.kind === 'exec' ? q.getAll('command') : [],
      stdin: boolQ(q, 'stdin', 'input'), stdout: boolQ(q, 'stdout', 'output'), stderr: boolQ(q, 'stderr', 'error'), tty: boolQ(q, 'tty'),
      attach: r.kind === 'attach',
    };
    if (params.attach === false && params.command.length === 0) throw errors.badRequest('you must specify at least one command for the container');
    if (!params.stdin && !params.stdout && !params.stderr) throw errors.badRequest('you must specify at least 1 of stdin, stdout, stderr');
    h(req, socket, head, params);
    return;
  }
  if (r.kind === 'portForward') {
    const h = protocols.handlePortForwardUpgrade;
    if (!h) throw errors.internal('port-forward is not supported by this node agent');
    h(req, socket, head, { backend, namespace: r.namespace, pod: r.pod });
    return;
  }
  throw errors.badRequest(`upgrade is not supported for ${r.kind}`);
}

/** kubelet's query of a log request → reader options (the API server has validated it already) */
export function parseLogOptions(q: URLSearchParams, now = new Date()): LogOptions {
  const int = (name: string): number | undefined => {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw errors.badRequest(`invalid value ${JSON.stringify(v)} for parameter ${name}`);
    return n;
  };
  const tailLines = int('tailLines');
  const limitBytes = int('limitBytes');
  const sinceSeconds = int('sinceSeconds');
  if (tailLines !== undefined && tailLines < 0) throw errors.badRequest('tailLines must be greater than or equal to 0');
  if (limitBytes !== undefined && limitBytes < 1) throw errors.badRequest('limitBytes must be greater than 0');
  let since: Date | undefined;
  const sinceTime = q.get('sinceTime');
  if (sinceTime) {
    since = new Date(sinceTime);
    if (Number.isNaN(since.getTime())) throw errors.badRequest(`invalid value ${JSON.stringify(sinceTime)} for parameter sinceTime`);
  } else if (sinceSeconds !== undefined) {
    since = new Date(now.getTime() - sinceSeconds * 1000);
  }
  return { follow: boolQ(q, 'follow'), timestamps: boolQ(q, 'timestamps'), tailLines, limitBytes, since };
}

/** a boolean query parameter: `true`/`1` (and the other spellings Go's ParseBool takes) */
function boolQ(q: URLSearchParams, ...names: string[]): boolean {
  for (const n of names) {
    const v = q.get(n);
    if (v !== null) return v === '' || /^(1|t|true)$/i.test(v);
  }
  return false;
}

function toStatusError(e: unknown): StatusError {
  if (e instanceof StatusError) return e;
  return errors.internal((e as Error)?.message ?? String(e));
}

function sendError(res: ServerResponse, e: unknown): void {
  const err = toStatusError(e);
  if (!(e instanceof StatusError)) process.stderr.write(`node streaming server: ${(e as Error)?.stack ?? e}\n`);
  if (res.headersSent) { res.destroy(); return; }
  const body = JSON.stringify(err.toStatus());
  res.writeHead(err.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/**
 * Answer an upgrade request with a Status error on the raw socket and close it. Exported for the
 * protocol handlers, which own the socket once called and may need to refuse (e.g. a backend error
 * before the 101).
 */
export function writeStatusToSocket(socket: Duplex, err: StatusError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toStatus());
  socket.end(
    `HTTP/1.1 ${err.code} ${REASONS[err.code] ?? 'Error'}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
