// One run of a probe handler — exec, httpGet, tcpSocket or grpc — with the kubelet's semantics and
// its messages (read upstream's prober for behaviour; nothing copied):
//
// - httpGet: GET <scheme>://<host or pod IP>:<port><path> with `User-Agent: kube-probe/1.32`,
//   `Accept: */*` (both overridable by httpHeaders; a `Host` header sets the Host), no keep-alive,
//   HTTPS without certificate verification. 200–399 succeeds; redirects are followed (at most 10)
//   while they stay on the same host name, a redirect elsewhere ends the chain and counts as success
//   with a warning. Failure text: `HTTP probe failed with statuscode: 500`; transport errors read like
//   Go's: `Get "http://10.42.0.5:80/": dial tcp 10.42.0.5:80: connect: connection refused`.
// - tcpSocket: a TCP connect; `dial tcp 127.0.0.1:1: connect: connection refused`, `… i/o timeout`.
// - exec: through the callback the pod worker supplies; exit 0 succeeds, otherwise fails with the
//   command's output; a timeout fails with `command "sh -c …" timed out`.
// - grpc: grpc.health.v1.Health/Check over cleartext HTTP/2 (node:http2, no gRPC library); SERVING
//   succeeds, anything else fails with `service unhealthy (responded with "NOT_SERVING")`.
//
// A handler that cannot even be attempted (a named port the container does not declare, no exec
// callback) throws ProbeError; the prober throws such results away as the kubelet does.
// Timeouts run on the injected Clock, so tests drive them with a FakeClock.
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import type { Container, ExecAction, GRPCAction, HTTPGetAction, Probe, TCPSocketAction } from 'kubernetes-types/core/v1.js';
import { realClock, type Clock } from '../../client/clock.js';
import { goQuote } from '../volumes/downward-api.js';

export const PROBE_USER_AGENT = 'kube-probe/1.32';
const MAX_BODY = 10 * 1024;
const MAX_REDIRECTS = 10;

/** 'warning' counts as success (e.g. a redirect to another host was not followed). */
export interface ProbeOutcome { result: 'success' | 'warning' | 'failure'; output: string }

/** The probe could not be run at all; its result is thrown away. */
export class ProbeError extends Error {
  constructor(message: string) { super(message); this.name = 'ProbeError'; }
}

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr, combined */
  output: string;
  /** set by a callback that enforced the timeout itself */
  timedOut?: boolean;
}

/** Runs a command in the container; the callback should kill it after timeoutMs. */
export type ExecProbeFn = (command: string[], timeoutMs: number) => Promise<ExecResult>;

export interface HandlerContext {
  podIP: string;
  container: Container;
  timeoutMs: number;
  clock?: Clock;
  exec?: ExecProbeFn;
  userAgent?: string;
}

/** A port number, or the containerPort of the container port with that name. */
export function resolveProbePort(port: number | string | undefined, container: Container): number {
  let n: number;
  if (typeof port === 'number') n = port;
  else if (typeof port === 'string') {
    const p = container.ports?.find((x) => x.name === port);
    if (!p) throw new ProbeError(`port ${port} not found`);
    n = p.containerPort;
  } else throw new ProbeError('probe has no port');
  if (!Number.isInteger(n) || n <= 0 || n >= 65536) throw new ProbeError(`invalid port number: ${n}`);
  return n;
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Go's text for a failed dial / read, from a Node socket error. */
function goNetError(e: NodeJS.ErrnoException, addr: string, connected: boolean): string {
  const syscall: Record<string, string> = {
    ECONNREFUSED: 'connect: connection refused',
    EHOSTUNREACH: 'connect: no route to host',
    ENETUNREACH: 'connect: network is unreachable',
    EADDRNOTAVAIL: 'connect: cannot assign requested address',
    ETIMEDOUT: 'i/o timeout',
  };
  if (!connected) {
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `dial tcp: lookup ${addr.replace(/:\d+$/, '')}: no such host`;
    return `dial tcp ${addr}: ${syscall[e.code ?? ''] ?? e.message}`;
  }
  if (e.code === 'ECONNRESET' && /socket hang up/.test(e.message)) return 'EOF';
  if (e.code === 'ECONNRESET') return 'read: connection reset by peer';
  return e.message;
}

/** Calls onTimeout after ms on the clock; returns a cancel function. */
function deadline(clock: Clock, ms: number, onTimeout: () => void): () => void {
  const h = clock.setTimeout(onTimeout, ms);
  return () => clock.clearTimeout(h);
}

// ---------------------------------------------------------------- httpGet

interface HTTPResponse { status: number; location?: string; body: string }

function httpOnce(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<HTTPResponse> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let connected = false;
    const req = mod.request(url, {
      method: 'GET', headers, agent: false, signal,
      rejectUnauthorized: false,
      servername: net.isIP(url.hostname) ? undefined : url.hostname,
    } as https.RequestOptions);
    req.on('socket', (s) => {
      const mark = (): void => { connected = true; };
      if ((s as net.Socket).connecting) s.once('connect', mark); else mark();
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (signal.aborted) { reject(Object.assign(new Error('timeout'), { timeout: true, connected })); return; }
      reject(Object.assign(new Error(goNetError(e, url.host, connected)), { connected }));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        const loc = res.headers.location;
        resolve({ status: res.statusCode ?? 0, location: typeof loc === 'string' ? loc : undefined, body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8') });
        res.destroy();
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= MAX_BODY) finish(); // the rest is not needed (upstream truncates too)
      });
      res.on('end', finish);
      res.on('error', (e) => {
        if (done) return;
        done = true;
        if (signal.aborted) reject(Object.assign(new Error('timeout-body'), { timeout: true, body: true }));
        else reject(new ProbeError(e.message));
      });
      res.on('close', () => {
        if (done) return;
        done = true;
        if (signal.aborted) reject(Object.assign(new Error('timeout-body'), { timeout: true, body: true }));
        else reject(new ProbeError('connection closed while reading the response body'));
      });
    });
    req.end();
  });
}

/** One httpGet probe, following same-host redirects. */
export async function probeHTTP(action: HTTPGetAction, ctx: HandlerContext): Promise<ProbeOutcome> {
  const clock = ctx.clock ?? realClock;
  const scheme = (action.scheme ?? 'HTTP').toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new ProbeError(`unsupported scheme ${JSON.stringify(action.scheme)}`);
  const host = action.host || ctx.podIP;
  const port = resolveProbePort(action.port, ctx.container);
  let path = action.path ?? '';
  if (path && !path.startsWith('/')) path = '/' + path;
  let url: URL;
  try { url = new URL(`${scheme}://${hostPort(host, port)}${path}`); } catch { throw new ProbeError(`invalid probe URL for host ${JSON.stringify(host)} and path ${JSON.stringify(path)}`); }

  const headers: Record<string, string> = {};
  const lower = new Set<string>();
  for (const h of action.httpHeaders ?? []) {
    const name = h.name;
    const k = name.toLowerCase();
    // HTTP allows repeated headers; join them like a Go http.Header would send them (one line each
    // is not possible through a plain object, so comma-join, which is equivalent for HTTP)
    const existing = Object.keys(headers).find((x) => x.toLowerCase() === k);
    if (existing) headers[existing] += `, ${h.value}`; else headers[name] = h.value;
    lower.add(k);
  }
  if (!lower.has('user-agent')) headers['User-Agent'] = ctx.userAgent ?? PROBE_USER_AGENT;
  if (!lower.has('accept')) headers['Accept'] = '*/*';
  else {
    const k = Object.keys(headers).find((x) => x.toLowerCase() === 'accept')!;
    if (headers[k] === '') delete headers[k];
  }
  headers['Connection'] = 'close';

  const ac = new AbortController();
  const cancel = deadline(clock, ctx.timeoutMs, () => ac.abort());
  const firstHost = url.hostname;
  let cur = url;
  let curHeaders = headers;
  try {
    for (let redirects = 0; ; redirects++) {
      let res: HTTPResponse;
      try {
        res = await httpOnce(cur, curHeaders, ac.signal);
      } catch (e) {
        if (e instanceof ProbeError) throw e;
        const err = e as Error & { timeout?: boolean; body?: boolean };
        if (err.timeout && err.body) throw new ProbeError(`Get ${JSON.stringify(cur.href)}: context deadline exceeded (Client.Timeout or context cancellation while reading body)`);
        if (err.timeout) return { result: 'failure', output: `Get ${JSON.stringify(cur.href)}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
        return { result: 'failure', output: `Get ${JSON.stringify(cur.href)}: ${err.message}` };
      }
      const isRedirect = [301, 302, 303, 307, 308].includes(res.status) && res.location !== undefined;
      if (isRedirect) {
        let next: URL;
        try { next = new URL(res.location!, cur); } catch { return { result: 'failure', output: `Get ${JSON.stringify(cur.href)}: failed to parse Location header ${JSON.stringify(res.location)}` }; }
        if (next.hostname === firstHost && (next.protocol === 'http:' || next.protocol === 'https:')) {
          if (redirects + 1 >= MAX_REDIRECTS) return { result: 'failure', output: `Get ${JSON.stringify(next.href)}: stopped after ${MAX_REDIRECTS} redirects` };
          // a custom Host header survives only a relative redirect (as Go's client does)
          if (/^[a-z][a-z0-9+.-]*:/i.test(res.location!)) {
            curHeaders = Object.fromEntries(Object.entries(curHeaders).filter(([k]) => k.toLowerCase() !== 'host'));
          }
          cur = next;
          continue;
        }
        // another host: stop here and judge the redirect response itself
      }
      if (res.status >= 200 && res.status < 400) {
        if (res.status >= 300) return { result: 'warning', output: `Probe terminated redirects, Response body: ${res.body}` };
        return { result: 'success', output: res.body };
      }
      return { result: 'failure', output: `HTTP probe failed with statuscode: ${res.status}` };
    }
  } finally {
    cancel();
  }
}

// ---------------------------------------------------------------- tcpSocket

/** One tcpSocket probe: connect, then close. */
export function probeTCP(action: TCPSocketAction, ctx: HandlerContext): Promise<ProbeOutcome> {
  const clock = ctx.clock ?? realClock;
  const host = action.host || ctx.podIP;
  const port = resolveProbePort(action.port, ctx.container);
  const addr = hostPort(host, port);
  return new Promise((resolve) => {
    let settled = false;
    const sock = net.connect({ host, port });
    const done = (o: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      cancel();
      sock.destroy();
      resolve(o);
    };
    const cancel = deadline(clock, ctx.timeoutMs, () => done({ result: 'failure', output: `dial tcp ${addr}: i/o timeout` }));
    sock.once('connect', () => done({ result: 'success', output: '' }));
    sock.once('error', (e: NodeJS.ErrnoException) => done({ result: 'failure', output: goNetError(e, addr, false) }));
  });
}

// ---------------------------------------------------------------- exec

/** One exec probe through the worker's callback. */
export async function probeExec(action: ExecAction, ctx: HandlerContext): Promise<ProbeOutcome> {
  const clock = ctx.clock ?? realClock;
  const command = action.command ?? [];
  if (!ctx.exec) throw new ProbeError('exec probes need an exec callback');
  if (command.length === 0) throw new ProbeError('exec probe has no command');
  const timedOut: ProbeOutcome = { result: 'failure', output: `command ${goQuote(command.join(' '))} timed out` };
  let cancel: () => void = () => undefined;
  const timeout = new Promise<ProbeOutcome>((resolve) => { cancel = deadline(clock, ctx.timeoutMs, () => resolve(timedOut)); });
  const run = ctx.exec(command, ctx.timeoutMs).then((r): ProbeOutcome => {
    if (r.timedOut) return timedOut;
    const output = r.output.length > MAX_BODY ? r.output.slice(0, MAX_BODY) : r.output;
    return { result: r.exitCode === 0 ? 'success' : 'failure', output };
  }, (e: unknown) => { throw new ProbeError(e instanceof Error ? e.message : String(e)); });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    cancel();
  }
}

// ---------------------------------------------------------------- grpc

const healthStatus = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function goDuration(ms: number): string {
  if (ms % 1000 !== 0 || ms < 1000) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

/** protobuf HealthCheckRequest{service} in a gRPC length-prefixed frame */
function healthRequestFrame(service: string): Buffer {
  const svc = Buffer.from(service, 'utf8');
  const parts: Buffer[] = [];
  if (svc.length) {
    const len: number[] = [];
    let n = svc.length;
    while (n > 0x7f) { len.push((n & 0x7f) | 0x80); n >>>= 7; }
    len.push(n);
    parts.push(Buffer.from([0x0a, ...len]), svc);
  }
  const msg = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** field 1 (status, varint) of a HealthCheckResponse; 0 when absent */
function parseHealthResponse(frame: Buffer): number {
  if (frame.length < 5) return 0;
  const msg = frame.subarray(5, 5 + frame.readUInt32BE(1));
  let i = 0;
  const varint = (): number => {
    let v = 0, shift = 0;
    while (i < msg.length) {
      const b = msg[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    return v;
  };
  let status = 0;
  while (i < msg.length) {
    const tag = varint();
    const field = Math.floor(tag / 8), wt = tag & 7;
    if (wt === 0) { const v = varint(); if (field === 1) status = v; }
    else if (wt === 2) { const l = varint(); i += l; }
    else if (wt === 1) i += 8;
    else if (wt === 5) i += 4;
    else break;
  }
  return status;
}

/** One grpc probe: grpc.health.v1.Health/Check over cleartext HTTP/2. */
export function probeGRPC(action: GRPCAction, ctx: HandlerContext): Promise<ProbeOutcome> {
  const clock = ctx.clock ?? realClock;
  const port = resolveProbePort(action.port, ctx.container);
  const addr = hostPort(ctx.podIP, port);
  const tmo = goDuration(ctx.timeoutMs);
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const session = http2.connect(`http://${addr}`);
    const done = (o: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      cancel();
      session.destroy();
      resolve(o);
    };
    const cancel = deadline(clock, ctx.timeoutMs, () => done(connected
      ? { result: 'failure', output: `timeout: health rpc did not complete within ${tmo}` }
      : { result: 'failure', output: `timeout: failed to connect service ${JSON.stringify(addr)} within ${tmo}: context deadline exceeded` }));
    session.on('error', (e: NodeJS.ErrnoException) => done({ result: 'failure', output: connected
      ? `error: health rpc probe failed: ${e.message}`
      : `error: failed to connect service at ${JSON.stringify(addr)}: ${goNetError(e, addr, false)}` }));
    session.on('connect', () => { connected = true; });
    const req = session.request({
      ':method': 'POST', ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.max(1, ctx.timeoutMs)}m`,
      'user-agent': ctx.userAgent ?? PROBE_USER_AGENT,
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    const readStatus = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', (h) => {
      readStatus(h);
      const code = Number(h[':status']);
      if (code !== 200) done({ result: 'failure', output: `error: health rpc probe failed: rpc error: code = Unknown desc = unexpected HTTP status code received from server: ${code}` });
    });
    req.on('trailers', readStatus);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e: Error & { cause?: unknown }) => {
      if (!connected) {
        const cause = (e.cause ?? e) as NodeJS.ErrnoException;
        done({ result: 'failure', output: `error: failed to connect service at ${JSON.stringify(addr)}: ${goNetError(cause, addr, false)}` });
      } else done({ result: 'failure', output: `error: health rpc probe failed: ${e.message}` });
    });
    req.on('end', () => {
      if (grpcStatus === undefined || grpcStatus === '0') {
        if (grpcStatus === undefined) { done({ result: 'failure', output: 'error: health rpc probe failed: rpc error: code = Internal desc = server closed the stream without sending trailers' }); return; }
        const status = parseHealthResponse(Buffer.concat(chunks));
        if (status === 1) done({ result: 'success', output: 'service healthy' });
        else done({ result: 'failure', output: `service unhealthy (responded with ${JSON.stringify(healthStatus[status] ?? String(status))})` });
        return;
      }
      if (grpcStatus === '12') done({ result: 'failure', output: `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${grpcMessage}` });
      else if (grpcStatus === '4') done({ result: 'failure', output: `timeout: health rpc did not complete within ${tmo}` });
      else done({ result: 'failure', output: `error: health rpc probe failed: rpc error: code = ${grpcCodeName(grpcStatus)} desc = ${grpcMessage}` });
    });
    req.end(healthRequestFrame(action.service ?? ''));
  });
}

function grpcCodeName(code: string): string {
  const names = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
    'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
  return names[Number(code)] ?? `Code(${code})`;
}

// ---------------------------------------------------------------- dispatch

/** Runs the probe's one handler once. Throws ProbeError when it cannot be run. */
export function runProbeHandler(probe: Probe, ctx: HandlerContext): Promise<ProbeOutcome> {
  if (probe.exec) return probeExec(probe.exec, ctx);
  if (probe.httpGet) return probeHTTP(probe.httpGet, ctx);
  if (probe.tcpSocket) return probeTCP(probe.tcpSocket, ctx);
  if (probe.grpc) return probeGRPC(probe.grpc, ctx);
  return Promise.reject(new ProbeError('missing probe handler'));
}
