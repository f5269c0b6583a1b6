// Informer: keeps a local, indexed copy of one resource (optionally one namespace / selector) in
// step with the API server, and tells handlers about every change, as client-go's
// SharedIndexInformer does.
//
//   list (paged) ──► replace cache, deliver the difference ──► watch from the list's RV
//        ▲                                                         │ stream ends: watch again from
//        └──── 410 Gone / ERROR 410 / other errors (after backoff) ─┘ the last RV seen
//
// Handlers run synchronously, in event order, and receive the CACHED objects: they are read-only
// (controllers enqueue keys and clone with structuredClone before writing). Set freezeObjects to
// have the cache deep-freeze objects so accidental mutation throws (useful in tests).
import type { KObject } from '../api/types.js';
import { isStatusError } from '../machinery/status.js';
import { type Clock, realClock, sleep } from './clock.js';
import { Indexer, Lister, keyOf, type IndexFunc } from './indexer.js';
import type { ListOptions, ListResult, ResourceRef, WatchEvent, WatchOptions } from './rest-client.js';

/** What the informer needs of a client; RestClient fits. */
export interface ListWatchClient {
  list<T extends KObject>(res: ResourceRef, ns?: string | null, opts?: ListOptions): Promise<ListResult<T>>;
  watch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, opts?: WatchOptions, signal?: AbortSignal): AsyncIterable<WatchEvent<T>>;
}

export interface EventHandlers<T extends KObject = KObject> {
  onAdd?(obj: T): void;
  /** also called with old === new on periodic resync */
  onUpdate?(oldObj: T, newObj: T): void;
  /** obj is the last state known (for a delete found by a re-list, the cached state) */
  onDelete?(obj: T): void;
}

export interface InformerOptions<T extends KObject = KObject> {
  client: ListWatchClient;
  resource: ResourceRef;
  /** one namespace; all when undefined */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Record<string, IndexFunc<T>>;
  /** deliver onUpdate(obj, obj) for every cached object this often; 0/undefined = never */
  resyncPeriodMs?: number;
  /** list page size; default 500 */
  pageSize?: number;
  /** watch timeoutSeconds per request; default random 300–600 s as upstream */
  watchTimeoutSeconds?: () => number;
  /** retry backoff after errors: 800 ms doubling to 30 s (upstream's reflector) */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  clock?: Clock;
  /** list and watch the objects' metadata only (PartialObjectMetadata, as upstream's metadata informers) */
  metadataOnly?: boolean;
  /** deep-freeze cached objects (mutation by a handler then throws in strict mode) */
  freezeObjects?: boolean;
  /** errors from list/watch and from handlers; default console.error */
  onError?(err: unknown, during: 'list' | 'watch' | 'handler'): void;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

export class Informer<T extends KObject = KObject> {
  readonly indexer: Indexer<T>;
  readonly lister: Lister<T>;
  private readonly handlers = new Set<EventHandlers<T>>();
  private readonly clock: Clock;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private lastRV = '';
  private running = false;
  /** counts completed lists (the initial one included); for tests and metrics */
  listCount = 0;

  constructor(private readonly opts: InformerOptions<T>) {
    this.indexer = new Indexer<T>(opts.indexers ?? {});
    this.lister = new Lister(this.indexer);
    this.clock = opts.clock ?? realClock;
  }

  /** Registers handlers. If the cache already holds objects they are delivered as onAdd first.
   *  Returns a function that removes the handlers. */
  addEventHandler(h: EventHandlers<T>): () => void {
    this.handlers.add(h);
    if (this.indexer.size > 0 && h.onAdd) for (const o of this.indexer.list()) this.call(() => h.onAdd!(o));
    return () => { this.handlers.delete(h); };
  }

  /** True once the first list has been stored and delivered. */
  hasSynced(): boolean { return this.synced; }

  /** The resourceVersion the informer has caught up to. */
  get lastSyncResourceVersion(): string { return this.lastRV; }

  /** Resolves true once synced, false if signal aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (v: boolean): void => { signal?.removeEventListener('abort', onAbort); resolve(v); };
      const onAbort = (): void => { this.syncWaiters = this.syncWaiters.filter((w) => w !== ok); done(false); };
      const ok = (): void => done(true);
      this.syncWaiters.push(ok);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Lists and watches until signal aborts; resolves when stopped. Call once. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error('informer is already running');
    this.running = true;
    const initial = this.opts.backoffInitialMs ?? 800;
    const max = this.opts.backoffMaxMs ?? 30_000;
    let backoff = initial;
    const pause = async (): Promise<void> => { await sleep(this.clock, backoff, signal); backoff = Math.min(max, backoff * 2); };
    const stopResync = this.startResync(signal);
    try {
      while (!signal.aborted) {
        try {
          await this.listAndReplace(signal);
        } catch (e) {
          if (signal.aborted) break;
          this.report(e, 'list');
          await pause();
          continue;
        }
        backoff = initial;
        // watch until the RV expires or an error asks for a fresh list
        for (;;) {
          if (signal.aborted) break;
          const started = this.clock.now();
          let outcome: 'ended' | 'relist' | 'error';
          let events = 0;
          try {
            outcome = await this.watchOnce(signal, () => { events++; });
          } catch (e) {
            if (signal.aborted) break;
            if (isStatusError(e) && e.code === 410) { outcome = 'relist'; }
            else { this.report(e, 'watch'); outcome = 'error'; }
          }
          if (signal.aborted) break;
          if (outcome === 'relist') break;
          if (outcome === 'error') { await pause(); continue; }
          // a watch that ended at once without events: back off instead of spinning
          if (events === 0 && this.clock.now() - started < 1000) await pause();
          else backoff = initial;
        }
      }
    } finally {
      stopResync();
      this.running = false;
    }
  }

  private startResync(signal: AbortSignal): () => void {
    const period = this.opts.resyncPeriodMs ?? 0;
    if (!(period > 0)) return () => {};
    let h: object | undefined;
    const tick = (): void => {
      if (signal.aborted) return;
      if (this.synced) for (const o of this.indexer.list()) this.emit('update', o, o);
      h = this.clock.setTimeout(tick, period);
    };
    h = this.clock.setTimeout(tick, period);
    return () => { if (h) this.clock.clearTimeout(h); };
  }

  private async listAndReplace(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    for (;;) {
      let page: ListResult<T>;
      try {
        page = await this.opts.client.list<T>(this.opts.resource, this.opts.namespace, {
          labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
          limit: this.opts.pageSize ?? 500, continue: cont, signal, metadataOnly: this.opts.metadataOnly,
        });
      } catch (e) {
        // an expired continue token: start over with one unpaged list
        if (cont && isStatusError(e) && e.code === 410) {
          items.length = 0;
          cont = undefined;
          page = await this.opts.client.list<T>(this.opts.resource, this.opts.namespace, {
            labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector, signal, metadataOnly: this.opts.metadataOnly,
          });
        } else throw e;
      }
      items.push(...page.items);
      rv = page.metadata.resourceVersion ?? rv;
      cont = page.metadata.continue || undefined;
      if (!cont) break;
    }
    if (signal.aborted) return;
    this.replace(items);
    this.lastRV = rv;
    this.listCount++;
    if (!this.synced) {
      this.synced = true;
      const w = this.syncWaiters;
      this.syncWaiters = [];
      for (const f of w) f();
    }
  }

  /** Swaps the cache for a fresh list and delivers the difference as add/update/delete. */
  private replace(items: T[]): void {
    const fresh = new Map<string, T>();
    for (const o of items) fresh.set(keyOf(o), this.prepare(o));
    for (const [key, old] of [...this.indexer.entries()]) {
      if (!fresh.has(key)) { this.indexer.delete(key); this.emit('delete', old); }
    }
    for (const [key, o] of fresh) {
      const old = this.indexer.getByKey(key);
      if (!old) { this.indexer.set(o); this.emit('add', o); }
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) { this.indexer.set(o); this.emit('update', old, o); }
    }
  }

  private prepare(o: T): T { return this.opts.freezeObjects ? deepFreeze(o) : o; }

  private async watchOnce(signal: AbortSignal, onEvent: () => void): Promise<'ended' | 'relist' | 'error'> {
    const timeoutSeconds = this.opts.watchTimeoutSeconds?.() ?? Math.floor(300 * (1 + Math.random()));
    const stream = this.opts.client.watch<T>(this.opts.resource, this.opts.namespace, {
      resourceVersion: this.lastRV, labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
      allowWatchBookmarks: true, timeoutSeconds, metadataOnly: this.opts.metadataOnly,
    }, signal);
    for await (const ev of stream) {
      if (signal.aborted) return 'ended';
      onEvent();
      if (ev.type === 'ERROR') {
        const s = ev.object;
        if (s.code === 410 || s.reason === 'Expired' || s.reason === 'Gone') return 'relist';
        this.report(new Error(`watch of ${this.opts.resource.plural} failed: ${s.reason ?? ''} ${s.message ?? ''} (${s.code ?? '?'})`), 'watch');
        return 'error';
      }
      const obj = ev.object;
      const rv = obj?.metadata?.resourceVersion;
      if (ev.type === 'BOOKMARK') { if (rv) this.lastRV = rv; continue; }
      const o = this.prepare(obj);
      const key = keyOf(o);
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
        const old = this.indexer.set(o);
        if (old) this.emit('update', old, o);
        else this.emit('add', o);
      } else if (ev.type === 'DELETED') {
        this.indexer.delete(key);
        this.emit('delete', o);
      }
      if (rv) this.lastRV = rv;
    }
    return 'ended';
  }

  private emit(kind: 'add', o: T): void;
  private emit(kind: 'update', old: T, o: T): void;
  private emit(kind: 'delete', o: T): void;
  private emit(kind: 'add' | 'update' | 'delete', a: T, b?: T): void {
    for (const h of this.handlers) {
      if (kind === 'add' && h.onAdd) this.call(() => h.onAdd!(a));
      else if (kind === 'update' && h.onUpdate) this.call(() => h.onUpdate!(a, b!));
      else if (kind === 'delete' && h.onDelete) this.call(() => h.onDelete!(a));
    }
  }

  private call(f: () => void): void {
    try { f(); } catch (e) { this.report(e, 'handler'); }
  }

  private report(e: unknown, during: 'list' | 'watch' | 'handler'): void {
    if (this.opts.onError) this.opts.onError(e, during);
    else console.error(`informer ${this.opts.resource.plural}: ${during} error:`, e);
  }
}

/** Resolves true when every informer has synced, false if signal aborts first. */
export async function waitForCacheSync(signal: AbortSignal | undefined, ...informers: Array<{ waitForSync(signal?: AbortSignal): Promise<boolean> }>): Promise<boolean> {
  const r = await Promise.all(informers.map((i) => i.waitForSync(signal)));
  return r.every(Boolean);
}
