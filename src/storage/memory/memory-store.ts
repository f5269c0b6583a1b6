// The in-memory driver, for tests and throwaway servers: a sorted array of keys beside a map, one
// global revision, and an event log for watch-from-revision. Everything it returns is frozen.
// A list at an older revision (ListOptions.revision) starts from the current keys and undoes the
// logged events after that revision: the first event after it for a key tells the key's state then
// (a create: absent; an update or delete: its prevKv).
import {
  CompactedError, FutureRevisionError, KeyExistsError, KeyNotFoundError, RevisionMismatchError,
  type KV, type ListOptions, type ListResult, type Store, type WatchCallbacks, type WatchEvent, type Watcher,
} from '../store.js';
import { prefixEndCodeUnit } from '../keys.js';
import { WatchHub } from '../watch-hub.js';

export interface MemoryStoreOptions {
  /** keep at least this many revisions of history for watches; older history is compacted away
   *  automatically (default 10000; 0 keeps everything until compact() is called) */
  retainRevisions?: number;
}

export class MemoryStore implements Store {
  /** every live key, sorted in JavaScript string order */
  private keys: string[] = [];
  private readonly data = new Map<string, KV>();
  private rev = 0;
  private compacted = 0;
  /** events with revision > compacted, in revision order */
  private log: WatchEvent[] = [];
  private readonly hub = new WatchHub();
  private readonly retain: number;
  private closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.retain = opts.retainRevisions ?? 10000;
  }

  async get(key: string): Promise<KV | undefined> {
    this.open();
    return this.data.get(key);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.open();
    if (opts.revision !== undefined && opts.revision !== 0) {
      checkRevision(opts.revision, this.compacted, this.rev);
      if (opts.revision < this.rev) return this.listAt(prefix, opts, opts.revision);
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    let i = this.lowerBound(prefix);
    if (opts.startAfter !== undefined) i = Math.max(i, this.upperBound(opts.startAfter));
    const items: KV[] = [];
    const keys = this.keys;
    while (i < keys.length && items.length < limit && keys[i].startsWith(prefix)) {
      items.push(this.data.get(keys[i]) as KV);
      i++;
    }
    const more = i < keys.length && keys[i].startsWith(prefix);
    return { items, revision: this.rev, more };
  }

  /** list as of an older revision: the current keys, with the events after revision undone */
  private listAt(prefix: string, opts: ListOptions, revision: number): ListResult {
    const after = opts.startAfter;
    const inRange = (k: string) => k.startsWith(prefix) && (after === undefined || k > after);
    // the state at `revision` of every key written since: null when it did not exist then
    const then = new Map<string, KV | null>();
    for (let i = this.logIndexAbove(revision); i < this.log.length; i++) {
      const ev = this.log[i];
      const k = ev.kv.key;
      if (then.has(k) || !inRange(k)) continue;
      then.set(k, ev.type === 'create' ? null : ev.prevKv!);
    }
    const old = ([...then.values()].filter((kv) => kv !== null) as KV[]).sort((a, b) => (a.key < b.key ? -1 : 1));
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const keys = this.keys;
    let i = this.lowerBound(prefix);
    if (after !== undefined) i = Math.max(i, this.upperBound(after));
    let j = 0;
    /** the next key of the snapshot from the current keys (skipping those written since), or undefined */
    const nextCurrent = (): string | undefined => {
      while (i < keys.length && keys[i].startsWith(prefix) && then.has(keys[i])) i++;
      return i < keys.length && keys[i].startsWith(prefix) ? keys[i] : undefined;
    };
    const items: KV[] = [];
    for (;;) {
      const cur = nextCurrent();
      if (cur === undefined && j >= old.length) return { items, revision, more: false };
      if (items.length >= limit) return { items, revision, more: true };
      if (cur !== undefined && (j >= old.length || cur < old[j].key)) {
        items.push(this.data.get(cur) as KV);
        i++;
      } else {
        items.push(old[j++]);
      }
    }
  }

  async count(prefix: string): Promise<number> {
    this.open();
    const end = prefixEndCodeUnit(prefix);
    const hi = end === undefined ? this.keys.length : this.lowerBound(end);
    return hi - this.lowerBound(prefix);
  }

  async create(key: string, value: string): Promise<KV> {
    this.open();
    checkValue(value);
    if (this.data.has(key)) throw new KeyExistsError(key);
    const rev = this.rev + 1;
    const kv = Object.freeze({ key, value, createRevision: rev, modRevision: rev });
    this.keys.splice(this.lowerBound(key), 0, key);
    this.data.set(key, kv);
    this.commit(Object.freeze({ type: 'create', kv, revision: rev }));
    return kv;
  }

  async update(key: string, value: string, expectedModRevision: number): Promise<KV> {
    this.open();
    checkValue(value);
    const prev = this.data.get(key);
    if (!prev) throw new KeyNotFoundError(key);
    if (prev.modRevision !== expectedModRevision) throw new RevisionMismatchError(key, prev);
    const rev = this.rev + 1;
    const kv = Object.freeze({ key, value, createRevision: prev.createRevision, modRevision: rev });
    this.data.set(key, kv);
    this.commit(Object.freeze({ type: 'update', kv, prevKv: prev, revision: rev }));
    return kv;
  }

  async delete(key: string, expectedModRevision?: number): Promise<KV> {
    this.open();
    const prev = this.data.get(key);
    if (!prev) throw new KeyNotFoundError(key);
    if (expectedModRevision !== undefined && prev.modRevision !== expectedModRevision) {
      throw new RevisionMismatchError(key, prev);
    }
    const rev = this.rev + 1;
    const kv = Object.freeze({ key, value: prev.value, createRevision: prev.createRevision, modRevision: rev });
    this.keys.splice(this.lowerBound(key), 1);
    this.data.delete(key);
    this.commit(Object.freeze({ type: 'delete', kv, prevKv: prev, revision: rev }));
    return kv;
  }

  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): Watcher {
    if (this.closed) return this.hub.failed(cb, new Error('store is closed'));
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      return this.hub.failed(cb, new RangeError(`invalid watch revision ${fromRevision}`));
    }
    if (fromRevision === 0) return this.hub.add(prefix, this.rev, [], cb);
    if (fromRevision < this.compacted) return this.hub.failed(cb, new CompactedError(fromRevision, this.compacted));
    const replay: WatchEvent[] = [];
    for (let i = this.logIndexAbove(fromRevision); i < this.log.length; i++) {
      if (this.log[i].kv.key.startsWith(prefix)) replay.push(this.log[i]);
    }
    return this.hub.add(prefix, fromRevision, replay, cb);
  }

  async currentRevision(): Promise<number> {
    this.open();
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    this.open();
    return this.compacted;
  }

  async compact(revision: number): Promise<void> {
    this.open();
    if (revision > this.rev) throw new RangeError(`cannot compact to revision ${revision}: current revision is ${this.rev}`);
    this.compactTo(revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.failAll(new Error('store is closed'));
  }

  private commit(ev: WatchEvent): void {
    this.rev = ev.revision;
    this.log.push(ev);
    // trim in chunks so the cost per write stays constant
    if (this.retain > 0 && this.rev - this.compacted >= 2 * this.retain) this.compactTo(this.rev - this.retain);
    this.hub.publish([ev]);
  }

  private compactTo(revision: number): void {
    if (revision <= this.compacted) return;
    this.log = this.log.slice(this.logIndexAbove(revision));
    this.compacted = revision;
  }

  /** index of the first logged event with revision > rev */
  private logIndexAbove(rev: number): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid].revision <= rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** index of the first key >= key */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** index of the first key > key */
  private upperBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private open(): void {
    if (this.closed) throw new Error('store is closed');
  }
}

/** a snapshot revision must be an integer above the compacted revision and not above the current one */
function checkRevision(revision: number, compacted: number, current: number): void {
  if (!Number.isInteger(revision) || revision < 0) throw new RangeError(`invalid list revision ${revision}`);
  if (revision <= compacted) throw new CompactedError(revision, compacted);
  if (revision > current) throw new FutureRevisionError(revision, current);
}

function checkValue(value: unknown): void {
  if (typeof value !== 'string') throw new TypeError(`store values are strings, got ${typeof value}`);
}
