// A small in-memory API server for client tests (plain HTTP on 127.0.0.1, random port). It speaks
// the Kubernetes REST shapes the client uses: list/get/create/update/merge-patch/delete, the
// status, binding and eviction subresources, and watch streams with resourceVersion semantics
// (list RV → no replay; RV 0/unset → synthetic ADDED; compacted RV → ERROR 410). Tests can
// compact history, expire or end open watches, send bookmarks, write watch events in small pieces,
// and inject one-shot failures. Not a conformance reference: no admission, validation or
// strategic-merge/JSON/apply patches (415).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { KObject } from '../../api/types.js';
import { StatusError, errors } from '../../machinery/status.js';
import { labelMatcher } from '../label-selector.js';

export interface RecordedRequest { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

interface HistoryEntry { rv: number; coll: string; type: 'ADDED' | 'MODIFIED' | 'DELETED'; obj: KObject }
interface Watcher {
  coll: string; ns?: string; match: (o: KObject) => boolean; bookmarks: boolean;
  res: http.ServerResponse; chain: Promise<void>; closed: boolean; timer?: NodeJS.Timeout;
}
interface Failure { method?: string; pathIncludes?: string; status: number; body: unknown; times: number }

interface Target { group: string; version: string; plural: string; ns?: string; name?: string; sub?: string; coll: string }

function clone<T>(x: T): T { return structuredClone(x); }

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function fieldValue(obj: KObject, path: string): string {
  let cur: unknown = obj;
  for (const p of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}

function fieldMatcher(sel: string | null): (o: KObject) => boolean {
  if (!sel) return () => true;
  const reqs = sel.split(',').filter(Boolean).map((r) => {
    const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(r);
    if (!m) throw errors.badRequest(`invalid field selector ${JSON.stringify(sel)}`);
    return { path: m[1]!, neg: m[2] === '!=', value: m[3]! };
  });
  return (o) => reqs.every((r) => (fieldValue(o, r.path) === r.value) !== r.neg);
}

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  /** write each watch event in several small pieces with a pause between them */
  splitWatchWrites = false;
  /** while true, changes are stored but not sent to open watches (a lagging/broken watch) */
  dropWatchEvents = false;
  private server: http.Server;
  private rv = 1;
  private compactedRV = 0;
  private readonly data = new Map<string, Map<string, KObject>>();
  private history: HistoryEntry[] = [];
  private watchers = new Set<Watcher>();
  private failures: Failure[] = [];
  private watchListeners = new Set<() => void>();

  private constructor() {
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = 1000;
  }

  static async start(): Promise<FakeApiServer> {
    const s = new FakeApiServer();
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** current resourceVersion (the last one handed out) */
  get resourceVersion(): string { return String(this.rv); }

  async close(): Promise<void> {
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- direct access for tests (acts like another client of the server) ----

  private collKey(res: { group: string; plural: string }): string { return `${res.group}/${res.plural}`; }
  private objKey(ns: string | undefined, name: string): string { return ns ? `${ns}/${name}` : name; }
  private coll(key: string): Map<string, KObject> {
    let m = this.data.get(key);
    if (!m) this.data.set(key, (m = new Map()));
    return m;
  }

  /** Creates or replaces an object directly (emits ADDED/MODIFIED). Returns the stored copy. */
  put(res: { group: string; plural: string }, obj: KObject): KObject {
    const coll = this.collKey(res);
    const meta = obj.metadata ?? {};
    const key = this.objKey(meta.namespace, meta.name!);
    const old = this.coll(coll).get(key);
    const o = clone(obj);
    o.metadata = { ...meta, uid: old?.metadata?.uid ?? meta.uid ?? randomUUID(), creationTimestamp: old?.metadata?.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    return this.commit(coll, key, old ? 'MODIFIED' : 'ADDED', o);
  }

  /** Deletes an object directly (emits DELETED). */
  remove(res: { group: string; plural: string }, ns: string | undefined, name: string): void {
    const coll = this.collKey(res);
    const key = this.objKey(ns, name);
    const old = this.coll(coll).get(key);
    if (old) this.commit(coll, key, 'DELETED', clone(old));
  }

  getObject(res: { group: string; plural: string }, ns: string | undefined, name: string): KObject | undefined {
    const o = this.coll(this.collKey(res)).get(this.objKey(ns, name));
    return o && clone(o);
  }

  listObjects(res: { group: string; plural: string }): KObject[] {
    return [...this.coll(this.collKey(res)).values()].map(clone);
  }

  /** Forgets watch history: watches from any older resourceVersion now get 410 Gone. */
  compact(): void { this.compactedRV = this.rv; this.history = []; }

  /** Sends every open watch an ERROR event with a 410 Expired Status, then ends it. */
  expireWatches(): void {
    for (const w of [...this.watchers]) {
      this.send(w, { type: 'ERROR', object: errors.gone('too old resource version: 1 (' + this.rv + ')').toStatus() });
      this.endWatch(w);
    }
  }

  /** Ends every open watch cleanly (as a server timeout does). */
  closeWatches(): void { for (const w of [...this.watchers]) this.endWatch(w); }

  /** Sends a BOOKMARK with the current resourceVersion to watches that asked for them. */
  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (w.bookmarks) this.send(w, { type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** number of open watch streams */
  get openWatches(): number { return this.watchers.size; }

  /** Resolves when at least n watches are open (polls on watch open, no sleeping). */
  waitForWatches(n: number, timeoutMs = 5000): Promise<void> {
    if (this.watchers.size >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.watchListeners.delete(check); reject(new Error(`timed out waiting for ${n} watches (have ${this.watchers.size})`)); }, timeoutMs);
      const check = (): void => {
        if (this.watchers.size >= n) { clearTimeout(t); this.watchListeners.delete(check); resolve(); }
      };
      this.watchListeners.add(check);
    });
  }

  /** The next `times` requests matching method/path answer with status and body (an object is sent as JSON). */
  injectFailure(f: { method?: string; pathIncludes?: string; status: number; body: unknown; times?: number }): void {
    this.failures.push({ ...f, times: f.times ?? 1 });
  }

  /** Drops every injected failure not yet used up. */
  clearFailures(): void { this.failures = []; }

  // ---- internals ----

  private commit(coll: string, key: string, type: HistoryEntry['type'], obj: KObject): KObject {
    const rv = ++this.rv;
    obj.metadata = { ...obj.metadata, resourceVersion: String(rv) };
    if (type === 'DELETED') this.coll(coll).delete(key);
    else this.coll(coll).set(key, obj);
    const entry: HistoryEntry = { rv, coll, type, obj: clone(obj) };
    this.history.push(entry);
    if (this.history.length > 10_000) this.history.shift();
    if (!this.dropWatchEvents) for (const w of this.watchers) if (this.watchWants(w, entry)) this.send(w, { type, object: entry.obj });
    return clone(obj);
  }

  private watchWants(w: Watcher, e: HistoryEntry): boolean {
    return e.coll === w.coll && (!w.ns || e.obj.metadata?.namespace === w.ns) && w.match(e.obj);
  }

  private send(w: Watcher, ev: unknown): void {
    if (w.closed) return;
    const bytes = Buffer.from(JSON.stringify(ev) + '\n');
    if (!this.splitWatchWrites) { w.chain = w.chain.then(() => { if (!w.closed) w.res.write(bytes); }); return; }
    w.chain = w.chain.then(async () => {
      const step = Math.max(1, Math.ceil(bytes.length / 5));
      for (let i = 0; i < bytes.length && !w.closed; i += step) {
        w.res.write(bytes.subarray(i, i + step));
        await new Promise((r) => setTimeout(r, 2));
      }
    });
  }

  private endWatch(w: Watcher): void {
    if (w.closed) return;
    this.watchers.delete(w);
    if (w.timer) clearTimeout(w.timer);
    void w.chain.then(() => { w.closed = true; w.res.end(); });
  }

  private parse(pathname: string): Target | undefined {
    const seg = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let group = '', version: string, rest: string[];
    if (seg[0] === 'api' && seg.length >= 3) { version = seg[1]!; rest = seg.slice(2); }
    else if (seg[0] === 'apis' && seg.length >= 4) { group = seg[1]!; version = seg[2]!; rest = seg.slice(3); }
    else return undefined;
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) { ns = rest[1]; rest = rest.slice(2); }
    const [plural, name, sub] = rest;
    if (!plural) return undefined;
    return { group, version, plural, ns, name, sub, coll: `${group}/${plural}` };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bodyText = Buffer.concat(chunks).toString('utf8');
    this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: bodyText });
    const url = new URL(req.url!, 'http://x');
    const reply = (code: number, body: unknown): void => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const fi = this.failures.findIndex((f) => (!f.method || f.method === req.method) && (!f.pathIncludes || url.pathname.includes(f.pathIncludes)));
      if (fi >= 0) {
        const f = this.failures[fi]!;
        if (--f.times <= 0) this.failures.splice(fi, 1);
        res.writeHead(f.status, { 'Content-Type': typeof f.body === 'string' ? 'text/plain' : 'application/json' });
        res.end(typeof f.body === 'string' ? f.body : JSON.stringify(f.body));
        return;
      }
      const t = this.parse(url.pathname);
      if (!t) throw errors.notFound('path', url.pathname);
      const body = bodyText ? JSON.parse(bodyText) as KObject : undefined;
      const q = url.searchParams;
      const kind = t.plural;
      const store = this.coll(t.coll);
      switch (req.method) {
        case 'GET': {
          if (t.name === undefined) {
            if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(t, q, res);
            return reply(200, this.list(t, q));
          }
          const o = store.get(this.objKey(t.ns, t.name));
          if (!o) throw errors.notFound(kind, t.name, t.group);
          return reply(200, o);
        }
        case 'POST': {
          if (!body) throw errors.badRequest('request body required');
          if (t.name !== undefined) return reply(201, this.postSubresource(t, body));
          const meta = { ...(body.metadata ?? {}) };
          if (!meta.name && meta.generateName) meta.name = meta.generateName + Math.random().toString(36).slice(2, 7);
          if (!meta.name) throw errors.invalid(kind, kind, '', [{ type: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }], t.group);
          if (t.ns) meta.namespace = t.ns;
          const key = this.objKey(t.ns, meta.name);
          if (store.has(key)) throw errors.alreadyExists(kind, meta.name, t.group);
          const o: KObject = { ...body, metadata: { ...meta, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), generation: 1 } };
          delete o.metadata!.resourceVersion;
          if (q.get('dryRun')) return reply(201, { ...o, metadata: { ...o.metadata, uid: undefined } });
          return reply(201, this.commit(t.coll, key, 'ADDED', o));
        }
        case 'PUT': {
          if (!body || t.name === undefined) throw errors.methodNotAllowed('PUT needs an object name and body');
          const key = this.objKey(t.ns, t.name);
          const old = store.get(key);
          if (!old) throw errors.notFound(kind, t.name, t.group);
          const want = body.metadata?.resourceVersion;
          if (want && want !== old.metadata?.resourceVersion) {
            throw errors.conflict(kind, t.name, 'the object has been modified; please apply your changes to the latest version and try again', t.group);
          }
          let o: KObject;
          if (t.sub === 'status') o = { ...clone(old), status: body.status };
          else o = { ...body, metadata: { ...body.metadata, uid: old.metadata!.uid, creationTimestamp: old.metadata!.creationTimestamp, namespace: t.ns, name: t.name } };
          return reply(200, this.commit(t.coll, key, 'MODIFIED', o));
        }
        case 'PATCH': {
          if (t.name === undefined) throw errors.methodNotAllowed('PATCH needs an object name');
          const ct = String(req.headers['content-type'] ?? '');
          if (!ct.startsWith('application/merge-patch+json')) throw errors.unsupportedMediaType(ct);
          const key = this.objKey(t.ns, t.name);
          const old = store.get(key);
          if (!old) throw errors.notFound(kind, t.name, t.group);
          const want = body?.metadata?.resourceVersion;
          if (want && want !== old.metadata?.resourceVersion) throw errors.conflict(kind, t.name, 'the object has been modified; please apply your changes to the latest version and try again', t.group);
          const o = mergePatch(old, body) as KObject;
          o.metadata = { ...o.metadata, uid: old.metadata!.uid, name: t.name, namespace: old.metadata!.namespace };
          return reply(200, this.commit(t.coll, key, 'MODIFIED', o));
        }
        case 'DELETE': {
          if (t.name === undefined) throw errors.methodNotAllowed('deletecollection is not supported by the fake server');
          const key = this.objKey(t.ns, t.name);
          const old = store.get(key);
          if (!old) throw errors.notFound(kind, t.name, t.group);
          const pre = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions;
          if (pre?.uid && pre.uid !== old.metadata?.uid) throw errors.conflict(kind, t.name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata?.uid}`, t.group);
          if (pre?.resourceVersion && pre.resourceVersion !== old.metadata?.resourceVersion) throw errors.conflict(kind, t.name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata?.resourceVersion}`, t.group);
          return reply(200, this.commit(t.coll, key, 'DELETED', clone(old)));
        }
        default:
          throw errors.methodNotAllowed(`method ${req.method} not allowed`);
      }
    } catch (e) {
      const err = e instanceof StatusError ? e : errors.internal(String(e));
      if (!res.headersSent) reply(err.code, err.toStatus());
      else res.end();
    }
  }

  private list(t: Target, q: URLSearchParams): KObject {
    const lm = labelMatcher(q.get('labelSelector') ?? undefined);
    const fm = fieldMatcher(q.get('fieldSelector'));
    let items = [...this.coll(t.coll).values()]
      .filter((o) => (!t.ns || o.metadata?.namespace === t.ns) && lm(o.metadata?.labels) && fm(o))
      .sort((a, b) => this.objKey(a.metadata?.namespace, a.metadata!.name!).localeCompare(this.objKey(b.metadata?.namespace, b.metadata!.name!)));
    const limit = Number(q.get('limit') ?? 0);
    const metadata: Record<string, unknown> = { resourceVersion: String(this.rv) };
    let start = 0;
    const cont = q.get('continue');
    if (cont) {
      const c = JSON.parse(Buffer.from(cont, 'base64').toString()) as { rv: string; start: number };
      if (Number(c.rv) < this.compactedRV) throw new StatusError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
      start = c.start;
      metadata.resourceVersion = c.rv;
    }
    items = items.slice(start);
    if (limit > 0 && items.length > limit) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: metadata.resourceVersion, start: start + limit })).toString('base64');
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return { kind: 'List', apiVersion: t.group ? `${t.group}/${t.version}` : t.version, metadata, items: items.map(clone) } as KObject;
  }

  private postSubresource(t: Target, body: KObject): unknown {
    const key = this.objKey(t.ns, t.name!);
    const old = this.coll(t.coll).get(key);
    if (!old) throw errors.notFound(t.plural, t.name!, t.group);
    if (t.plural === 'pods' && t.sub === 'binding') {
      const spec = (old.spec ?? {}) as Record<string, unknown>;
      if (spec.nodeName) throw errors.conflict('pods', t.name!, `pod ${t.name} is already assigned to node ${JSON.stringify(spec.nodeName)}`);
      const target = (body as { target?: { name?: string } }).target;
      this.commit(t.coll, key, 'MODIFIED', { ...clone(old), spec: { ...spec, nodeName: target?.name } });
      return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
    }
    if (t.plural === 'pods' && t.sub === 'eviction') {
      this.commit(t.coll, key, 'DELETED', clone(old));
      return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
    }
    throw errors.notFound(`${t.plural}/${t.sub ?? ''}`, t.name!, t.group);
  }

  private watch(t: Target, q: URLSearchParams, res: http.ServerResponse): void {
    const lm = labelMatcher(q.get('labelSelector') ?? undefined);
    const fm = fieldMatcher(q.get('fieldSelector'));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = {
      coll: t.coll, ns: t.ns, match: (o) => lm(o.metadata?.labels) && fm(o),
      bookmarks: q.get('allowWatchBookmarks') === 'true', res, chain: Promise.resolve(), closed: false,
    };
    const rvParam = q.get('resourceVersion');
    if (!rvParam || rvParam === '0') {
      for (const o of this.coll(t.coll).values()) if ((!t.ns || o.metadata?.namespace === t.ns) && w.match(o)) this.send(w, { type: 'ADDED', object: o });
    } else {
      const from = Number(rvParam);
      if (from < this.compactedRV) {
        this.send(w, { type: 'ERROR', object: errors.gone(`too old resource version: ${from} (${this.compactedRV})`).toStatus() });
        void w.chain.then(() => { w.closed = true; res.end(); });
        return;
      }
      for (const e of this.history) if (e.rv > from && this.watchWants(w, e)) this.send(w, { type: e.type, object: e.obj });
    }
    this.watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
    res.on('close', () => { w.closed = true; this.watchers.delete(w); if (w.timer) clearTimeout(w.timer); });
    for (const l of [...this.watchListeners]) l();
  }
}
