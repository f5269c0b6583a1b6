// The store: a tiny revisioned key-value interface, as kine gives Kubernetes. It knows nothing of
// Kubernetes: keys are strings, values are (JSON) text. resourceVersion, selectors, pagination of
// Kubernetes lists and the watch cache all live above it, in the API server.

/** One key at one revision. */
export interface KV {
  key: string;
  value: string;
  /** revision at which this key was created (survives updates) */
  createRevision: number;
  /** revision of the write that produced this value */
  modRevision: number;
}

export type WatchEventType = 'create' | 'update' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /** for create/update the new value; for delete the last value, with modRevision = the delete's revision */
  kv: KV;
  /** the previous value (update and delete) */
  prevKv?: KV;
  /** revision of this event (== kv.modRevision) */
  revision: number;
}

export interface ListOptions {
  /** at most this many items (0 or undefined: all) */
  limit?: number;
  /** return keys strictly greater than this key (continuation) */
  startAfter?: string;
  /** list the keys as they were at this store revision (a consistent snapshot for paging): for each key
   *  its latest value with modRevision <= revision, unless it was deleted at or before revision.
   *  0 or undefined: the current state. A revision at or below the compacted revision throws
   *  CompactedError; one above the current revision throws FutureRevisionError; anything that is not
   *  a non-negative integer throws RangeError. */
  revision?: number;
}

export interface ListResult {
  items: KV[];
  /** the store revision the list was read at (opts.revision when one was given) */
  revision: number;
  /** true when more keys follow the last item returned */
  more: boolean;
}

export interface Watcher {
  /** stop delivering events; idempotent */
  stop(): void;
}

export interface WatchCallbacks {
  /** events in revision order; a batch holds every event of one or more consecutive revisions */
  onEvents(events: WatchEvent[]): void;
  /** the watch ended with an error (e.g. CompactedError); no more events follow */
  onError?(err: Error): void;
}

export interface Store {
  get(key: string): Promise<KV | undefined>;
  /** keys starting with prefix, in key order */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  count(prefix: string): Promise<number>;
  /** throws KeyExistsError if the key exists */
  create(key: string, value: string): Promise<KV>;
  /** compare-and-swap: throws RevisionMismatchError (with the current KV) if the key's modRevision differs,
   *  KeyNotFoundError if the key is absent */
  update(key: string, value: string, expectedModRevision: number): Promise<KV>;
  /** delete, with optional compare-and-swap; returns the deleted KV (modRevision = delete revision);
   *  throws KeyNotFoundError / RevisionMismatchError */
  delete(key: string, expectedModRevision?: number): Promise<KV>;
  /** events for keys under prefix with revision > fromRevision (fromRevision 0: from now on).
   *  A fromRevision older than the compacted revision calls onError(CompactedError). */
  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): Watcher;
  currentRevision(): Promise<number>;
  /** the oldest revision still watchable from (events with revision > this are kept) */
  compactedRevision(): Promise<number>;
  /** forget history at or below revision */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export class KeyExistsError extends Error {
  constructor(readonly key: string) { super(`key exists: ${key}`); this.name = 'KeyExistsError'; }
}
export class KeyNotFoundError extends Error {
  constructor(readonly key: string) { super(`key not found: ${key}`); this.name = 'KeyNotFoundError'; }
}
export class RevisionMismatchError extends Error {
  constructor(readonly key: string, readonly current: KV) { super(`revision mismatch for ${key}: current ${current.modRevision}`); this.name = 'RevisionMismatchError'; }
}
export class CompactedError extends Error {
  constructor(readonly requested: number, readonly compacted: number) { super(`required revision ${requested} has been compacted (oldest ${compacted})`); this.name = 'CompactedError'; }
}
/** a read asked for a revision the store has not reached yet (etcd: "required revision is a future revision") */
export class FutureRevisionError extends Error {
  constructor(readonly requested: number, readonly current: number) { super(`required revision ${requested} is a future revision (current ${current})`); this.name = 'FutureRevisionError'; }
}
