// Records core/v1 Events about objects, as client-go's record.EventRecorder: fire-and-forget (a
// bounded queue written in the background; failures never reach the caller) with upstream's
// deduplication — the same (source, object, type, reason, message) seen again within the window
// PATCHes the existing Event's count and lastTimestamp instead of creating another one.
// Event names are `<object name>.<unix nanoseconds in hex>` as upstream's.
import { format } from 'node:util';
import type { KObject } from '../api/types.js';
import { isStatusError, StatusError } from '../machinery/status.js';
import { type Clock, realClock, sleep } from './clock.js';
import type { PatchType, ResourceRef } from './rest-client.js';

export const eventsResource: ResourceRef = { group: '', version: 'v1', plural: 'events' };

export type EventType = 'Normal' | 'Warning';

export interface ObjectReference {
  kind?: string; namespace?: string; name?: string; uid?: string; apiVersion?: string;
  resourceVersion?: string; fieldPath?: string;
}

export interface CoreEvent extends KObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  source: { component?: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  type: EventType;
  eventTime: null;
  reportingComponent: string;
  reportingInstance: string;
}

/** What the recorder needs of a client; RestClient fits. */
export interface EventClient {
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T): Promise<T>;
  patch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType): Promise<T>;
}

export interface EventRecorderOptions {
  client: EventClient;
  /** source.component and reportingComponent, e.g. 'default-scheduler', 'kubelet' */
  component: string;
  /** source.host (node name for the kubelet) and reportingInstance */
  host?: string;
  clock?: Clock;
  /** events waiting to be written; more are dropped (default 1000) */
  maxQueue?: number;
  /** remembered (object, type, reason, message) keys, least recently used dropped first (default 4096) */
  cacheSize?: number;
  /** a repeat later than this after the last one creates a new Event (default 10 min) */
  dedupWindowMs?: number;
  /** write attempts per event for transient failures (default 3) */
  maxAttempts?: number;
  /** failed writes and drops (default: ignored) */
  onError?(err: unknown, event: CoreEvent): void;
}

interface Seen { name: string; namespace: string; count: number; firstTimestamp: string; lastSeenMs: number }

/** Kubernetes metav1.Time: RFC 3339 with whole seconds. */
function toTime(ms: number): string { return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'); }

/** A reference to obj for involvedObject; kind/apiVersion may be given when obj lacks them (list items). */
export function objectReference(obj: KObject, typeMeta: { kind?: string; apiVersion?: string } = {}): ObjectReference {
  const m = obj.metadata ?? {};
  const ref: ObjectReference = {
    kind: obj.kind ?? typeMeta.kind, namespace: m.namespace, name: m.name, uid: m.uid,
    apiVersion: obj.apiVersion ?? typeMeta.apiVersion, resourceVersion: m.resourceVersion,
  };
  for (const k of Object.keys(ref) as (keyof ObjectReference)[]) if (ref[k] === undefined || ref[k] === '') delete ref[k];
  return ref;
}

export class EventRecorder {
  private readonly clock: Clock;
  private readonly queue: CoreEvent[] = [];
  private readonly seen = new Map<string, Seen>();
  private pumping?: Promise<void>;
  private closed = false;
  private nanoSeq = 0n;
  private lastNano = 0n;
  /** events dropped because the queue was full or the recorder closed */
  dropped = 0;

  constructor(private readonly opts: EventRecorderOptions) {
    this.clock = opts.clock ?? realClock;
  }

  /** Records an event about obj (a KObject or an ObjectReference). Never throws; never waits. */
  event(obj: KObject | ObjectReference, type: EventType, reason: string, message: string): void {
    try {
      const ref = 'metadata' in obj && obj.metadata !== undefined ? objectReference(obj as KObject) : { ...(obj as ObjectReference) };
      if (!ref.name) throw new Error('event about an object without a name');
      const now = this.clock.now();
      const ev: CoreEvent = {
        apiVersion: 'v1', kind: 'Event',
        metadata: { name: '', namespace: ref.namespace || 'default' },
        involvedObject: ref, reason, message,
        source: this.opts.host ? { component: this.opts.component, host: this.opts.host } : { component: this.opts.component },
        firstTimestamp: toTime(now), lastTimestamp: toTime(now), count: 1, type, eventTime: null,
        reportingComponent: this.opts.component, reportingInstance: this.opts.host ?? '',
      };
      if (this.closed || this.queue.length >= (this.opts.maxQueue ?? 1000)) {
        this.dropped++;
        this.opts.onError?.(new Error(`event dropped (${this.closed ? 'recorder closed' : 'queue full'})`), ev);
        return;
      }
      this.queue.push(ev);
      this.pumping ??= this.pump();
    } catch (e) {
      try { this.opts.onError?.(e, undefined as unknown as CoreEvent); } catch { /* never throw */ }
    }
  }

  /** event() with a printf-style message (node:util format). */
  eventf(obj: KObject | ObjectReference, type: EventType, reason: string, fmt: string, ...args: unknown[]): void {
    this.event(obj, type, reason, format(fmt, ...args));
  }

  /** Resolves once every queued event has been written (or given up on). */
  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  /** Stops accepting events and waits for the queue to drain. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length) {
        const ev = this.queue.shift()!;
        await this.write(ev);
      }
    } finally {
      this.pumping = undefined;
    }
  }

  private eventName(objName: string): string {
    // unix nanoseconds, kept strictly increasing so two events in one millisecond differ
    let n = BigInt(this.clock.now()) * 1_000_000n + (this.nanoSeq++ % 1_000_000n);
    if (n <= this.lastNano) n = this.lastNano + 1n;
    this.lastNano = n;
    return `${objName}.${n.toString(16)}`;
  }

  private async write(ev: CoreEvent): Promise<void> {
    const r = ev.involvedObject;
    const key = JSON.stringify([ev.source.component, ev.source.host, r.kind, r.namespace, r.name, r.uid, r.apiVersion, ev.type, ev.reason, ev.message]);
    const now = this.clock.now();
    const prev = this.seen.get(key);
    const window = this.opts.dedupWindowMs ?? 10 * 60_000;
    const attempts = this.opts.maxAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        if (prev && now - prev.lastSeenMs <= window) {
          const count = prev.count + 1;
          try {
            await this.opts.client.patch(eventsResource, prev.namespace, prev.name, { count, lastTimestamp: ev.lastTimestamp, message: ev.message }, 'merge');
            this.remember(key, { ...prev, count, lastSeenMs: now });
            return;
          } catch (e) {
            if (!isStatusError(e, 'NotFound')) throw e;
            // the event was removed meanwhile (TTL): write it again under the same name
            const again: CoreEvent = { ...ev, metadata: { ...ev.metadata, name: prev.name, namespace: prev.namespace }, count, firstTimestamp: prev.firstTimestamp };
            await this.opts.client.create(eventsResource, prev.namespace, again);
            this.remember(key, { ...prev, count, lastSeenMs: now });
            return;
          }
        }
        const name = this.eventName(r.name!);
        const created: CoreEvent = { ...ev, metadata: { ...ev.metadata, name } };
        await this.opts.client.create(eventsResource, created.metadata!.namespace, created);
        this.remember(key, { name, namespace: created.metadata!.namespace!, count: 1, firstTimestamp: ev.firstTimestamp, lastSeenMs: now });
        return;
      } catch (e) {
        const permanent = e instanceof StatusError && e.code >= 400 && e.code < 500 && e.code !== 429;
        if (permanent || attempt >= attempts) { try { this.opts.onError?.(e, ev); } catch { /* ignore */ } return; }
        await sleep(this.clock, 1000 * attempt);
      }
    }
  }

  private remember(key: string, s: Seen): void {
    this.seen.delete(key);
    this.seen.set(key, s);
    const max = this.opts.cacheSize ?? 4096;
    while (this.seen.size > max) this.seen.delete(this.seen.keys().next().value!);
  }
}
