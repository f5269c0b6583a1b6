// Load generator for the API server bench: runs in its own process so that client work does not share
// the server's event loop. Reads a JSON array of jobs (argv[2], or a file path prefixed with @), runs
// them one after another and prints one JSON array of results on stdout.
//
//   node --import tsx bench/load-gen.ts '[{"mode":"closed","target":{...},"concurrency":32,"durationMs":3000,"prefix":"a"}]'
//
// Targets: `kyb` (ConfigMap POSTs over HTTPS with a bearer token) or `etcd` (puts of the stored
// ConfigMap JSON through etcd's gRPC-gateway, POST /v3/kv/put). Every request names a new object.
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { configMapBody, configMapKey, storedConfigMap, summarize, type LatencySummary } from './bench-common.js';

export type Target =
  | { kind: 'kyb'; url: string; token: string; caFile: string; namespace: string }
  | { kind: 'etcd'; url: string; namespace: string; gatewayPath: string };

export type Job =
  /** closed loop: `concurrency` workers each send the next create as soon as the previous one returns */
  | { mode: 'closed'; target: Target; concurrency: number; durationMs: number; warmupMs?: number; prefix: string }
  /** open loop: one create every 1000/ratePerSec ms regardless of completions; latency counted from the scheduled time */
  | { mode: 'open'; target: Target; ratePerSec: number; durationMs: number; prefix: string }
  /** create `count` objects named `${prefix}-${i}` with `concurrency` workers */
  | { mode: 'fill'; target: Target; count: number; concurrency: number; prefix: string }
  /** GET one object / LIST all / LIST pages of `pageSize` in target.namespace (kyb only) */
  | { mode: 'reads'; target: Target; prefix: string; count: number; getSamples: number; listAllSamples: number; pageSize: number; pageSamples: number }
  /** open `watchers` watches on target.namespace, create `creates` objects with `concurrency` workers, time each event */
  | { mode: 'watch'; target: Target; watchers: number; creates: number; concurrency: number; prefix: string };

export interface ClosedResult { mode: 'closed'; count: number; errors: number; seconds: number; perSec: number; lat: LatencySummary; firstError?: string }
export interface OpenResult {
  mode: 'open'; count: number; errors: number; achievedPerSec: number; lat: LatencySummary; maxInFlight: number; firstError?: string;
  /** requests slower than 50 ms, and when (s after start) the slowest one was scheduled */
  over50ms: number; worstAtSec: number;
}
export interface FillResult { mode: 'fill'; count: number; errors: number; seconds: number; firstError?: string }
export interface ReadsResult { mode: 'reads'; get: LatencySummary; listAll: LatencySummary; listAllItems: number; listAllBytes: number; page: LatencySummary; pageItems: number }
export interface WatchResult {
  mode: 'watch'; watchers: number; creates: number; eventsExpected: number; eventsReceived: number;
  /** create response received → event received at a watcher (clamped at 0: an event may beat the response) */
  fromAck: LatencySummary;
  /** create request sent → event received at a watcher */
  fromSend: LatencySummary;
  seconds: number; eventsPerSec: number; createsPerSec: number;
}
export type Result = ClosedResult | OpenResult | FillResult | ReadsResult | WatchResult;

interface Resp { status: number; body: Buffer }

class Client {
  private readonly agent: HttpAgent;
  private readonly url: URL;
  private readonly headers: Record<string, string>;
  private readonly ca: Buffer | undefined;
  constructor(readonly target: Target, sockets: number) {
    this.url = new URL(target.url);
    this.ca = target.kind === 'kyb' ? readFileSync(target.caFile) : undefined;
    this.agent = target.kind === 'kyb'
      ? new HttpsAgent({ keepAlive: true, maxSockets: sockets, ca: this.ca })
      : new HttpAgent({ keepAlive: true, maxSockets: sockets });
    this.headers = target.kind === 'kyb' ? { authorization: `Bearer ${target.token}`, accept: 'application/json' } : {};
  }

  request(method: string, path: string, body?: string, onResponse?: (res: IncomingMessage) => void): Promise<Resp> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.headers };
      if (body !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = Buffer.byteLength(body); }
      const opts = { method, host: this.url.hostname, port: this.url.port, path, headers, agent: this.agent };
      const req = (this.target.kind === 'kyb' ? httpsRequest : httpRequest)(opts, (res) => {
        if (onResponse) { onResponse(res); resolve({ status: res.statusCode ?? 0, body: Buffer.alloc(0) }); return; }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** create one uniquely named object; throws on a non-2xx answer */
  async create(name: string): Promise<void> {
    const t = this.target;
    let r: Resp;
    if (t.kind === 'kyb') {
      r = await this.request('POST', `/api/v1/namespaces/${t.namespace}/configmaps`, configMapBody(name, t.namespace));
    } else {
      const body = JSON.stringify({
        key: Buffer.from(configMapKey(name, t.namespace)).toString('base64'),
        value: Buffer.from(storedConfigMap(name, t.namespace)).toString('base64'),
      });
      r = await this.request('POST', t.gatewayPath, body);
    }
    if (r.status < 200 || r.status >= 300) throw new Error(`HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
  }

  close(): void { this.agent.destroy(); }
}

async function closed(job: Extract<Job, { mode: 'closed' }>): Promise<ClosedResult> {
  const c = new Client(job.target, job.concurrency);
  let seq = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lat: number[] = [];
  const run = async (until: number, record: boolean) => {
    await Promise.all(Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        try {
          await c.create(`${job.prefix}-${seq++}`);
          if (record) lat.push(performance.now() - t);
        } catch (e) { errors++; firstError ??= String(e); }
      }
    }));
  };
  await run(performance.now() + (job.warmupMs ?? 300), false);
  const start = performance.now();
  await run(start + job.durationMs, true);
  const seconds = (performance.now() - start) / 1000;
  c.close();
  return { mode: 'closed', count: lat.length, errors, seconds, perSec: lat.length / seconds, lat: summarize(lat), firstError };
}

async function open(job: Extract<Job, { mode: 'open' }>): Promise<OpenResult> {
  const c = new Client(job.target, Infinity);
  const interval = 1000 / job.ratePerSec;
  const warm = Math.round(1000 / interval); // one unrecorded second at the same rate opens the connections
  const total = warm + Math.round(job.durationMs / interval);
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  let over50ms = 0;
  let worst = 0;
  let worstAtSec = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    pending.push(c.create(`${job.prefix}-${i}`).then(
      () => {
        if (i < warm) return;
        const l = performance.now() - due;
        lat.push(l);
        if (l > 50) over50ms++;
        if (l > worst) { worst = l; worstAtSec = (due - start) / 1000 - 1; }
      },
      (e) => { if (i >= warm) errors++; firstError ??= String(e); },
    ).finally(() => { inFlight--; }));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - start) / 1000 - 1;
  c.close();
  return { mode: 'open', count: lat.length, errors, achievedPerSec: lat.length / seconds, lat: summarize(lat), maxInFlight, firstError, over50ms, worstAtSec };
}

async function fill(job: Extract<Job, { mode: 'fill' }>): Promise<FillResult> {
  const c = new Client(job.target, job.concurrency);
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.count) {
      const i = next++;
      try { await c.create(`${job.prefix}-${i}`); } catch (e) { errors++; firstError ??= String(e); }
    }
  }));
  c.close();
  return { mode: 'fill', count: job.count, errors, seconds: (performance.now() - start) / 1000, firstError };
}

async function reads(job: Extract<Job, { mode: 'reads' }>): Promise<ReadsResult> {
  const t = job.target;
  if (t.kind !== 'kyb') throw new Error('reads: kyb targets only');
  const c = new Client(t, 1);
  const base = `/api/v1/namespaces/${t.namespace}/configmaps`;
  const timed = async (path: string): Promise<{ ms: number; body: Buffer }> => {
    const s = performance.now();
    const r = await c.request('GET', path);
    const took = performance.now() - s;
    if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
    return { ms: took, body: r.body };
  };
  const get: number[] = [];
  for (let i = 0; i < job.getSamples; i++) get.push((await timed(`${base}/${job.prefix}-${Math.floor(Math.random() * job.count)}`)).ms);
  const listAll: number[] = [];
  let listAllItems = 0;
  let listAllBytes = 0;
  for (let i = 0; i < job.listAllSamples; i++) {
    const r = await timed(base);
    listAll.push(r.ms);
    listAllBytes = r.body.length;
    listAllItems = (JSON.parse(r.body.toString()) as { items: unknown[] }).items.length;
  }
  // walk the pages with continue tokens, starting over at the end, so every page of the range is timed
  const page: number[] = [];
  let cont = '';
  let pageItems = 0;
  for (let i = 0; i < job.pageSamples; i++) {
    const r = await timed(`${base}?limit=${job.pageSize}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
    page.push(r.ms);
    const l = JSON.parse(r.body.toString()) as { items: unknown[]; metadata: { continue?: string } };
    pageItems = Math.max(pageItems, l.items.length);
    cont = l.metadata.continue ?? '';
  }
  c.close();
  return { mode: 'reads', get: summarize(get), listAll: summarize(listAll), listAllItems, listAllBytes, page: summarize(page), pageItems };
}

async function watch(job: Extract<Job, { mode: 'watch' }>): Promise<WatchResult> {
  const t = job.target;
  if (t.kind !== 'kyb') throw new Error('watch: kyb targets only');
  const wc = new Client(t, Infinity);
  const base = `/api/v1/namespaces/${t.namespace}/configmaps`;
  const list = await wc.request('GET', `${base}?limit=1`);
  const rv = (JSON.parse(list.body.toString()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const sent = new Map<string, number>();
  const acked = new Map<string, number>();
  const received: { name: string; at: number }[][] = Array.from({ length: job.watchers }, () => []);
  let total = 0;
  let lastAt = 0;
  const expected = job.watchers * job.creates;
  let allIn!: () => void;
  const done = new Promise<void>((r) => { allIn = r; });
  const streams: IncomingMessage[] = [];
  await Promise.all(Array.from({ length: job.watchers }, (_, w) => wc.request('GET', `${base}?watch=true&resourceVersion=${rv}`, undefined, (res) => {
    if (res.statusCode !== 200) throw new Error(`watch: HTTP ${res.statusCode}`);
    streams.push(res);
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const at = performance.now();
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line) as { type: string; object: { metadata: { name: string } } };
        if (ev.type !== 'ADDED') continue;
        received[w].push({ name: ev.object.metadata.name, at });
        lastAt = at;
        if (++total === expected) allIn();
      }
    });
  })));
  const creator = new Client(t, job.concurrency);
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.creates) {
      const name = `${job.prefix}-${next++}`;
      sent.set(name, performance.now());
      await creator.create(name);
      acked.set(name, performance.now());
    }
  }));
  const createSeconds = (performance.now() - start) / 1000;
  await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
  const seconds = ((total ? lastAt : performance.now()) - start) / 1000;
  for (const s of streams) s.destroy();
  wc.close();
  creator.close();
  const fromAck: number[] = [];
  const fromSend: number[] = [];
  for (const evs of received) for (const e of evs) {
    fromAck.push(Math.max(0, e.at - (acked.get(e.name) ?? e.at)));
    fromSend.push(e.at - (sent.get(e.name) ?? e.at));
  }
  return {
    mode: 'watch', watchers: job.watchers, creates: job.creates, eventsExpected: expected, eventsReceived: total,
    fromAck: summarize(fromAck), fromSend: summarize(fromSend), seconds, eventsPerSec: total / seconds, createsPerSec: job.creates / createSeconds,
  };
}

export async function runJob(job: Job): Promise<Result> {
  switch (job.mode) {
    case 'closed': return closed(job);
    case 'open': return open(job);
    case 'fill': return fill(job);
    case 'reads': return reads(job);
    case 'watch': return watch(job);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('load-gen.ts')) {
  const arg = process.argv[2];
  if (!arg) { process.stderr.write('usage: load-gen.ts JOBS_JSON | @jobs.json\n'); process.exit(2); }
  const jobs = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as Job[];
  const results: Result[] = [];
  for (const job of jobs) results.push(await runJob(job));
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
