// The generic registry: create, get, list, update, patch and delete for every resource in the
// table, with Kubernetes semantics (uid, generateName, resourceVersion from the store revision,
// optimistic concurrency, generation, status split, finalizers and graceful deletion).
// Per-kind behaviour comes from the resource's Strategy; there is no per-kind handler.

import { randomUUID, randomBytes } from 'node:crypto';
import type { Store, KV } from '../storage/store.js';
import { KeyExistsError, KeyNotFoundError, RevisionMismatchError } from '../storage/store.js';
import type { KObject, ResourceDef } from '../api/types.js';
import { apiVersionOf } from '../api/types.js';
import { errors, StatusError } from '../machinery/status.js';
import type { FieldError } from '../machinery/status.js';
import { admitPodCreate } from './admission.js';
import { convert, storageVersionOf, needsConversion } from './conversion.js';
import { WatchCache, toEntry, type CacheEntry, type ResourceCache } from './watch-cache.js';
import { readSnapshotPage, countAfterFromCache, LATEST_REVISION } from './list-snapshot.js';
import type { LabelSelector } from '../machinery/labels.js';
import type { FieldSelector } from '../machinery/fields.js';

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: string[];
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  /** create: the caller hands the object over (e.g. a freshly decoded request body), so the registry
   *  may change it in place instead of working on a copy */
  handOver?: boolean;
}

/** The object as read for an update: from the watch cache (possibly stale) or from the store (current). */
interface ReadState {
  cur: KObject; // served version, metadata.resourceVersion set; private to this update
  rev: number;
  current: boolean;
  /** JSON text of cur, when at hand (a second private copy is parsed from it) */
  text?: string;
}

export interface ListOptions {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldSelector;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  items: CacheEntry[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** Kinds whose metadata.generation tracks spec changes (upstream sets it for these). */
const GENERATION_KINDS = new Set([
  'Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'HorizontalPodAutoscaler',
  'ReplicationController', 'PodDisruptionBudget', 'Ingress', 'NetworkPolicy', 'ControllerRevision',
]);

/** Kinds that may be created by PUT (upstream AllowCreateOnUpdate). */
const CREATE_ON_UPDATE = new Set(['Endpoints', 'Lease', 'EndpointSlice', 'Event']);

const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

function resourceName(def: ResourceDef): string {
  return def.group ? `${def.plural}.${def.group}` : def.plural;
}

export function objectFields(def: ResourceDef, obj: KObject): Record<string, string> {
  const f: Record<string, string> = { 'metadata.name': obj.metadata?.name ?? '' };
  if (def.namespaced) f['metadata.namespace'] = obj.metadata?.namespace ?? '';
  if (def.strategy.fields) Object.assign(f, def.strategy.fields(obj));
  return f;
}

export function matches(def: ResourceDef, obj: KObject, ns: string | undefined, opts: { labelSelector?: LabelSelector; fieldSelector?: FieldSelector }): boolean {
  if (ns && obj.metadata?.namespace !== ns) return false;
  if (opts.labelSelector && !opts.labelSelector.matches(obj.metadata?.labels ?? {})) return false;
  if (opts.fieldSelector && !opts.fieldSelector.matches(objectFields(def, obj))) return false;
  return true;
}

/** The entry as the resource's version serves it (converted when storage holds another version). */
export function view(def: ResourceDef, e: CacheEntry): CacheEntry {
  if (!needsConversion(def) || e.obj.apiVersion === apiVersionOf(def)) return e;
  const obj = convert(e.obj, apiVersionOf(def));
  return { ...e, obj, json: JSON.stringify(obj) };
}

/**
 * Write hooks: what one kind does around its writes, as upstream's BeginCreate/BeginUpdate (e.g.
 * Service ClusterIP and NodePort allocation, service-alloc.ts). begin* run after defaulting and
 * before validation and may change the object; the finish they return is called exactly once, with
 * the revision the object was written at, or with undefined when nothing was written (an error, a
 * dry run, no change).
 */
export interface WriteHook {
  beginCreate(obj: KObject): Promise<WriteFinish>;
  beginUpdate(next: KObject, cur: KObject): WriteFinish;
}
export type WriteFinish = (writtenRev?: number) => void;

export class Registry {
  /** write hooks by kind (see WriteHook) */
  readonly writeHooks = new Map<string, WriteHook>();
  /** finish of the write hook that prepareUpdate ran, taken by guaranteedUpdate for the object mutate returns */
  private readonly pendingFinish = new WeakMap<KObject, WriteFinish>();

  constructor(readonly store: Store, readonly cache: WatchCache, readonly now: () => Date = () => new Date()) {}

  storagePrefix(def: ResourceDef): string {
    return `/registry/${def.storageKey ?? `${def.group || 'core'}/${def.plural}`}/`;
  }
  key(def: ResourceDef, ns: string | undefined, name: string): string {
    return def.namespaced ? `${this.storagePrefix(def)}${ns}/${name}` : `${this.storagePrefix(def)}${name}`;
  }
  resourceCache(def: ResourceDef): ResourceCache {
    return this.cache.resource(this.storagePrefix(def));
  }

  // ---------------------------------------------------------------- reads (from the watch cache)

  async get(def: ResourceDef, ns: string | undefined, name: string): Promise<CacheEntry> {
    await this.cache.sync();
    const e = this.resourceCache(def).objects.get(this.key(def, ns, name));
    if (!e) throw errors.notFound(def.plural, name, def.group);
    return e;
  }

  /** Returns the entry or undefined, without waiting for the cache. */
  peek(def: ResourceDef, ns: string | undefined, name: string): CacheEntry | undefined {
    return this.resourceCache(def).objects.get(this.key(def, ns, name));
  }

  async list(def: ResourceDef, ns: string | undefined, opts: ListOptions): Promise<ListResult> {
    await this.cache.sync();
    const c = this.resourceCache(def);
    const rv = this.cache.rev;
    let keys = c.keys();
    const prefix = def.namespaced && ns ? `${this.storagePrefix(def)}${ns}/` : this.storagePrefix(def);
    let start = lowerBound(keys, prefix);
    let listRv = String(rv);
    if (opts.continue) {
      const tok = decodeContinue(opts.continue);
      // as upstream: a token revision of 0 is invalid, one below 0 means "go on at the latest revision"
      if (!Number.isSafeInteger(tok.rv) || tok.rv === 0) throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      if (tok.rv > 0 && tok.rv !== rv) {
        // a later page of a list begun at another revision: every page comes from the first page's
        // snapshot, read from the store at that revision (list-snapshot.ts); compacted: 410 Expired
        const page = await readSnapshotPage(this.store, {
          prefix, revision: tok.rv, startAfter: tok.start,
          limit: opts.limit && opts.limit > 0 ? opts.limit : Infinity,
          exactName: opts.fieldSelector?.exactValue('metadata.name'),
          match: (obj) => matches(def, obj, undefined, opts),
          countRemaining: !opts.labelSelector && !opts.fieldSelector,
          expiredToken: () => encodeContinue({ rv: LATEST_REVISION, start: tok.start }),
          countAfter: (key) => countAfterFromCache(c, prefix, key, tok.rv),
        });
        const snap: ListResult = { items: page.items, resourceVersion: String(tok.rv) };
        if (page.remaining > 0) {
          snap.continue = encodeContinue({ rv: tok.rv, start: page.lastKey });
          if (!opts.labelSelector && !opts.fieldSelector) snap.remainingItemCount = page.remaining;
        }
        return snap;
      }
      start = upperBound(keys, tok.start);
      listRv = String(tok.rv > 0 ? tok.rv : rv);
    }
    // fast path: metadata.name=x
    const exactName = opts.fieldSelector?.exactValue('metadata.name');
    // without selectors no entry's object is looked at (entries parse their JSON on first use)
    const selective = !!(opts.labelSelector || opts.fieldSelector);
    const items: CacheEntry[] = [];
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    let i = start;
    let lastKey = '';
    for (; i < keys.length; i++) {
      const k = keys[i];
      if (!k.startsWith(prefix)) break;
      if (items.length >= limit) break;
      if (exactName !== undefined && !k.endsWith(`/${exactName}`)) continue;
      const e = c.objects.get(k)!;
      if (selective && !matches(def, e.obj, undefined, opts)) continue;
      items.push(e);
      lastKey = k;
    }
    const result: ListResult = { items, resourceVersion: listRv };
    if (items.length >= limit && i < keys.length && keys[i].startsWith(prefix)) {
      // is there another match after? count remaining matches (upstream gives remainingItemCount without selectors)
      let remaining = 0;
      for (let j = i; j < keys.length && keys[j].startsWith(prefix); j++) {
        if (!selective || matches(def, c.objects.get(keys[j])!.obj, undefined, opts)) remaining++;
      }
      if (remaining > 0) {
        result.continue = encodeContinue({ rv: Number(listRv), start: lastKey });
        if (!opts.labelSelector && !opts.fieldSelector) result.remainingItemCount = remaining;
      }
    }
    keys = [];
    return result;
  }

  // ---------------------------------------------------------------- writes (to the store)

  /** Namespace admission: it must exist and not be terminating. */
  private checkNamespace(def: ResourceDef, ns: string | undefined): void {
    if (!def.namespaced) return;
    if (!ns) throw errors.badRequest('the namespace of the object is required');
    const nsDef = NAMESPACE_DEF.def;
    if (!nsDef) return;
    const e = this.resourceCache(nsDef).objects.get(this.key(nsDef, undefined, ns));
    if (!e) throw errors.notFound('namespaces', ns);
    if (e.obj.metadata?.deletionTimestamp || (e.obj.status as { phase?: string } | undefined)?.phase === 'Terminating') {
      throw new StatusError(403, 'Forbidden', `${resourceName(def)} "${'%NAME%'}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`, { kind: def.plural, causes: [{ reason: 'NamespaceTerminating', message: `namespace ${ns} is being terminated`, field: 'metadata.namespace' }] });
    }
  }

  private validate(def: ResourceDef, obj: KObject, old?: KObject): void {
    const errs: FieldError[] = def.strategy.validate ? def.strategy.validate(obj, old) : [];
    if (errs.length) throw errors.invalid(def.kind, def.kind, obj.metadata?.name ?? '', errs, def.group);
  }

  private checkTypeMeta(def: ResourceDef, obj: KObject): void {
    const want = apiVersionOf(def);
    if (obj.apiVersion !== undefined && obj.apiVersion !== '' && obj.apiVersion !== want) {
      throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`);
    }
    if (obj.kind !== undefined && obj.kind !== '' && obj.kind !== def.kind) {
      throw errors.badRequest(`the kind in the data (${String(obj.kind)}) does not match the expected kind (${def.kind})`);
    }
    if (obj.metadata !== undefined && (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) {
      throw errors.badRequest('metadata must be an object');
    }
    obj.apiVersion = want;
    obj.kind = def.kind;
  }

  async create(def: ResourceDef, ns: string | undefined, input: KObject, opts: WriteOptions = {}): Promise<KObject> {
    return (await this.createEntry(def, ns, input, opts)).obj;
  }

  /** create, also giving the created object's JSON text when it is the stored text (with the
   *  resourceVersion spliced in, as the watch cache has it), so that the response needs no
   *  serialization of its own; json is undefined for a dry run or a kind stored in another version */
  async createEntry(def: ResourceDef, ns: string | undefined, input: KObject, opts: WriteOptions = {}): Promise<{ obj: KObject; json?: string }> {
    const obj = opts.handOver ? input : clone(input);
    this.checkTypeMeta(def, obj);
    const meta = (obj.metadata ??= {});
    if (def.namespaced) {
      if (meta.namespace && ns && meta.namespace !== ns) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = ns ?? meta.namespace;
    } else delete meta.namespace;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix();
    if (!meta.name) {
      throw errors.invalid(def.kind, def.kind, '', [{ type: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }], def.group);
    }
    try { this.checkNamespace(def, meta.namespace); } catch (e) {
      if (e instanceof StatusError) throw new StatusError(e.code, e.reason, e.message.replace('%NAME%', meta.name), e.details);
      throw e;
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete (meta as Record<string, unknown>).selfLink;
    if (def.strategy.generationFields ?? GENERATION_KINDS.has(def.kind)) meta.generation = 1;
    else delete meta.generation;
    if (def.strategy.statusSubresource && def.kind !== 'Node') delete obj.status;
    def.strategy.prepareForCreate?.(obj);
    def.strategy.defaults?.(obj);
    if (def.kind === 'Pod') admitPodCreate(obj);
    cleanMeta(meta);
    const hook = this.writeHooks.get(def.kind); // write hooks: settled in the finally below
    const finish = hook ? await hook.beginCreate(obj) : undefined;
    let written: number | undefined;
    try {
      this.validate(def, obj);
      if (opts.dryRun) return { obj };
      const key = this.key(def, meta.namespace, meta.name);
      const stored = storageJson(convert(obj, storageVersionOf(def)));
      let kv: KV;
      try {
        kv = await this.store.create(key, stored);
      } catch (e) {
        if (e instanceof KeyExistsError) throw errors.alreadyExists(def.plural, meta.name, def.group);
        throw e;
      }
      written = kv.modRevision;
      meta.resourceVersion = String(kv.modRevision);
      return { obj, json: needsConversion(def) ? undefined : toEntry(key, stored, kv.modRevision).json };
    } finally {
      finish?.(written);
    }
  }

  /**
   * Read-modify-write with optimistic concurrency (upstream's GuaranteedUpdate). `mutate` gets a
   * private copy of the current object and returns the desired one. Retries on a concurrent write
   * unless the caller pinned a resourceVersion. Handles finalization (deletionTimestamp set and no
   * finalizers left → the object is deleted).
   */
  async guaranteedUpdate(
    def: ResourceDef, ns: string | undefined, name: string,
    mutate: (cur: KObject) => KObject | Promise<KObject>,
    opts: WriteOptions & { createIfMissing?: () => KObject | Promise<KObject> } = {},
  ): Promise<{ obj: KObject; created: boolean; deleted: boolean }> {
    const key = this.key(def, ns, name);
    // the first try works on the watch cache's copy (no store read); a decision that would end the
    // update without a compare-and-swap write (an error, a conflict, no change, a dry run) is only
    // taken on state read from the store, as upstream's GuaranteedUpdate does with its cached object
    let st = this.cachedState(def, key) ?? await this.storedState(def, key);
    for (let attempt = 0; ; attempt++) {
      if (!st) {
        if (opts.createIfMissing) {
          const o = await opts.createIfMissing();
          return { obj: await this.create(def, ns, o, opts), created: true, deleted: false };
        }
        throw errors.notFound(def.plural, name, def.group);
      }
      const { cur, rev } = st;
      const curRv = String(rev);
      let next: KObject;
      try {
        next = await mutate(st.text !== undefined ? JSON.parse(st.text) as KObject : clone(cur));
      } catch (e) {
        if (!st.current) { st = await this.storedState(def, key); continue; }
        throw e;
      }
      const finish = this.pendingFinish.get(next); // write hooks: settled in the finally below
      this.pendingFinish.delete(next);
      let written: number | undefined;
      let reread = false;
      try {
        const pinned = next.metadata?.resourceVersion;
        if (pinned && pinned !== curRv) {
          if (!st.current) { reread = true; continue; }
          throw errors.conflict(def.plural, name, 'the object has been modified; please apply your changes to the latest version and try again', def.group);
        }
        const out = stripRV(next);
        const outText = storageJson(out);
        const unchanged = outText === storageJson(cur);
        const finalize = !!next.metadata?.deletionTimestamp && !(next.metadata?.finalizers?.length) && !namespaceFinalizersPending(def, next)
          && (next.metadata?.deletionGracePeriodSeconds ?? 0) === 0;
        if ((opts.dryRun || unchanged) && !st.current) { reread = true; continue; }
        if (opts.dryRun) { next.metadata!.resourceVersion = curRv; return { obj: next, created: false, deleted: finalize }; }
        if (finalize) {
          try {
            const d = await this.store.delete(key, rev);
            next.metadata!.resourceVersion = String(d.modRevision);
            return { obj: next, created: false, deleted: true };
          } catch (e) {
            if (e instanceof RevisionMismatchError && !pinned && attempt < 20) { st = this.kvState(def, e.current); continue; }
            if (e instanceof KeyNotFoundError) throw errors.notFound(def.plural, name, def.group);
            if (e instanceof RevisionMismatchError) throw errors.conflict(def.plural, name, 'the object has been modified; please apply your changes to the latest version and try again', def.group);
            throw e;
          }
        }
        if (unchanged) return { obj: cur, created: false, deleted: false };
        try {
          const stored = convert(out, storageVersionOf(def));
          const value = stored === out ? outText : storageJson(stored);
          const w = await this.store.update(key, value, rev);
          written = w.modRevision;
          out.metadata!.resourceVersion = String(w.modRevision);
          return { obj: out, created: false, deleted: false };
        } catch (e) {
          if (e instanceof RevisionMismatchError && !pinned && attempt < 20) { st = this.kvState(def, e.current); continue; }
          if (e instanceof KeyNotFoundError) throw errors.notFound(def.plural, name, def.group);
          if (e instanceof RevisionMismatchError) throw errors.conflict(def.plural, name, 'the object has been modified; please apply your changes to the latest version and try again', def.group);
          throw e;
        }
      } finally {
        finish?.(written);
        if (reread) st = await this.storedState(def, key);
      }
    }
  }

  /** the object under key as the watch cache has it (maybe behind the store), in the served version */
  private cachedState(def: ResourceDef, key: string): ReadState | undefined {
    const e = this.resourceCache(def).objects.get(key);
    if (!e) return undefined;
    const v = view(def, e);
    return { cur: JSON.parse(v.json) as KObject, rev: e.rev, current: false, text: v.json };
  }

  /** the object under key as the store has it now */
  private async storedState(def: ResourceDef, key: string): Promise<ReadState | undefined> {
    const kv = await this.store.get(key);
    return kv && this.kvState(def, kv);
  }

  private kvState(def: ResourceDef, kv: KV): ReadState {
    const cur = convert(JSON.parse(kv.value) as KObject, apiVersionOf(def));
    (cur.metadata ??= {}).resourceVersion = String(kv.modRevision);
    return { cur, rev: kv.modRevision, current: true };
  }

  /**
   * Apply the rules of an update to `next` (the desired object) given `cur` (stored):
   * immutable metadata, status split, generation, defaults and validation.
   * subresource 'status' keeps everything but status; '' keeps status for kinds with a status subresource.
   */
  prepareUpdate(def: ResourceDef, cur: KObject, nextIn: KObject, subresource: string | undefined): KObject {
    let next = nextIn;
    this.checkTypeMeta(def, next);
    const cm = cur.metadata!;
    const nm = (next.metadata ??= {});
    if (nm.name !== undefined && nm.name !== cm.name) {
      throw errors.badRequest(`the name of the object (${nm.name}) does not match the name on the URL (${cm.name})`);
    }
    if (def.namespaced && nm.namespace && nm.namespace !== cm.namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (subresource === 'status') {
      const status = next.status;
      next = clone(cur);
      if (status === undefined) delete next.status; else next.status = status;
      next.metadata!.resourceVersion = nm.resourceVersion;
      if (!next.metadata!.resourceVersion) delete next.metadata!.resourceVersion;
      return next;
    }
    // immutable / system-owned metadata
    nm.name = cm.name;
    if (def.namespaced) nm.namespace = cm.namespace; else delete nm.namespace;
    nm.uid = cm.uid;
    nm.creationTimestamp = cm.creationTimestamp;
    if (cm.deletionTimestamp) { nm.deletionTimestamp = cm.deletionTimestamp; nm.deletionGracePeriodSeconds = cm.deletionGracePeriodSeconds; }
    else { delete nm.deletionTimestamp; delete nm.deletionGracePeriodSeconds; }
    if (cm.generation !== undefined) nm.generation = cm.generation; else delete nm.generation;
    if (cm.deletionTimestamp) {
      // while deleting, finalizers may only be removed
      const old = new Set(cm.finalizers ?? []);
      const added = (nm.finalizers ?? []).filter((f) => !old.has(f));
      if (added.length) {
        throw errors.invalid(def.kind, def.kind, cm.name!, [{ type: 'FieldValueForbidden', field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }], def.group);
      }
    }
    if (def.strategy.statusSubresource) {
      if (cur.status === undefined) delete next.status; else next.status = clone(cur.status);
    }
    def.strategy.prepareForUpdate?.(next, cur);
    def.strategy.defaults?.(next);
    const finish = this.writeHooks.get(def.kind)?.beginUpdate(next, cur); // write hooks: guaranteedUpdate settles it
    cleanMeta(nm);
    // generation bump on spec change
    const genFields = def.strategy.generationFields ?? (GENERATION_KINDS.has(def.kind) ? ['spec'] : undefined);
    if (genFields && cm.generation !== undefined) {
      const changed = genFields.some((f) => JSON.stringify(next[f]) !== JSON.stringify(cur[f]));
      if (changed) nm.generation = (cm.generation ?? 0) + 1;
    }
    try { this.validate(def, next, cur); } catch (e) { finish?.(); throw e; }
    if (finish) this.pendingFinish.set(next, finish);
    return next;
  }

  async delete(def: ResourceDef, ns: string | undefined, name: string, opts: DeleteOptions = {}, wopts: WriteOptions = {}): Promise<{ obj: KObject; deleted: boolean }> {
    const key = this.key(def, ns, name);
    // as in guaranteedUpdate: first from the watch cache, with compare-and-swap writes; a failed
    // precondition or a dry run is only answered on state read from the store
    let st = this.cachedState(def, key) ?? await this.storedState(def, key);
    for (let attempt = 0; ; attempt++) {
      if (!st) throw errors.notFound(def.plural, name, def.group);
      const cur = st.cur;
      const kv = { modRevision: st.rev };
      const meta = cur.metadata!;
      const pre = opts.preconditions;
      const failed = (pre?.uid && pre.uid !== meta.uid) || (pre?.resourceVersion && pre.resourceVersion !== meta.resourceVersion);
      if ((failed || wopts.dryRun) && !st.current) { st = await this.storedState(def, key); continue; }
      if (pre?.uid && pre.uid !== meta.uid) {
        throw errors.conflict(def.plural, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${meta.uid}`, def.group);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== meta.resourceVersion) {
        throw errors.conflict(def.plural, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`, def.group);
      }
      let grace = opts.gracePeriodSeconds;
      if (def.kind === 'Pod') {
        const spec = (cur.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
        const phase = (cur.status as { phase?: string } | undefined)?.phase;
        if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') grace = 0;
        else if (grace === undefined) grace = spec.terminationGracePeriodSeconds ?? 30;
      } else grace = 0;
      const policy = opts.propagationPolicy ?? (opts.orphanDependents === true ? 'Orphan' : undefined);
      const finalizers = new Set(meta.finalizers ?? []);
      if (policy === 'Orphan') { finalizers.add('orphan'); finalizers.delete('foregroundDeletion'); }
      if (policy === 'Foreground') { finalizers.add('foregroundDeletion'); finalizers.delete('orphan'); }
      const nsPending = def.kind === 'Namespace';
      const graceful = (grace ?? 0) > 0 || finalizers.size > 0 || nsPending;
      if (!graceful) {
        if (wopts.dryRun) return { obj: cur, deleted: true };
        try {
          const d = await this.store.delete(key, kv.modRevision);
          meta.resourceVersion = String(d.modRevision);
          return { obj: cur, deleted: true };
        } catch (e) {
          if (e instanceof RevisionMismatchError && attempt < 20) { st = this.kvState(def, e.current); continue; }
          if (e instanceof KeyNotFoundError) throw errors.notFound(def.plural, name, def.group);
          throw e;
        }
      }
      // graceful: mark for deletion
      const next = clone(cur);
      const nm = next.metadata!;
      if (finalizers.size) nm.finalizers = [...finalizers]; else delete nm.finalizers;
      const now = this.now();
      if (!nm.deletionTimestamp) {
        nm.deletionTimestamp = new Date(now.getTime() + (grace ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        nm.deletionGracePeriodSeconds = grace ?? 0;
      } else if (grace !== undefined && grace < (nm.deletionGracePeriodSeconds ?? Infinity)) {
        nm.deletionTimestamp = new Date(now.getTime() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        nm.deletionGracePeriodSeconds = grace;
      }
      if (def.kind === 'Namespace') {
        next.status = { ...((next.status as object) ?? {}), phase: 'Terminating' };
      }
      if (wopts.dryRun) return { obj: next, deleted: false };
      // a pod on a node with grace 0 and no finalizers goes away now
      if ((nm.deletionGracePeriodSeconds ?? 0) === 0 && !nm.finalizers?.length && def.kind !== 'Namespace') {
        try {
          const d = await this.store.delete(key, kv.modRevision);
          meta.resourceVersion = String(d.modRevision);
          return { obj: cur, deleted: true };
        } catch (e) {
          if (e instanceof RevisionMismatchError && attempt < 20) { st = this.kvState(def, e.current); continue; }
          throw e;
        }
      }
      try {
        const w = await this.store.update(key, storageJson(convert(next, storageVersionOf(def))), kv.modRevision);
        nm.resourceVersion = String(w.modRevision);
        return { obj: next, deleted: false };
      } catch (e) {
        if (e instanceof RevisionMismatchError && attempt < 20) { st = this.kvState(def, e.current); continue; }
        if (e instanceof KeyNotFoundError) throw errors.notFound(def.plural, name, def.group);
        throw e;
      }
    }
  }
}

/** Set by the server at start so the registry can find the Namespace resource. */
export const NAMESPACE_DEF: { def?: ResourceDef } = {};

function namespaceFinalizersPending(def: ResourceDef, obj: KObject): boolean {
  if (def.kind !== 'Namespace') return false;
  const f = (obj.spec as { finalizers?: string[] } | undefined)?.finalizers;
  return !!f && f.length > 0;
}

function cleanMeta(meta: Record<string, unknown>): void {
  for (const k of ['labels', 'annotations'] as const) {
    const v = meta[k];
    if (v && typeof v === 'object' && Object.keys(v).length === 0) delete meta[k];
  }
  if (Array.isArray(meta.finalizers) && meta.finalizers.length === 0) delete meta.finalizers;
  if (Array.isArray(meta.ownerReferences) && meta.ownerReferences.length === 0) delete meta.ownerReferences;
}

/**
 * The text the store keeps for an object: apiVersion, kind and metadata first (as upstream's
 * serialization has them), then the other fields in their order, without metadata.resourceVersion
 * (the store's revision is the resourceVersion). The watch cache splices the resourceVersion into
 * this text instead of serializing each object again (watch-cache.ts toEntry).
 */
export function storageJson(obj: KObject): string {
  // the usual case (a create, an update of a decoded object): already in that order, no resourceVersion
  if (obj.metadata && obj.metadata.resourceVersion === undefined && leadsWithTypeAndMeta(obj)) return JSON.stringify(obj);
  const { apiVersion, kind, metadata, ...rest } = obj;
  const m = { ...metadata };
  delete m.resourceVersion;
  return JSON.stringify({ apiVersion, kind, metadata: m, ...rest });
}

/** whether the first three keys of obj are apiVersion, kind and metadata, in that order */
function leadsWithTypeAndMeta(obj: KObject): boolean {
  let i = 0;
  for (const k in obj) {
    if (k !== (i === 0 ? 'apiVersion' : i === 1 ? 'kind' : 'metadata')) return false;
    if (++i === 3) return true;
  }
  return false;
}

function stripRV(obj: KObject): KObject {
  const o = { ...obj, metadata: { ...obj.metadata } };
  delete o.metadata.resourceVersion;
  return o;
}

const ALNUM = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  const b = randomBytes(5);
  let s = '';
  for (const x of b) s += ALNUM[x % ALNUM.length];
  return s;
}

function lowerBound(keys: string[], k: string): number {
  let lo = 0, hi = keys.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (keys[m] < k) lo = m + 1; else hi = m; }
  return lo;
}
function upperBound(keys: string[], k: string): number {
  let lo = 0, hi = keys.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (keys[m] <= k) lo = m + 1; else hi = m; }
  return lo;
}

function encodeContinue(t: { rv: number; start: string }): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: t.rv, start: t.start })).toString('base64url');
}
function decodeContinue(s: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('bad');
    return t;
  } catch {
    throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
}

export { clone, resourceName, CREATE_ON_UPDATE };
