// The API server's request handler: authentication → routing → registry, with Kubernetes'
// status codes, Status errors, Table output and watch streams.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KObject, ResourceDef } from '../api/types.js';
import { apiVersionOf } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { patchMetaFor, mapRetainsKeys } from '../api/patch-meta.js';
import { errors, field, StatusError, type FieldError } from '../machinery/status.js';
import { parseLabelSelector, formatLabelSelector } from '../machinery/labels.js';
import { parseFieldSelector } from '../machinery/fields.js';
import { applyJsonPatch } from '../machinery/json-patch.js';
import { applyMergePatch } from '../machinery/merge-patch.js';
import { applyStrategicMergePatch } from '../machinery/strategic-merge-patch.js';
import { Registry, matches, clone, view, objectFields, CREATE_ON_UPDATE, type DeleteOptions } from './registry.js';
import { Discovery } from './discovery.js';
import { OPENAPI_V2_PROTO } from './openapi-v2.js';
import { modelOf, unknownFields } from '../api/field-validation.js';
import { parseRequestInfo, readBody, mediaType, decodeObject, parseJson, sendJson, sendStatusError, parseAccept, type RequestInfo, type Accept } from './request.js';
import { toTable, tableRow, type IncludeObject } from './tables.js';
import { Authenticator, PUBLIC_PATHS, type UserInfo } from './auth.js';
import { applyPatch as serverSideApply } from './server-side-apply.js';
import { partialObjectJson, type CacheEvent, type CacheEntry } from './watch-cache.js';
import { MASTERS, authorizeRequest, type Attributes, type RbacAuthorizer } from './rbac.js';

export const VERSION_INFO = {
  major: '1', minor: '32', gitVersion: 'v1.32.0+kyb', gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean', buildDate: '2026-12-01T00:00:00Z', goVersion: 'go1.23.0', compiler: 'gc',
  platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
};

export interface HandlerOptions {
  registry: Registry;
  discovery: Discovery;
  auth: Authenticator;
  /** hooks for subresources served elsewhere (log, exec, ...) */
  subresourceHandlers?: Record<string, (req: IncomingMessage, res: ServerResponse, def: ResourceDef, info: RequestInfo, user: UserInfo) => Promise<void> | void>;
  ready?: () => boolean;
  /** authenticated paths served outside the resource registry (e.g. `/apis/metrics.k8s.io/`, `/metrics`):
   *  the first route whose prefix the path starts with handles the request */
  routes?: ExtraRoute[];
  /** RBAC; without one every authenticated user may do everything */
  authorizer?: RbacAuthorizer;
}

export interface ExtraRoute {
  prefix: string;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, user: UserInfo): Promise<void> | void;
}

/**
 * The apiVersion of a metadata-only answer (Accept `…;as=PartialObjectMetadata[List];g=meta.k8s.io`),
 * or 406 when the kind asked for does not fit the request: a list for a single object or the other
 * way round (a watch streams single objects), as upstream's negotiation answers.
 */
function partialObject(p: NonNullable<Accept['partial']>, def: ResourceDef, isList: boolean): string {
  if ((p.kind === 'PartialObjectMetadataList') !== isList) {
    throw new StatusError(406, 'NotAcceptable', isList
      ? `you requested PartialObjectMetadata, but the requested object is a list (*${apiVersionOf(def).split('/').pop()}.${def.listKind})`
      : `you requested PartialObjectMetadataList, but the requested object is not a list (*${apiVersionOf(def).split('/').pop()}.${def.kind})`);
  }
  return p.apiVersion;
}

const WATCH_MAX_BUFFER = 16 * 1024 * 1024;

/** a request target whose path WHATWG URL parsing would leave as it is: no dot segments, escapes or
 *  characters it would encode */
const PLAIN_PATH = /^\/[A-Za-z0-9\-_~/:@!$&'()*+,;=.]*$/;

/** The path and the query of a request target, as `new URL(target, base)` gives them (its pathname
 *  and search without '?'); parsed by hand for the usual plain path, since this runs on every request. */
export function splitUrl(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  if (PLAIN_PATH.test(rawPath) && !rawPath.includes('/.') && !rawPath.startsWith('//')) {
    const h = q < 0 ? -1 : target.indexOf('#', q);
    return { path: rawPath, query: q < 0 ? '' : target.slice(q + 1, h < 0 ? undefined : h) };
  }
  const url = new URL(target, 'http://x');
  return { path: url.pathname, query: url.search.slice(1) };
}
const BOOKMARK_INTERVAL_MS = 60_000;

export class ApiHandler {
  private readonly registry: Registry;
  private readonly discovery: Discovery;
  private readonly auth: Authenticator;
  private readonly watchers = new Set<() => void>();

  constructor(private readonly opts: HandlerOptions) {
    this.registry = opts.registry;
    this.discovery = opts.discovery;
    this.auth = opts.auth;
  }

  /** how many watches are open now */
  get watchCount(): number { return this.watchers.size; }

  /** close every open watch (server shutdown) */
  closeWatches(): void { for (const w of [...this.watchers]) w(); }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.dispatch(req, res).catch((e) => this.fail(res, e));
  };

  private fail(res: ServerResponse, e: unknown): void {
    if (e instanceof StatusError) { sendStatusError(res, e); return; }
    // never crash on input: anything unexpected is a 500 Status
    process.stderr.write(`apiserver: internal error: ${(e as Error)?.stack ?? e}\n`);
    sendStatusError(res, errors.internal((e as Error)?.message ?? String(e)));
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = splitUrl(req.url ?? '/');
    if (PUBLIC_PATHS.has(path) || path.startsWith('/livez/') || path.startsWith('/readyz/') || path.startsWith('/healthz/')) {
      const ok = path.startsWith('/readyz') ? (this.opts.ready?.() ?? true) : true;
      res.writeHead(ok ? 200 : 500, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      res.end(ok ? 'ok' : 'not ready');
      return;
    }
    const requester = this.auth.authenticate(req);
    if (!requester) throw errors.unauthorized();
    const user = authorizeRequest(this.opts.authorizer, requester, req, path, query, () => {
      try { return parseRequestInfo(path); } catch { throw errors.badRequest(`malformed path: ${path}`); }
    });
    if (path === '/version' || path === '/version/') { sendJson(res, 200, VERSION_INFO); return; }
    const route = this.opts.routes?.find((r) => path.startsWith(r.prefix));
    if (route) { await route.handle(req, res, new URL(req.url ?? '/', 'http://x'), user); return; }
    if (path.startsWith('/openapi/')) { this.openapi(req, res, path); return; }
    const info = parseRequestInfo(path);
    if (!info) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const accept = parseAccept(req);
    if (!info.resource) { this.serveDiscovery(res, info, accept); return; }
    const def = findResource(info.group, info.version, info.resource);
    if (!def) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (info.namespace !== undefined && !def.namespaced) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    await this.serveResource(req, res, new URLSearchParams(query), def, info, accept, user);
  }

  // ------------------------------------------------------------------ discovery & openapi

  private serveDiscovery(res: ServerResponse, info: RequestInfo, accept: Accept): void {
    const d = this.discovery;
    const aggCT = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
    if (info.prefix === 'api' && !info.version) {
      if (accept.aggregatedDiscovery) sendJson(res, 200, d.aggregatedApi, aggCT); else sendJson(res, 200, d.apiVersions);
      return;
    }
    if (info.prefix === 'apis' && !info.group) {
      if (accept.aggregatedDiscovery) sendJson(res, 200, d.aggregatedApis, aggCT); else sendJson(res, 200, d.apiGroupList);
      return;
    }
    if (info.prefix === 'apis' && !info.version) {
      const g = d.groupDocs.get(info.group);
      if (!g) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
      sendJson(res, 200, g);
      return;
    }
    const gv = info.group ? `${info.group}/${info.version}` : info.version;
    const l = d.resourceLists.get(gv);
    if (!l) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    sendJson(res, 200, l);
  }

  private openapi(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (path === '/openapi/v3' || path === '/openapi/v3/') { sendJson(res, 200, this.discovery.openapiIndex); return; }
    if (path === '/openapi/v2' || path === '/openapi/v2/') {
      res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': OPENAPI_V2_PROTO.length });
      res.end(OPENAPI_V2_PROTO);
      return;
    }
    if (path.startsWith('/openapi/v3/')) {
      const doc = this.discovery.openapiDocs.get(path.slice('/openapi/v3/'.length));
      if (doc) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': req.url?.includes('hash=') ? 'public, immutable' : 'no-cache, private', ETag: `"${doc.hash}"` });
        res.end(doc.body);
        return;
      }
    }
    throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
  }

  // ------------------------------------------------------------------ resources

  private async serveResource(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, def: ResourceDef, info: RequestInfo, accept: Accept, user: UserInfo): Promise<void> {
    const method = req.method ?? 'GET';
    const ns = def.namespaced ? info.namespace : undefined;
    const name = info.name;
    const sub = info.subresource;
    const dryRun = q.getAll('dryRun').includes('All');

    if (def.virtual) { await this.serveVirtual(req, res, def, info, user); return; }

    if (sub && sub !== 'status' && sub !== 'scale' && !(def.kind === 'Namespace' && sub === 'finalize')) {
      const h = this.opts.subresourceHandlers?.[`${def.plural}/${sub}`];
      if (h && name) { await h(req, res, def, info, user); return; }
      if (def.kind === 'Pod' && sub === 'binding' && method === 'POST' && name) { await this.bind(req, res, def, ns, name); return; }
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (sub === 'scale' && !def.subresources?.some((s) => s.name === 'scale')) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub === 'status' && !def.subresources?.some((s) => s.name === 'status')) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');

    switch (method) {
      case 'GET': {
        if (!name) {
          if (q.get('watch') === 'true' || q.get('watch') === '1') { await this.watch(req, res, def, ns, q, accept); return; }
          await this.list(res, def, ns, q, accept);
          return;
        }
        const got = await this.registry.get(def, ns, name);
        if (accept.partial && !sub) { sendJson(res, 200, partialObjectJson(got, partialObject(accept.partial, def, false))); return; }
        const e = view(def, got);
        if (sub === 'scale') { sendJson(res, 200, scaleOf(def, e.obj)); return; }
        if (accept.table) { sendJson(res, 200, toTable(def, [e.obj], new Date(), includeOf(q), { resourceVersion: e.obj.metadata?.resourceVersion })); return; }
        sendJson(res, 200, e.json);
        return;
      }
      case 'POST': {
        if (name) {
          if (def.plural === 'bindings' || (def.kind === 'Pod' && sub === 'binding')) { await this.bind(req, res, def, ns, name); return; }
          throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
        }
        const body = decodeObject(await readBody(req), mediaType(req));
        if (def.plural === 'bindings') { await this.bind(req, res, def, ns, body.metadata?.name ?? '', body); return; }
        checkFields(res, def, q, body);
        const created = await this.registry.createEntry(def, ns, body, { dryRun, handOver: true });
        sendJson(res, 201, created.json ?? created.obj);
        return;
      }
      case 'PUT': {
        if (!name) throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
        const body = decodeObject(await readBody(req), mediaType(req));
        if (sub === 'scale') { sendJson(res, 200, await this.updateScale(def, ns, name, () => body, dryRun)); return; }
        if (def.kind === 'Namespace' && sub === 'finalize') {
          const r = await this.registry.guaranteedUpdate(def, undefined, name, (cur) => {
            const next = cur; // a private copy
            next.spec = { ...(next.spec as object), finalizers: (body.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [] };
            if (!(next.spec as { finalizers: string[] }).finalizers.length) delete (next.spec as { finalizers?: string[] }).finalizers;
            delete next.metadata!.resourceVersion;
            return next;
          }, { dryRun });
          sendJson(res, 200, r.obj);
          return;
        }
        if (!sub || sub === 'status') checkFields(res, def, q, body);
        const bodyRv = body.metadata?.resourceVersion;
        const r = await this.registry.guaranteedUpdate(def, ns, name, (cur) => {
          const next = this.registry.prepareUpdate(def, cur, clone(body), sub);
          if (bodyRv) next.metadata!.resourceVersion = bodyRv; else delete next.metadata!.resourceVersion;
          return next;
        }, { dryRun, createIfMissing: CREATE_ON_UPDATE.has(def.kind) && !sub ? () => body : undefined });
        sendJson(res, r.created ? 201 : 200, r.obj);
        return;
      }
      case 'PATCH': {
        if (!name) throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
        await this.patch(req, res, def, ns, name, sub, q, dryRun);
        return;
      }
      case 'DELETE': {
        const opts = await this.deleteOptions(req, q);
        if (!name) { await this.deleteCollection(res, def, ns, q, opts, dryRun); return; }
        const r = await this.registry.delete(def, ns, name, opts, { dryRun });
        if (r.deleted && def.kind !== 'Pod') {
          sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: def.group || undefined, kind: def.plural, uid: r.obj.metadata?.uid } });
        } else sendJson(res, r.deleted ? 200 : 200, r.obj);
        return;
      }
      default:
        throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
    }
  }

  private async list(res: ServerResponse, def: ResourceDef, ns: string | undefined, q: URLSearchParams, accept: Accept): Promise<void> {
    const limit = q.get('limit') ? Number(q.get('limit')) : undefined;
    if (limit !== undefined && (!Number.isFinite(limit) || limit < 0)) throw errors.badRequest(`invalid limit: ${q.get('limit')}`);
    validateListOptions(q);
    const r = await this.registry.list(def, ns, {
      labelSelector: q.get('labelSelector') ? parseLabelSelector(q.get('labelSelector')!) : undefined,
      fieldSelector: fieldSelectorOf(def, q),
      limit,
      continue: q.get('continue') || undefined,
    });
    const meta: Record<string, unknown> = { resourceVersion: r.resourceVersion };
    if (r.continue) meta.continue = r.continue;
    if (r.remainingItemCount !== undefined) meta.remainingItemCount = r.remainingItemCount;
    if (accept.partial) {
      const apiVersion = partialObject(accept.partial, def, true);
      sendJson(res, 200, `{"kind":"PartialObjectMetadataList","apiVersion":"${apiVersion}","metadata":${JSON.stringify(meta)},"items":[${r.items.map((e) => partialObjectJson(e, apiVersion)).join(',')}]}`);
      return;
    }
    r.items = r.items.map((e) => view(def, e));
    if (accept.table) {
      sendJson(res, 200, toTable(def, r.items.map((e) => e.obj), new Date(), includeOf(q), meta));
      return;
    }
    // build the list from the cached JSON texts: no re-serialization of the items
    const head = `{"kind":${JSON.stringify(def.listKind)},"apiVersion":${JSON.stringify(apiVersionOf(def))},"metadata":${JSON.stringify(meta)},"items":[`;
    const text = head + r.items.map((e) => e.json).join(',') + ']}';
    sendJson(res, 200, text);
  }

  private async watch(req: IncomingMessage, res: ServerResponse, def: ResourceDef, ns: string | undefined, q: URLSearchParams, accept: Accept): Promise<void> {
    const sel = {
      labelSelector: q.get('labelSelector') ? parseLabelSelector(q.get('labelSelector')!) : undefined,
      fieldSelector: fieldSelectorOf(def, q),
    };
    const rvParam = q.get('resourceVersion') ?? '';
    if (rvParam && !/^\d+$/.test(rvParam)) throw errors.badRequest(`invalid resource version: ${rvParam}`);
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const sendInitial = q.get('sendInitialEvents') === 'true';
    if (q.has('sendInitialEvents') && q.get('resourceVersionMatch') !== 'NotOlderThan') {
      throw errors.invalid('WatchList', def.plural, '', [{ type: 'FieldValueForbidden', field: 'resourceVersionMatch', message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" }]);
    }
    const timeoutSeconds = q.get('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : 1800 + Math.floor(Math.random() * 1800);
    const partial = accept.partial ? partialObject(accept.partial, def, false) : undefined; // metadata only: its apiVersion
    await this.registry.cache.sync();
    const cache = this.registry.resourceCache(def);
    const table = accept.table;
    const include = includeOf(q);
    let first = true;
    const now = () => new Date();
    const encode = (type: string, e0: CacheEntry): string => {
      if (partial) return `{"type":"${type}","object":${partialObjectJson(e0, partial)}}\n`;
      const e = view(def, e0);
      if (!table) return `{"type":"${type}","object":${e.json}}\n`;
      const t = toTable(def, [e.obj], now(), include, { resourceVersion: e.obj.metadata?.resourceVersion }, first);
      first = false;
      return `{"type":"${type}","object":${JSON.stringify(t)}}\n`;
    };
    const prefix = `${this.registry.storagePrefix(def)}${def.namespaced && ns ? `${ns}/` : ''}`;
    // without selectors an event is sent without looking at its object (entries parse their JSON on first use)
    // and with metadata.name=x the key tells most events apart before their object is read
    const selective = !!(sel.labelSelector || sel.fieldSelector);
    const exactName = sel.fieldSelector?.exactValue('metadata.name');
    const nameSuffix = exactName !== undefined ? `/${exactName}` : undefined;
    const match = (e: CacheEntry | undefined) => !!e && (!selective || ((nameSuffix === undefined || e.key.endsWith(nameSuffix)) && matches(def, e.obj, undefined, sel)));

    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const out: string[] = [];
    let closed = false;

    const bookmark = (extra?: Record<string, string>) => {
      const meta: Record<string, unknown> = { resourceVersion: String(this.registry.cache.rev) };
      if (extra) meta.annotations = extra;
      const o = table
        ? { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: meta, columnDefinitions: [], rows: [] }
        : partial ? { kind: 'PartialObjectMetadata', apiVersion: partial, metadata: meta }
        : { kind: def.kind, apiVersion: apiVersionOf(def), metadata: meta };
      return `{"type":"BOOKMARK","object":${JSON.stringify(o)}}\n`;
    };

    // initial state or replay, computed synchronously together with the listener registration
    if (!rvParam || rvParam === '0' || sendInitial) {
      for (const k of cache.keys()) {
        if (!k.startsWith(prefix)) continue;
        const e = cache.objects.get(k)!;
        if (match(e)) out.push(encode('ADDED', e));
      }
      if (sendInitial && bookmarks) out.push(bookmark({ 'k8s.io/initial-events-end': 'true' }));
    } else {
      const evs = cache.eventsSince(Number(rvParam));
      if (!evs) {
        const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rvParam} (${cache.oldestRev})`, reason: 'Expired', code: 410 };
        res.end(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`);
        return;
      }
      for (const ev of evs) { const s = this.translate(ev, prefix, match, encode); if (s) out.push(s); }
    }
    // events are gathered and written as one chunk once the event loop has run every callback that
    // was ready (setImmediate: after this loop iteration's I/O), so that under load the commits of
    // many concurrent writes reach a watcher in one socket write (and one TLS record) instead of one
    // each; upstream's watch server likewise flushes only when no more events are queued. Alone, an
    // event waits for nothing but the end of the current iteration.
    let pending: string[] = [];
    const writePending = () => {
      if (pending.length === 0) return;
      const text = pending.length === 1 ? pending[0] : pending.join('');
      pending = [];
      if (!res.writableEnded && !res.destroyed) res.write(text);
    };
    const listener = (ev: CacheEvent) => {
      if (closed) return;
      const s = this.translate(ev, prefix, match, encode);
      if (!s) return;
      if (res.writableLength > WATCH_MAX_BUFFER) { cleanup(); return; } // a consumer this slow must relist
      pending.push(s);
      if (pending.length === 1) setImmediate(writePending);
    };
    cache.listeners.add(listener);
    if (out.length) res.write(out.join(''));
    const timer = setTimeout(() => cleanup(), timeoutSeconds * 1000);
    const bm = bookmarks ? setInterval(() => { if (!closed) { writePending(); res.write(bookmark()); } }, BOOKMARK_INTERVAL_MS) : undefined;
    const cleanup = () => {
      if (closed) return;
      writePending();
      closed = true;
      cache.listeners.delete(listener);
      clearTimeout(timer);
      if (bm) clearInterval(bm);
      this.watchers.delete(cleanup);
      res.end();
    };
    this.watchers.add(cleanup);
    req.on('close', cleanup);
    res.on('close', cleanup);
  }

  private translate(ev: CacheEvent, prefix: string, match: (e: CacheEntry | undefined) => boolean, encode: (t: string, e: CacheEntry) => string): string | undefined {
    if (!ev.key.startsWith(prefix)) return undefined;
    const was = match(ev.prev);
    if (ev.type === 'DELETED') return was ? encode('DELETED', ev.entry) : undefined;
    const is = match(ev.entry);
    if (is && was) return encode('MODIFIED', ev.entry);
    if (is) return encode('ADDED', ev.entry);
    if (was) return encode('DELETED', ev.entry);
    return undefined;
  }

  private async patch(req: IncomingMessage, res: ServerResponse, def: ResourceDef, ns: string | undefined, name: string, sub: string | undefined, q: URLSearchParams, dryRun: boolean): Promise<void> {
    const type = mediaType(req);
    const raw = await readBody(req);
    let patchBody: unknown;
    if (type === 'application/apply-patch+yaml') patchBody = decodeObject(raw, type);
    else if (type === 'application/json-patch+json' || type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') patchBody = parseJson(raw);
    else throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    if (type !== 'application/json-patch+json' && (patchBody === null || typeof patchBody !== 'object' || Array.isArray(patchBody))) {
      throw errors.badRequest(`the body of the patch must be a JSON object (got ${Array.isArray(patchBody) ? 'array' : typeof patchBody})`);
    }
    if (type !== 'application/json-patch+json' && (!sub || sub === 'status')) checkFields(res, def, q, patchBody, true);
    const lookup = patchMetaFor(def.kind);
    const apply = (cur: KObject, p: unknown): KObject => {
      switch (type) {
        case 'application/json-patch+json': return applyJsonPatch(cur, p) as KObject;
        case 'application/merge-patch+json': return applyMergePatch(cur, p) as KObject;
        case 'application/strategic-merge-patch+json': return applyStrategicMergePatch(cur, p, lookup, (path) => mapRetainsKeys(def.kind, path)) as KObject;
        default: return serverSideApply(cur, p as KObject, { manager: q.get('fieldManager') ?? '', force: q.get('force') === 'true', kind: def.kind, now: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), lookup });
      }
    };
    if (type === 'application/apply-patch+yaml') {
      if (!q.get('fieldManager')) throw errors.badRequest('PATCH, application/apply-patch+yaml requires a non-empty fieldManager query parameter');
    }
    if (sub === 'scale') {
      const out = await this.updateScale(def, ns, name, (scale) => apply(scale, patchBody), dryRun);
      sendJson(res, 200, out);
      return;
    }
    const r = await this.registry.guaranteedUpdate(def, ns, name, (cur) => {
      const curRv = cur.metadata!.resourceVersion;
      const patched = apply(cur, patchBody);
      if (!patched || typeof patched !== 'object' || Array.isArray(patched)) throw errors.badRequest('the patch produced something that is not an object');
      const pinned = patched.metadata?.resourceVersion !== undefined && patched.metadata.resourceVersion !== curRv ? patched.metadata.resourceVersion : undefined;
      const next = this.registry.prepareUpdate(def, cur, patched, sub);
      if (pinned) next.metadata!.resourceVersion = pinned; else delete next.metadata!.resourceVersion;
      return next;
    }, {
      dryRun,
      createIfMissing: type === 'application/apply-patch+yaml' && !sub ? () => {
        const o = apply({ apiVersion: apiVersionOf(def), kind: def.kind, metadata: { name, namespace: ns } }, patchBody);
        return o;
      } : undefined,
    });
    sendJson(res, r.created ? 201 : 200, r.obj);
  }

  private async updateScale(def: ResourceDef, ns: string | undefined, name: string, change: (scale: KObject) => KObject, dryRun: boolean): Promise<KObject> {
    let result: KObject | undefined;
    const r = await this.registry.guaranteedUpdate(def, ns, name, (cur) => {
      const scale = scaleOf(def, cur);
      const next = change(clone(scale));
      const replicas = (next.spec as { replicas?: unknown } | undefined)?.replicas;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        throw errors.invalid('Scale', 'Scale', name, [{ type: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }], 'autoscaling');
      }
      const pinned = next.metadata?.resourceVersion && next.metadata.resourceVersion !== cur.metadata!.resourceVersion ? next.metadata.resourceVersion : undefined;
      const updated = clone(cur);
      (updated.spec as Record<string, unknown>).replicas = replicas;
      const prepared = this.registry.prepareUpdate(def, cur, updated, undefined);
      if (pinned) prepared.metadata!.resourceVersion = pinned; else delete prepared.metadata!.resourceVersion;
      return prepared;
    }, { dryRun });
    result = scaleOf(def, r.obj);
    return result;
  }

  private async bind(req: IncomingMessage, res: ServerResponse, _def: ResourceDef, ns: string | undefined, name: string, bodyIn?: KObject): Promise<void> {
    const body = bodyIn ?? decodeObject(await readBody(req), mediaType(req));
    const target = (body.target as { name?: string; kind?: string } | undefined)?.name;
    const podDef = findResource('', 'v1', 'pods')!;
    if (!target) throw errors.invalid('Binding', 'Binding', name, [{ type: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
    await this.registry.guaranteedUpdate(podDef, ns, name, (cur) => {
      const spec = (cur.spec ?? {}) as { nodeName?: string };
      if (cur.metadata?.deletionTimestamp) throw errors.conflict('pods', name, 'pod is being deleted, cannot be assigned to a host');
      if (spec.nodeName) throw errors.conflict('pods', name, `pod ${name} is already assigned to node "${spec.nodeName}"`);
      const next = cur; // guaranteedUpdate hands mutate a private copy
      (next.spec as Record<string, unknown>).nodeName = target;
      const st = (next.status ??= {}) as { conditions?: { type: string; status: string; lastTransitionTime?: string; lastProbeTime?: null }[] };
      const conds = (st.conditions ??= []);
      const c = conds.find((x) => x.type === 'PodScheduled');
      const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      if (c) { c.status = 'True'; c.lastTransitionTime = t; delete (c as Record<string, unknown>).reason; delete (c as Record<string, unknown>).message; }
      else conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: t });
      delete next.metadata!.resourceVersion;
      return next;
    });
    sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  }

  private async deleteOptions(req: IncomingMessage, q: URLSearchParams): Promise<DeleteOptions> {
    const raw = await readBody(req);
    let o: DeleteOptions = {};
    if (raw.length) {
      const type = mediaType(req);
      const v = decodeObject(raw, type === 'application/vnd.kubernetes.protobuf' ? type : 'application/json') as unknown as DeleteOptions;
      o = v;
    }
    if (q.get('gracePeriodSeconds')) o.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
    if (q.get('propagationPolicy')) o.propagationPolicy = q.get('propagationPolicy') as DeleteOptions['propagationPolicy'];
    if (q.get('orphanDependents')) o.orphanDependents = q.get('orphanDependents') === 'true';
    if (o.propagationPolicy && !['Orphan', 'Background', 'Foreground'].includes(o.propagationPolicy)) {
      throw errors.invalid('DeleteOptions', 'deleteoptions', '', [{ type: 'FieldValueNotSupported', field: 'propagationPolicy', message: `Unsupported value: "${o.propagationPolicy}": supported values: "Foreground", "Background", "Orphan", "nil"` }]);
    }
    if (o.gracePeriodSeconds !== undefined && (!Number.isFinite(o.gracePeriodSeconds) || o.gracePeriodSeconds < 0)) {
      throw errors.invalid('DeleteOptions', 'deleteoptions', '', [{ type: 'FieldValueInvalid', field: 'gracePeriodSeconds', message: `Invalid value: ${o.gracePeriodSeconds}: must be greater than or equal to 0` }]);
    }
    return o;
  }

  private async deleteCollection(res: ServerResponse, def: ResourceDef, ns: string | undefined, q: URLSearchParams, opts: DeleteOptions, dryRun: boolean): Promise<void> {
    if (!def.verbs.includes('deletecollection')) throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    const r = await this.registry.list(def, ns, {
      labelSelector: q.get('labelSelector') ? parseLabelSelector(q.get('labelSelector')!) : undefined,
      fieldSelector: fieldSelectorOf(def, q),
    });
    const items: KObject[] = [];
    for (const e of r.items) {
      try {
        const d = await this.registry.delete(def, e.obj.metadata?.namespace, e.obj.metadata!.name!, opts, { dryRun });
        items.push(d.obj);
      } catch (err) {
        if (!(err instanceof StatusError && err.reason === 'NotFound')) throw err;
      }
    }
    sendJson(res, 200, { kind: def.listKind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.registry.cache.rev) }, items });
  }

  // ------------------------------------------------------------------ virtual resources

  private async serveVirtual(req: IncomingMessage, res: ServerResponse, def: ResourceDef, info: RequestInfo, user: UserInfo): Promise<void> {
    if (req.method === 'GET' && def.plural === 'componentstatuses') {
      const items = ['scheduler', 'controller-manager', 'etcd-0'].map((n) => ({ kind: 'ComponentStatus', apiVersion: 'v1', metadata: { name: n }, conditions: [{ type: 'Healthy', status: 'True', message: 'ok' }] }));
      if (info.name) { const it = items.find((i) => i.metadata.name === info.name); if (!it) throw errors.notFound('componentstatuses', info.name); sendJson(res, 200, it); return; }
      sendJson(res, 200, { kind: 'ComponentStatusList', apiVersion: 'v1', metadata: {}, items });
      return;
    }
    if (req.method !== 'POST' || info.name) throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    const body = decodeObject(await readBody(req), mediaType(req));
    const out: KObject = { ...body, apiVersion: apiVersionOf(def), kind: def.kind, metadata: { ...(body.metadata ?? {}), creationTimestamp: null } };
    switch (def.plural) {
      case 'selfsubjectaccessreviews':
      case 'subjectaccessreviews':
      case 'localsubjectaccessreviews': {
        const spec = (body.spec ?? {}) as { resourceAttributes?: Record<string, string>; nonResourceAttributes?: Record<string, string>; user?: string; groups?: string[]; uid?: string };
        const subject: UserInfo = def.plural === 'selfsubjectaccessreviews' ? user : { username: spec.user ?? '', groups: spec.groups ?? [], uid: spec.uid };
        const ra = spec.resourceAttributes, na = spec.nonResourceAttributes;
        if (!ra && !na) throw errors.invalid(def.kind, def.kind, '', [{ type: 'FieldValueRequired', field: 'spec.resourceAttributes', message: 'Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified' }], def.group);
        if (def.plural !== 'selfsubjectaccessreviews' && !spec.user && !spec.groups?.length) throw errors.invalid(def.kind, def.kind, '', [{ type: 'FieldValueInvalid', field: 'spec.user', message: `Invalid value: "": at least one of user or group must be specified` }], def.group);
        const namespace = def.plural === 'localsubjectaccessreviews' ? info.namespace : ra?.namespace || undefined;
        if (def.plural === 'localsubjectaccessreviews' && ra?.namespace && ra.namespace !== info.namespace) {
          throw errors.invalid(def.kind, def.kind, '', [{ type: 'FieldValueInvalid', field: 'spec.resourceAttributes.namespace', message: `Invalid value: "${ra.namespace}": must match metadata.namespace` }], def.group);
        }
        const a: Attributes = ra
          ? { resourceRequest: true, verb: ra.verb ?? '', apiGroup: ra.group ?? '', resource: ra.resource ?? '', subresource: ra.subresource || undefined, name: ra.name || undefined, namespace }
          : { resourceRequest: false, verb: na!.verb ?? '', path: na!.path ?? '' };
        const d = this.opts.authorizer?.authorize(subject, a) ?? { allowed: true };
        out.status = subject.groups.includes(MASTERS) ? { allowed: true, reason: 'system:masters has full access' } : d.allowed ? { allowed: true, ...(d.reason ? { reason: d.reason } : {}) } : { allowed: false };
        break;
      }
      case 'selfsubjectrulesreviews': {
        const ns = (body.spec as { namespace?: string } | undefined)?.namespace || undefined;
        const rules = this.opts.authorizer?.rulesFor(user, ns) ?? [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];
        out.status = {
          resourceRules: rules.filter((r) => !r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) })),
          nonResourceRules: rules.filter((r) => r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs })),
          incomplete: false,
        };
        break;
      }
      case 'selfsubjectreviews':
        out.status = { userInfo: { username: user.username, groups: user.groups, ...(user.uid ? { uid: user.uid } : {}) } };
        break;
      case 'tokenreviews': {
        const tok = (body.spec as { token?: string } | undefined)?.token ?? '';
        const fake = { headers: { authorization: `Bearer ${tok}` }, socket: {} } as unknown as IncomingMessage;
        const u = this.auth.authenticate(fake);
        out.status = u ? { authenticated: true, user: { username: u.username, groups: u.groups } } : { authenticated: false };
        break;
      }
      default:
        throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    sendJson(res, 201, out);
  }
}

/** The request's field selector; a field the kind does not support is 400, as upstream. */
function fieldSelectorOf(def: ResourceDef, q: URLSearchParams): ReturnType<typeof parseFieldSelector> | undefined {
  const raw = q.get('fieldSelector');
  if (!raw) return undefined;
  const sel = parseFieldSelector(raw);
  const known = objectFields(def, { metadata: {} } as KObject);
  for (const r of sel.requirements) {
    if (r.field !== 'metadata.namespace' && !(r.field in known)) throw errors.badRequest(`field label not supported: ${r.field}`);
  }
  return sel;
}

function includeOf(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

/** The autoscaling/v1 Scale view of a scalable object. */
export function scaleOf(def: ResourceDef, obj: KObject): KObject {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: unknown };
  const status = (obj.status ?? {}) as { replicas?: number; selector?: string };
  let selector = '';
  if (def.kind === 'ReplicationController') {
    selector = Object.entries((spec.selector ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
  } else if (spec.selector) {
    const s = formatLabelSelector(spec.selector as never);
    selector = s === '<none>' ? '' : s;
  }
  const m = obj.metadata ?? {};
  return {
    kind: 'Scale', apiVersion: 'autoscaling/v1',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, ...(selector ? { selector } : {}) },
  };
}

export { tableRow };

/**
 * fieldValidation (kubectl sends Strict by default): Strict rejects a body with fields its kind's
 * schema lacks, with upstream's message; Warn (also when the parameter is absent, as upstream)
 * answers with a `Warning: 299` header per field; Ignore accepts silently. The walk costs about
 * 12 µs for a pod.
 */
function checkFields(res: ServerResponse, def: ResourceDef, q: URLSearchParams, body: unknown, patch = false): void {
  const mode = q.get('fieldValidation') || 'Warn';
  if (mode === 'Ignore') return;
  if (mode !== 'Strict' && mode !== 'Warn') throw errors.badRequest(`fieldValidation must be one of Ignore, Warn or Strict, not ${JSON.stringify(mode)}`);
  const model = modelOf(def.group, def.version, def.kind);
  if (!model) return;
  const unknown = unknownFields(body, model, { patch });
  if (!unknown.length) return;
  if (mode === 'Strict') {
    throw errors.badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
  }
  // (a header carries printable ASCII only: field names from the body are escaped)
  const ascii = (t: string) => t.replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  res.setHeader('Warning', unknown.slice(0, 100).map((f) => `299 - ${JSON.stringify(ascii(`unknown field ${JSON.stringify(f)}`))}`));
}

/**
 * Upstream's ValidateListOptions for a list (422, kind ListOptions, group meta.k8s.io), then the
 * storage layer's rule that a continue token carries its own resourceVersion (400).
 */
function validateListOptions(q: URLSearchParams): void {
  const rv = q.get('resourceVersion') ?? '';
  const match = q.get('resourceVersionMatch') ?? '';
  const cont = q.get('continue') ?? '';
  const errs: FieldError[] = [];
  if (match) {
    if (!rv) errs.push(field.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided'));
    if (cont) errs.push(field.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
    if (match !== 'Exact' && match !== 'NotOlderThan') errs.push(field.notSupported('resourceVersionMatch', match, ['Exact', 'NotOlderThan', '']));
    if (match === 'Exact' && rv === '0') errs.push(field.forbidden('resourceVersionMatch', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'));
  }
  if (q.get('sendInitialEvents') === 'true') errs.push(field.forbidden('sendInitialEvents', 'sendInitialEvents is forbidden for list'));
  if (errs.length) throw errors.invalid('ListOptions', 'ListOptions', '', errs, 'meta.k8s.io');
  if (cont && rv && rv !== '0') throw errors.badRequest('specifying resource version is not allowed when using continue');
}
