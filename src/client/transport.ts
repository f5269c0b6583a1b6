// HTTP(S) transport for the REST client: one keep-alive agent per client, bearer token or client
// certificate, a token-bucket rate limit, and Status-body error mapping.
import http from 'node:http';
import https from 'node:https';
import { StatusError, type StatusReason, type StatusDetails } from '../machinery/status.js';
import { TokenBucket } from './rate-limiter.js';

export interface TransportOptions {
  /** https://127.0.0.1:6443 (http:// is accepted, e.g. for tests) */
  server: string;
  caPem?: string;
  token?: string;
  certPem?: string;
  keyPem?: string;
  /** skip server certificate verification (kubeconfig insecure-skip-tls-verify) */
  insecureSkipTLSVerify?: boolean;
  userAgent?: string;
  /** client-side rate limit; default 200 qps, burst 400; qps <= 0 disables it */
  qps?: number;
  burst?: number;
  /** keep-alive sockets per host; default 64 */
  maxSockets?: number;
  /** timeout for ordinary (non-watch) requests in ms; default 60 s; 0 = none */
  requestTimeoutMs?: number;
  /** reach the server through this Unix socket (plain HTTP; `server` then gives only the path
   *  prefix): what `kyb server`'s own components use, see ApiServerOptions.localSocket */
  socketPath?: string;
}

export interface TransportRequest {
  method: string;
  /** absolute path, may include a query string */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** default application/json when a body is present */
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const DEFAULT_UA = 'kybernetes-client/0.1.0 (linux) kybernetes';

export class Transport {
  readonly server: URL;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly limiter: TokenBucket;
  private readonly opts: TransportOptions;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.server = new URL(opts.server);
    const tls = this.server.protocol === 'https:' && !opts.socketPath;
    if (this.server.protocol !== 'https:' && this.server.protocol !== 'http:') throw new Error(`unsupported server URL ${opts.server}`);
    this.mod = tls ? https : http;
    const maxSockets = opts.maxSockets ?? 64;
    this.agent = tls
      ? new https.Agent({
        keepAlive: true, maxSockets,
        ca: opts.caPem, cert: opts.certPem, key: opts.keyPem,
        rejectUnauthorized: !opts.insecureSkipTLSVerify,
      })
      : new http.Agent({ keepAlive: true, maxSockets });
    this.limiter = new TokenBucket(opts.qps ?? 200, opts.burst ?? 400);
  }

  /** Closes idle keep-alive sockets; open watches end on their own (abort them). */
  close(): void { this.agent.destroy(); }

  private buildPath(path: string, query?: TransportRequest['query']): string {
    const base = this.server.pathname.replace(/\/$/, '');
    let p = base + path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, String(v));
      const s = qs.toString();
      if (s) p += (p.includes('?') ? '&' : '?') + s;
    }
    return p;
  }

  /** Starts a request and resolves with the response head; the caller consumes the body. */
  async open(req: TransportRequest, opts: { streaming?: boolean } = {}): Promise<http.IncomingMessage> {
    await this.limiter.wait(req.signal);
    if (req.signal?.aborted) throw abortError();
    const headers: http.OutgoingHttpHeaders = {
      'User-Agent': this.opts.userAgent ?? DEFAULT_UA,
      Accept: req.accept ?? 'application/json, */*',
    };
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    if (this.opts.token) headers.Authorization = `Bearer ${this.opts.token}`;
    return new Promise((resolve, reject) => {
      const r = this.mod.request({
        protocol: this.opts.socketPath ? 'http:' : this.server.protocol,
        hostname: this.server.hostname.replace(/^\[|\]$/g, ''),
        port: this.server.port || (this.server.protocol === 'https:' ? 443 : 80),
        method: req.method,
        path: this.buildPath(req.path, req.query),
        headers,
        agent: this.agent,
        signal: req.signal,
        ...(this.opts.socketPath ? { socketPath: this.opts.socketPath } : {}),
      }, resolve);
      r.on('error', reject);
      const timeout = opts.streaming ? 0 : (this.opts.requestTimeoutMs ?? 60_000);
      if (timeout > 0) r.setTimeout(timeout, () => r.destroy(new Error(`request ${req.method} ${req.path} timed out after ${timeout} ms`)));
      r.end(payload);
    });
  }

  /** A whole request: resolves with the body; throws StatusError for non-2xx. */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const res = await this.open(req);
    // data/end listeners rather than `for await`: an async iterator costs a promise per chunk, and
    // this runs for every request a controller or the scheduler makes
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
      res.once('error', reject);
      res.once('close', () => { if (!res.complete) reject(new Error(`request ${req.method} ${req.path}: the connection closed before the response was complete`)); });
    });
    const out = { status: res.statusCode ?? 0, headers: res.headers, body };
    if (out.status < 200 || out.status >= 300) throw toStatusError(out.status, out.body);
    return out;
  }

  /** A whole request decoded as JSON (undefined for an empty body). */
  async requestJSON<R = unknown>(req: TransportRequest): Promise<R> {
    const res = await this.request(req);
    if (res.body.length === 0) return undefined as R;
    return JSON.parse(res.body.toString('utf8')) as R;
  }
}

export function abortError(): Error {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

const reasonByCode: Record<number, StatusReason> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  406: 'NotAcceptable', 409: 'Conflict', 410: 'Gone', 413: 'RequestEntityTooLarge', 415: 'UnsupportedMediaType',
  422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

/** Maps a non-2xx reply to a StatusError: from its Status body when it has one, else from the code. */
export function toStatusError(code: number, body: Buffer | string): StatusError {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  try {
    const s = JSON.parse(text) as { kind?: string; code?: number; reason?: string; message?: string; details?: StatusDetails };
    if (s && s.kind === 'Status') return statusToError(s, code);
  } catch { /* not JSON */ }
  const reason = reasonByCode[code] ?? (code >= 500 ? 'InternalError' : 'BadRequest');
  return new StatusError(code, reason, text.trim() || `the server responded with HTTP ${code}`);
}

/** A Status object (from a response body or a watch ERROR event) as a StatusError. */
export function statusToError(s: { code?: number; reason?: string; message?: string; details?: StatusDetails }, fallbackCode = 500): StatusError {
  const code = s.code ?? fallbackCode;
  const reason = (s.reason || reasonByCode[code] || 'InternalError') as StatusReason;
  return new StatusError(code, reason, s.message ?? '', s.details);
}
