// The watch cache: one store watch feeds an in-memory copy of every object, kept per resource
// (storage prefix), and a window of recent events so that client watches can resume from a
// resourceVersion. GET, LIST and WATCH are answered from here, as kube-apiserver's cacher does.
// Each object is serialized once per change: entries keep its JSON text, which is the stored text
// with the resourceVersion spliced in (the registry stores apiVersion, kind and metadata first so that
// this works; other shapes are re-serialized), and parse it only when something reads the object (a
// selector, a GET of a kind that needs conversion, an update): a create that nobody reads back, and a
// watch or list without selectors, cost no JSON.parse here and keep no object tree in memory.

import type { Store, WatchEvent, Watcher } from '../storage/store.js';
import type { KObject } from '../api/types.js';

export interface CacheEntry {
  readonly key: string;
  readonly obj: KObject; // parsed (on first use), with metadata.resourceVersion set; never mutate
  readonly json: string; // JSON text of obj
  readonly rev: number;
}

/** An entry whose object is parsed from its JSON text on first use. */
class LazyEntry implements CacheEntry {
  private parsed: KObject | undefined;
  constructor(readonly key: string, readonly json: string, readonly rev: number) {}
  get obj(): KObject { return (this.parsed ??= JSON.parse(this.json) as KObject); }
}

export type CacheEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface CacheEvent {
  type: CacheEventType;
  key: string;
  entry: CacheEntry; // for DELETED: the last state with rev = delete revision
  prev?: CacheEntry;
  rev: number;
}

export type CacheListener = (ev: CacheEvent) => void;

/** `{"apiVersion":"…","kind":"…","metadata":{` at the start of a stored value (how the registry writes them) */
const LEADING_META = /^\{"apiVersion":"[^"\\]*","kind":"[^"\\]*","metadata":\{/;

/** Decode a stored value into an entry with resourceVersion set to the revision. */
export function toEntry(key: string, value: string, rev: number): CacheEntry {
  const rv = String(rev);
  // the JSON text: the stored text with the resourceVersion spliced in at the start of metadata, when
  // its shape makes that safe (metadata an object at the top level, no resourceVersion anywhere in the
  // text: a stored one would win over the spliced one as JSON.parse keeps the last duplicate key)
  const m = LEADING_META.exec(value);
  if (m && !value.includes('"resourceVersion"')) {
    const at = m[0].length;
    return new LazyEntry(key, `${value.slice(0, at)}"resourceVersion":"${rv}"${value.charCodeAt(at) === 0x7d /* } */ ? '' : ','}${value.slice(at)}`, rev);
  }
  const obj = JSON.parse(value) as KObject;
  obj.metadata = obj.metadata ?? {};
  obj.metadata.resourceVersion = rv;
  return { key, obj, json: JSON.stringify(obj), rev };
}

/** One resource's slice of the cache (objects under one storage prefix). */
export class ResourceCache {
  readonly objects = new Map<string, CacheEntry>();
  /** recent events, oldest first, from index `first` on (older slots are dropped in bulk, so that
   *  trimming the window costs O(1) per event rather than a shift of the whole array) */
  private events: CacheEvent[] = [];
  private first = 0;
  /** events older than this revision are not in the window */
  oldestRev = 0;
  readonly listeners = new Set<CacheListener>();
  private sortedKeys: string[] | null = null;

  constructor(readonly prefix: string, private readonly capacity: number) {}

  apply(ev: CacheEvent): void {
    if (ev.type === 'DELETED') this.objects.delete(ev.key);
    else {
      if (!this.objects.has(ev.key)) this.sortedKeys = null;
      this.objects.set(ev.key, ev.entry);
    }
    if (ev.type === 'DELETED') this.sortedKeys = null;
    this.events.push(ev);
    if (this.events.length - this.first > this.capacity) {
      const drop = this.events.length - this.first - this.capacity;
      this.oldestRev = this.events[this.first + drop - 1].rev;
      for (let i = this.first; i < this.first + drop; i++) (this.events as (CacheEvent | undefined)[])[i] = undefined;
      this.first += drop;
      if (this.first >= Math.max(1024, this.capacity)) {
        this.events = this.events.slice(this.first);
        this.first = 0;
      }
    }
    for (const l of this.listeners) l(ev);
  }

  /** keys in sorted order (cached until the key set changes) */
  keys(): string[] {
    if (!this.sortedKeys) this.sortedKeys = [...this.objects.keys()].sort();
    return this.sortedKeys;
  }

  /** events with rev > fromRev, or undefined when fromRev is older than the window */
  eventsSince(fromRev: number): CacheEvent[] | undefined {
    if (fromRev < this.oldestRev) return undefined;
    // binary search for first event with rev > fromRev
    let lo = this.first, hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid].rev <= fromRev) lo = mid + 1; else hi = mid;
    }
    return this.events.slice(lo);
  }
}

export class WatchCache {
  private readonly caches = new Map<string, ResourceCache>();
  private watcher?: Watcher;
  /** the newest revision the cache has applied */
  rev = 0;
  private waiters: { rev: number; resolve: () => void }[] = [];
  private failed?: Error;

  constructor(private readonly store: Store, private readonly root = '/registry/', private readonly capacity = 10000) {}

  /** Fill from the store and follow its watch. */
  async start(): Promise<void> {
    let startKey: string | undefined;
    let revision = 0;
    // read everything at one revision: page through without writes in between (single process)
    for (;;) {
      const page = await this.store.list(this.root, { limit: 10000, startAfter: startKey });
      if (revision === 0) revision = page.revision;
      for (const kv of page.items) {
        const c = this.cacheFor(kv.key);
        const e = toEntry(kv.key, kv.value, kv.modRevision);
        c.objects.set(kv.key, e);
      }
      if (!page.more || page.items.length === 0) break;
      startKey = page.items[page.items.length - 1].key;
    }
    this.rev = revision;
    for (const c of this.caches.values()) c.oldestRev = revision;
    this.watcher = this.store.watch(this.root, revision, {
      onEvents: (evs) => this.onStoreEvents(evs),
      onError: (err) => { this.failed = err; },
    });
  }

  stop(): void { this.watcher?.stop(); }

  /** the ResourceCache for a storage prefix like `/registry/core/pods/` */
  resource(prefix: string): ResourceCache {
    let c = this.caches.get(prefix);
    if (!c) {
      c = new ResourceCache(prefix, this.capacity);
      c.oldestRev = this.rev;
      this.caches.set(prefix, c);
    }
    return c;
  }

  private cacheFor(key: string): ResourceCache {
    // key: /registry/<group>/<plural>/... ; prefix is the first three segments
    const parts = key.split('/');
    return this.resource(`/${parts[1]}/${parts[2]}/${parts[3]}/`);
  }

  private onStoreEvents(evs: WatchEvent[]): void {
    for (const ev of evs) {
      const c = this.cacheFor(ev.kv.key);
      const prev = c.objects.get(ev.kv.key);
      const entry = toEntry(ev.kv.key, ev.kv.value, ev.revision);
      const type: CacheEventType = ev.type === 'create' ? 'ADDED' : ev.type === 'update' ? 'MODIFIED' : 'DELETED';
      c.apply({ type, key: ev.kv.key, entry, prev, rev: ev.revision });
      this.rev = ev.revision;
    }
    if (this.waiters.length) {
      const ready = this.waiters.filter((w) => w.rev <= this.rev);
      this.waiters = this.waiters.filter((w) => w.rev > this.rev);
      for (const w of ready) w.resolve();
    }
  }

  /** resolves once the cache has applied revision `rev` */
  waitFor(rev: number): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.rev >= rev) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ rev, resolve }));
  }

  /** resolves once the cache is as new as the store (read-your-writes for GET/LIST) */
  async sync(): Promise<void> {
    const cur = await this.store.currentRevision();
    await this.waitFor(cur);
  }
}

/** the end (index after the closing brace) of the JSON object that starts at `start` in `s`, or -1 */
function objectEnd(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // to the closing quote: one not preceded by an odd number of backslashes
      for (;;) {
        i = s.indexOf('"', i + 1);
        if (i < 0) return -1;
        let b = 0;
        while (s.charCodeAt(i - 1 - b) === 0x5c /* \ */) b++;
        if (b % 2 === 0) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * The JSON text of an entry's metadata: cut from its JSON text when that starts with apiVersion, kind
 * and metadata (as the stored texts do), so that a metadata-only answer (PartialObjectMetadata) costs
 * a scan of the metadata rather than a parse of the whole object; else serialized from the object.
 */
export function metadataJson(e: CacheEntry): string {
  const m = LEADING_META.exec(e.json);
  if (m) {
    const start = m[0].length - 1;
    const end = objectEnd(e.json, start);
    if (end > 0) return e.json.slice(start, end);
  }
  return JSON.stringify(e.obj.metadata ?? {});
}

/** `{"kind":"PartialObjectMetadata","apiVersion":…,"metadata":…}`: an entry as metadata only */
export function partialObjectJson(e: CacheEntry, apiVersion: string): string {
  return `{"kind":"PartialObjectMetadata","apiVersion":"${apiVersion}","metadata":${metadataJson(e)}}`;
}
