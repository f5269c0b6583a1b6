// The REST client every component uses to reach the API: typed-enough CRUD on any resource,
// subresources, patches of all four kinds, and watch streams decoded into events.
import type { KObject } from '../api/types.js';
import type { Status } from '../machinery/status.js';
import { Transport, type TransportOptions, abortError, toStatusError } from './transport.js';
import { JSONStreamDecoder } from './watch-decoder.js';
import { loadKubeconfig } from './kubeconfig.js';

/** What the client needs of a resource; a ResourceDef from src/api/resources.ts fits. */
export interface ResourceRef { group: string; version: string; plural: string }

export type RestClientOptions = TransportOptions;

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
  signal?: AbortSignal;
  /** ask for the objects' metadata only (a PartialObjectMetadataList, as client-go's metadata client) */
  metadataOnly?: boolean;
}

/** Accept headers of metadata-only reads (client-go's metadata client offers protobuf first; we read JSON) */
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
export const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export interface ListMeta { resourceVersion?: string; continue?: string; remainingItemCount?: number }
export interface ListResult<T extends KObject = KObject> {
  apiVersion?: string;
  kind?: string;
  metadata: ListMeta;
  items: T[];
}

export interface WriteOptions { dryRun?: boolean; fieldManager?: string; signal?: AbortSignal }

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';
export interface PatchOptions { subresource?: string; fieldManager?: string; force?: boolean; dryRun?: boolean; signal?: AbortSignal }

export interface Preconditions { uid?: string; resourceVersion?: string }
export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  gracePeriodSeconds?: number;
  preconditions?: Preconditions;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface WatchOptions {
  resourceVersion?: string;
  labelSelector?: string;
  fieldSelector?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
  /** events carry the objects' metadata only (PartialObjectMetadata) */
  metadataOnly?: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export type WatchEvent<T extends KObject = KObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T }
  | { type: 'ERROR'; object: Status };

export const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

/** `/api/v1` for the core group, `/apis/<group>/<version>` otherwise. */
export function groupVersionPath(res: { group: string; version: string }): string {
  return res.group ? `/apis/${res.group}/${res.version}` : `/api/${res.version}`;
}

/** The path of a collection, object or subresource. ns empty/undefined: cluster scope (or all namespaces). */
export function resourcePath(res: ResourceRef, ns?: string | null, name?: string, subresource?: string): string {
  let p = groupVersionPath(res);
  if (ns) p += `/namespaces/${encodeURIComponent(ns)}`;
  p += `/${res.plural}`;
  if (name !== undefined) {
    if (name === '') throw new Error(`resource name may not be empty (${res.plural})`);
    p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
  }
  return p;
}

function nameOf(obj: KObject): string {
  const n = obj.metadata?.name;
  if (!n) throw new Error('object has no metadata.name');
  return n;
}

export class RestClient {
  readonly transport: Transport;

  constructor(readonly options: RestClientOptions) {
    this.transport = new Transport(options);
  }

  /** Builds a client from a kubeconfig file (current context unless one is named). */
  static fromKubeconfig(path: string, context?: string, overrides: Partial<RestClientOptions> = {}): RestClient {
    return new RestClient({ ...loadKubeconfig(path, context), ...overrides });
  }

  /** Closes idle keep-alive connections. */
  close(): void { this.transport.close(); }

  get<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, name: string, opts: { signal?: AbortSignal; resourceVersion?: string } = {}): Promise<T> {
    return this.transport.requestJSON<T>({ method: 'GET', path: resourcePath(res, ns, name), query: { resourceVersion: opts.resourceVersion }, signal: opts.signal });
  }

  async list<T extends KObject = KObject>(res: ResourceRef, ns?: string | null, opts: ListOptions = {}): Promise<ListResult<T>> {
    const out = await this.transport.requestJSON<ListResult<T>>({
      method: 'GET', path: resourcePath(res, ns),
      query: {
        labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit,
        continue: opts.continue, resourceVersion: opts.resourceVersion, resourceVersionMatch: opts.resourceVersionMatch,
      },
      accept: opts.metadataOnly ? METADATA_LIST_ACCEPT : undefined,
      signal: opts.signal,
    });
    out.items ??= [];
    out.metadata ??= {};
    return out;
  }

  create<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.transport.requestJSON<T>({
      method: 'POST', path: resourcePath(res, ns ?? obj.metadata?.namespace), body: obj,
      query: { dryRun: opts.dryRun ? 'All' : undefined, fieldManager: opts.fieldManager }, signal: opts.signal,
    });
  }

  /** PUT of the whole object; metadata.resourceVersion, when set, is the optimistic-concurrency precondition. */
  update<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.transport.requestJSON<T>({
      method: 'PUT', path: resourcePath(res, ns ?? obj.metadata?.namespace, nameOf(obj)), body: obj,
      query: { dryRun: opts.dryRun ? 'All' : undefined, fieldManager: opts.fieldManager }, signal: opts.signal,
    });
  }

  /** PUT to the status subresource. */
  updateStatus<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.transport.requestJSON<T>({
      method: 'PUT', path: resourcePath(res, ns ?? obj.metadata?.namespace, nameOf(obj), 'status'), body: obj,
      query: { dryRun: opts.dryRun ? 'All' : undefined, fieldManager: opts.fieldManager }, signal: opts.signal,
    });
  }

  /** PATCH; `patch` is an object (a JSON-patch array for 'json'), or a ready-made string body. */
  patch<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType, opts: PatchOptions = {}): Promise<T> {
    return this.transport.requestJSON<T>({
      method: 'PATCH', path: resourcePath(res, ns, name, opts.subresource), body: patch,
      contentType: patchContentTypes[type],
      query: { fieldManager: opts.fieldManager, force: opts.force === undefined ? undefined : String(opts.force), dryRun: opts.dryRun ? 'All' : undefined },
      signal: opts.signal,
    });
  }

  /** DELETE; resolves with what the server returns (the object while it lingers, or a Status). */
  delete<R = KObject | Status>(res: ResourceRef, ns: string | undefined | null, name: string, opts: DeleteOptions = {}): Promise<R> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.dryRun) body.dryRun = ['All'];
    return this.transport.requestJSON<R>({ method: 'DELETE', path: resourcePath(res, ns, name), body, signal: opts.signal });
  }

  /** POST to a subresource, e.g. pods/binding, pods/eviction. */
  createSubresource<R = unknown>(res: ResourceRef, ns: string | undefined | null, name: string, sub: string, body: unknown, opts: { signal?: AbortSignal } = {}): Promise<R> {
    return this.transport.requestJSON<R>({ method: 'POST', path: resourcePath(res, ns, name, sub), body, signal: opts.signal });
  }

  /** GET of a subresource, e.g. deployments/scale. */
  getSubresource<R = unknown>(res: ResourceRef, ns: string | undefined | null, name: string, sub: string, opts: { signal?: AbortSignal } = {}): Promise<R> {
    return this.transport.requestJSON<R>({ method: 'GET', path: resourcePath(res, ns, name, sub), signal: opts.signal });
  }

  /** Any request: the JSON-decoded reply when it is JSON, else its text. Non-2xx → StatusError. */
  async raw(method: string, path: string, body?: unknown, opts: { contentType?: string; signal?: AbortSignal; accept?: string } = {}): Promise<unknown> {
    const r = await this.transport.request({ method, path, body, contentType: opts.contentType, accept: opts.accept, signal: opts.signal });
    const text = r.body.toString('utf8');
    if (/json/.test(String(r.headers['content-type'] ?? '')) && text.length > 0) return JSON.parse(text);
    return text;
  }

  /**
   * Watches a collection. Yields events until the server ends the stream, the signal aborts (ends
   * quietly), or the consumer stops iterating. ERROR events are yielded as they come (their object is
   * a Status; code 410 means the resourceVersion is too old — re-list). A non-2xx reply to the watch
   * request itself throws StatusError.
   */
  watch<T extends KObject = KObject>(res: ResourceRef, ns: string | undefined | null, opts: WatchOptions = {}, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
    const transport = this.transport;
    const path = resourcePath(res, ns);
    return {
      async *[Symbol.asyncIterator]() {
        if (signal?.aborted) return;
        let response;
        try {
          response = await transport.open({
            method: 'GET', path, signal,
            query: {
              watch: 'true', resourceVersion: opts.resourceVersion, labelSelector: opts.labelSelector,
              fieldSelector: opts.fieldSelector, allowWatchBookmarks: opts.allowWatchBookmarks ? 'true' : undefined,
              timeoutSeconds: opts.timeoutSeconds,
            },
            accept: opts.metadataOnly ? METADATA_ACCEPT : undefined,
          }, { streaming: true });
        } catch (e) {
          if (signal?.aborted) return;
          throw e;
        }
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          for await (const c of response) chunks.push(c as Buffer);
          throw toStatusError(status, Buffer.concat(chunks));
        }
        const decoder = new JSONStreamDecoder();
        try {
          for await (const chunk of response) {
            for (const ev of decoder.push(chunk as Buffer)) yield ev as WatchEvent<T>;
          }
          if (decoder.hasPartial() && !signal?.aborted) throw new Error('watch stream ended in the middle of an event');
        } catch (e) {
          if (signal?.aborted) return;
          if (e instanceof Error && (e.name === 'AbortError')) throw abortError();
          throw e;
        } finally {
          response.destroy();
        }
      },
    };
  }
}
