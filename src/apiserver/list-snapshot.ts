// Continue pages of a paginated LIST, read from a consistent snapshot.
//
// Upstream serves every page of one list at the first page's resourceVersion (an etcd read at that
// revision). The watch cache only holds the present, so when a continue token's revision is older
// than the cache's, the registry reads the page from the store at the token's revision
// (Store.list with `revision`), decoding each stored value as the watch cache does (toEntry: the
// object's resourceVersion is its modRevision). Objects created, changed or deleted after the first
// page therefore neither appear, change nor vanish in later pages.
//
// When the store has compacted that revision away the answer is upstream's: 410 Gone, reason
// Expired, with the "inconsistent continue" message and, in the Status' metadata.continue, a token
// that resumes after the same key at the latest revision (upstream encodes resourceVersion -1 for
// this; the registry serves such a token from the cache, as a new list from that key on).

import type { Store } from '../storage/store.js';
import { CompactedError, FutureRevisionError } from '../storage/store.js';
import type { KObject } from '../api/types.js';
import { StatusError, type Status } from '../machinery/status.js';
import { toEntry, type CacheEntry, type ResourceCache } from './watch-cache.js';

/** upstream's message (k8s.io/apiserver storage/etcd3 errors.go, inconsistentContinue) */
export const INCONSISTENT_CONTINUE_MESSAGE = 'The provided continue parameter is too old to display a consistent list result. ' +
  'You can start a new list without the continue parameter, or use the continue token in this response to retrieve ' +
  'the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that ' +
  'were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

/** the continue token's revision for "go on at the latest revision" (upstream's -1) */
export const LATEST_REVISION = -1;

/** 410 Expired whose Status carries metadata.continue (a token that goes on inconsistently) */
export class ExpiredContinueError extends StatusError {
  constructor(readonly continueToken: string) {
    super(410, 'Expired', INCONSISTENT_CONTINUE_MESSAGE);
  }
  override toStatus(): Status {
    const s = super.toStatus();
    s.metadata = { continue: this.continueToken };
    return s;
  }
}

export interface SnapshotPageOptions {
  /** storage prefix of the listed keys (with the namespace, for a namespaced list) */
  prefix: string;
  /** the snapshot: the first page's revision, from the continue token */
  revision: number;
  /** the continue token's key: the page starts after it */
  startAfter: string;
  /** at most this many items (Infinity: the rest) */
  limit: number;
  /** a metadata.name=<name> field selector: keys not ending in /<name> are skipped unparsed */
  exactName?: string;
  /** the label/field selector match, as the cache path applies it */
  match(obj: KObject): boolean;
  /** no selectors: count every key after the page (remainingItemCount); else only learn whether one matches */
  countRemaining: boolean;
  /** the token to put in the 410's Status when the revision is compacted (resumes after startAfter, latest) */
  expiredToken(): string;
  /** with countRemaining: how many keys of the list came after `key` at the revision, when that can be
   *  told without reading them (countAfterFromCache); undefined: they are read from the store and counted */
  countAfter?(key: string): number | undefined;
}

export interface SnapshotPage {
  items: CacheEntry[];
  /** key of the last item (the next token's start); '' when there are no items */
  lastKey: string;
  /** matching items after this page: the exact count when countRemaining, else 0 or 1 (some remain) */
  remaining: number;
}

/** items read per store call while filling the page and while looking past it */
const CHUNK = 500;
const COUNT_CHUNK = 5000;

/** One continue page of a list, read from the store as it was at o.revision. */
export async function readSnapshotPage(store: Store, o: SnapshotPageOptions): Promise<SnapshotPage> {
  const items: CacheEntry[] = [];
  let lastKey = '';
  let remaining = 0;
  let cursor = o.startAfter;
  let full = o.limit <= 0;
  const suffix = o.exactName !== undefined ? `/${o.exactName}` : undefined;
  for (;;) {
    const chunk = full ? COUNT_CHUNK : Math.min(CHUNK, Math.max(64, o.limit - items.length + 1));
    let page;
    try {
      page = await store.list(o.prefix, { revision: o.revision, startAfter: cursor, limit: chunk });
    } catch (err) {
      if (err instanceof CompactedError) throw new ExpiredContinueError(o.expiredToken());
      if (err instanceof FutureRevisionError) {
        // a token from a store that has since gone back (e.g. a memory store's restart): answered as
        // upstream's "too large resource version" (storage.NewTooLargeResourceVersionError), 504 Timeout
        throw new StatusError(504, 'Timeout', `Timeout: Too large resource version: ${err.requested}, current: ${err.current}`,
          { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
      }
      throw err;
    }
    for (const kv of page.items) {
      if (full && o.countRemaining) { remaining++; continue; }
      if (suffix !== undefined && !kv.key.endsWith(suffix)) continue;
      const e = toEntry(kv.key, kv.value, kv.modRevision);
      if (!o.countRemaining && !o.match(e.obj)) continue; // countRemaining: no selectors, every item matches
      if (full) return { items, lastKey, remaining: 1 }; // with selectors: knowing that one more matches is enough
      items.push(e);
      lastKey = kv.key;
      if (items.length >= o.limit) {
        full = true;
        const n = o.countRemaining ? o.countAfter?.(lastKey) : undefined;
        if (n !== undefined) return { items, lastKey, remaining: n };
      }
    }
    if (!page.more || page.items.length === 0) return { items, lastKey, remaining };
    cursor = page.items[page.items.length - 1].key;
  }
}

/**
 * How many keys under prefix and after `after` existed at `revision`, told from the watch cache
 * without reading the store: the keys there now, minus those created since, plus those deleted
 * since (the first event after the revision for a key says whether it existed then). Undefined when
 * the cache's event window no longer reaches back to the revision.
 */
export function countAfterFromCache(c: ResourceCache, prefix: string, after: string, revision: number): number | undefined {
  const events = c.eventsSince(revision);
  if (!events) return undefined;
  const keys = c.keys();
  // keys under prefix are one run of the sorted keys: count the part of it after `after`
  const lo = firstIndex(keys, 0, (k) => k > after && k >= prefix);
  const hi = firstIndex(keys, lo, (k) => !k.startsWith(prefix));
  let n = hi - lo;
  const seen = new Set<string>();
  for (const ev of events) {
    const k = ev.key;
    if (k <= after || !k.startsWith(prefix) || seen.has(k)) continue;
    seen.add(k);
    n += (ev.type === 'ADDED' ? 0 : 1) - (c.objects.has(k) ? 1 : 0);
  }
  return n;
}

/** the first index from `from` on where pred (false, then true along the sorted keys) holds; keys.length if none */
function firstIndex(keys: readonly string[], from: number, pred: (k: string) => boolean): number {
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(keys[mid])) hi = mid; else lo = mid + 1;
  }
  return lo;
}
