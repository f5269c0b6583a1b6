// The HTTP transport of the registry client: node:http/node:https with keep-alive, redirects and
// per-registry TLS settings.
//
// Why not the global fetch: registries.yaml may say `tls: {insecure_skip_verify, ca_file,
// cert_file, key_file}` for one registry, and Node 20's fetch cannot take per-request TLS options
// without the separate `undici` package (its `dispatcher`). node:https can, and gives streaming
// bodies with backpressure just as well. The interface below is fetch-shaped on purpose.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface TlsSettings {
  insecureSkipVerify?: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** lower-case header names */
  headers: http.IncomingHttpHeaders;
  body: Readable;
  /** the final URL after redirects */
  url: string;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  tls?: TlsSettings;
  /** socket idle timeout, connecting included (default 30 s) */
  timeoutMs?: number;
  maxRedirects?: number;
}

/** A network-level failure (no HTTP response at all). */
export class TransportError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'TransportError';
  }
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgents = new Map<string, https.Agent>();

function httpsAgent(tls: TlsSettings | undefined): https.Agent {
  const key = tls ? `${tls.insecureSkipVerify ? 1 : 0}|${tls.ca?.toString('base64') ?? ''}|${tls.cert?.toString('base64') ?? ''}` : 'default';
  let a = httpsAgents.get(key);
  if (!a) {
    a = new https.Agent({
      keepAlive: true, maxSockets: 16,
      rejectUnauthorized: !tls?.insecureSkipVerify,
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.cert ? { cert: tls.cert } : {}),
      ...(tls?.key ? { key: tls.key } : {}),
    });
    httpsAgents.set(key, a);
  }
  return a;
}

function once(url: URL, opts: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const isHttps = url.protocol === 'https:';
    const mod = isHttps ? https : http;
    const req = mod.request(url, {
      method: opts.method ?? 'GET',
      headers: { 'user-agent': 'kybernetes/0.1', ...(opts.headers ?? {}) },
      agent: isHttps ? httpsAgent(opts.tls) : httpAgent,
    }, (res) => {
      resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: res, url: url.toString() });
    });
    const timeout = opts.timeoutMs ?? 30_000;
    req.setTimeout(timeout, () => req.destroy(new TransportError(`i/o timeout after ${timeout} ms`, 'ETIMEDOUT')));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new TransportError(e.message, e.code)));
    req.end(opts.body);
  });
}

/** Sends a request; follows redirects for GET/HEAD, dropping Authorization when the origin changes. */
export async function httpRequest(u: string | URL, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  let url = new URL(u.toString());
  let headers = { ...(opts.headers ?? {}) };
  const method = opts.method ?? 'GET';
  for (let hops = 0; ; hops++) {
    const res = await once(url, { ...opts, headers });
    const loc = res.headers.location;
    if (res.status >= 300 && res.status < 400 && res.status !== 304 && loc && (method === 'GET' || method === 'HEAD')) {
      res.body.resume();
      if (hops >= (opts.maxRedirects ?? 10)) throw new TransportError(`stopped after ${hops} redirects at ${url}`);
      const next = new URL(loc, url);
      if (next.origin !== url.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      url = next;
      continue;
    }
    return res;
  }
}

/** Reads a whole body, failing past `limit` bytes. */
export async function readBody(body: Readable, limit = 8 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new TransportError(`response body larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads a small error body as text (for messages), never throwing. */
export async function readErrorText(body: Readable): Promise<string> {
  try {
    return (await readBody(body, 64 << 10)).toString('utf8');
  } catch {
    return '';
  }
}
