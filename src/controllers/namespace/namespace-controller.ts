// Namespace controller: empties a namespace that is being deleted, then lets it go, as upstream's
// namespace controller does.
//
// sync(name): the namespace has a deletionTimestamp and still carries the `kubernetes` finalizer in
// spec.finalizers → discover every namespaced resource the server serves (GET /api/v1, /apis, and
// each group's preferred version), delete the collection of each (DELETE collection, or list +
// delete for resources without `deletecollection`), list again to see what is left, write the
// namespace's deletion conditions, and once nothing is left remove `kubernetes` through
// PUT /api/v1/namespaces/<name>/finalize (the server deletes the namespace when no finalizer is
// left). While content remains (pods finishing their grace period, objects held by finalizers)
// the namespace is looked at again: at once when one of its pods goes away, otherwise after a delay.
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { Clock, Informer, ResourceRef, RestClient } from '../../client/index.js';
import { WorkQueue, realClock, resourcePath, runWorkers, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';

export const FinalizerKubernetes = 'kubernetes';

const namespacesRes: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };
const podsRes: ResourceRef = { group: '', version: 'v1', plural: 'pods' };

interface APIResource { name: string; namespaced: boolean; kind: string; verbs: string[] }
interface DiscoveredResource extends ResourceRef { kind: string; deleteCollection: boolean }

interface NamespaceCondition { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string; lastTransitionTime?: string }

export interface NamespaceControllerOptions {
  client: RestClient;
  informerFor(res: ResourceRef): Informer;
  clock?: Clock;
  workers?: number;
  /** how long to wait before looking again at a namespace whose content is not gone yet (default 2 s) */
  recheckMs?: number;
  /** how long discovery results are reused (default 10 s) */
  discoveryTtlMs?: number;
  onError?(err: unknown): void;
}

export class NamespaceController {
  readonly queue: WorkQueue<string>;
  private readonly clock: Clock;
  private namespaces!: Informer;
  private discovered?: { at: number; resources: DiscoveredResource[] };

  constructor(private readonly opts: NamespaceControllerOptions) {
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue<string>({ name: 'namespace', clock: this.clock });
  }

  async run(signal: AbortSignal): Promise<void> {
    this.namespaces = this.opts.informerFor(namespacesRes);
    const pods = this.opts.informerFor(podsRes);
    const offs = [
      this.namespaces.addEventHandler({
        onAdd: (o) => { if (o.metadata?.deletionTimestamp) this.queue.add(o.metadata.name!); },
        onUpdate: (_a, o) => { if (o.metadata?.deletionTimestamp) this.queue.add(o.metadata.name!); },
      }),
      // a pod leaving a terminating namespace may be the last thing it waits for
      pods.addEventHandler({
        onDelete: (p) => {
          const ns = p.metadata?.namespace;
          if (ns && this.namespaces.indexer.getByKey(ns)?.metadata?.deletionTimestamp) this.queue.add(ns);
        },
      }),
    ];
    signal.addEventListener('abort', () => offs.forEach((f) => f()), { once: true });
    if (!(await waitForCacheSync(signal, this.namespaces, pods))) return;
    await runWorkers(this.queue, this.opts.workers ?? 2, (name) => this.sync(name), signal, {
      onError: (name, e) => { if (this.opts.onError) this.opts.onError(e); else console.error(`namespace controller: ${name}:`, e); },
    });
  }

  async sync(name: string): Promise<void> {
    const cached = this.namespaces.indexer.getByKey(name);
    if (!cached?.metadata?.deletionTimestamp) return;
    // read the namespace live: the cache may lag behind a finalize that already happened
    let ns: KObject;
    try {
      ns = await this.opts.client.get(namespacesRes, undefined, name);
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return;
      throw e;
    }
    if (!ns.metadata?.deletionTimestamp) return;
    const finalizers = ((ns.spec as { finalizers?: string[] } | undefined)?.finalizers) ?? [];
    if (!finalizers.includes(FinalizerKubernetes)) return;

    const conditions: NamespaceCondition[] = [];
    let resources: DiscoveredResource[];
    try {
      resources = await this.discover();
      conditions.push({ type: 'NamespaceDeletionDiscoveryFailure', status: 'False', reason: 'ResourcesDiscovered', message: 'All resources successfully discovered' });
    } catch (e) {
      await this.writeConditions(ns, [{ type: 'NamespaceDeletionDiscoveryFailure', status: 'True', reason: 'DiscoveryFailed', message: `Discovery failed for some groups: ${String((e as Error).message ?? e)}` }]);
      throw e;
    }
    conditions.push({ type: 'NamespaceDeletionGroupVersionParsingFailure', status: 'False', reason: 'ParsedGroupVersions', message: 'All legacy kube types successfully parsed' });

    const failures: string[] = [];
    const remaining = new Map<string, number>(); // resource → count
    const finalizersLeft = new Map<string, number>(); // finalizer → count
    let podsTerminating = false;
    for (const res of resources) {
      try {
        const left = await this.deleteAllOf(res, name);
        if (left.length) {
          remaining.set(res.group ? `${res.plural}.${res.group}` : res.plural, left.length);
          for (const o of left) {
            for (const f of o.metadata?.finalizers ?? []) finalizersLeft.set(f, (finalizersLeft.get(f) ?? 0) + 1);
            if (res.plural === 'pods' && !res.group && o.metadata?.deletionTimestamp) podsTerminating = true;
          }
        }
      } catch (e) {
        if (isStatusError(e, 'NotFound') || isStatusError(e, 'MethodNotAllowed')) continue;
        failures.push(`${res.plural}${res.group ? '.' + res.group : ''}: ${String((e as Error).message ?? e)}`);
      }
    }
    conditions.push(failures.length
      ? { type: 'NamespaceDeletionContentFailure', status: 'True', reason: 'ContentDeletionFailed', message: `Failed to delete all resource types, ${failures.length} remaining: ${failures.join(', ')}` }
      : { type: 'NamespaceDeletionContentFailure', status: 'False', reason: 'ContentDeleted', message: 'All content successfully deleted, may be waiting on finalization' });
    conditions.push(remaining.size
      ? { type: 'NamespaceContentRemaining', status: 'True', reason: 'SomeResourcesRemain', message: `Some resources are remaining: ${[...remaining].sort().map(([r, n]) => `${r} has ${n} resource instances`).join(', ')}` }
      : { type: 'NamespaceContentRemaining', status: 'False', reason: 'ContentRemoved', message: 'All content successfully removed' });
    conditions.push(finalizersLeft.size
      ? { type: 'NamespaceFinalizersRemaining', status: 'True', reason: 'SomeFinalizersRemain', message: `Some content in the namespace has finalizers remaining: ${[...finalizersLeft].sort().map(([f, n]) => `${f} in ${n} resource instances`).join(', ')}` }
      : { type: 'NamespaceFinalizersRemaining', status: 'False', reason: 'ContentHasNoFinalizers', message: 'All content-preserving finalizers finished' });
    ns = (await this.writeConditions(ns, conditions)) ?? ns;

    if (failures.length) throw new Error(`namespace ${name}: ${failures.join('; ')}`);
    if (remaining.size) {
      // pods finishing their grace period re-queue us on deletion; look again anyway in case
      this.queue.addAfter(name, (this.opts.recheckMs ?? 2000) * (podsTerminating ? 2 : 1));
      return;
    }
    await this.finalize(ns);
  }

  /** Deletes every object of res in ns; returns the objects still there afterwards. */
  private async deleteAllOf(res: DiscoveredResource, ns: string): Promise<KObject[]> {
    const before = await this.opts.client.list(res, ns);
    if (before.items.length === 0) return [];
    // what is already being deleted is waiting for its finalizers or grace period: do not touch it again
    if (before.items.every((o) => o.metadata?.deletionTimestamp)) return before.items;
    if (res.deleteCollection) {
      await this.opts.client.raw('DELETE', resourcePath(res, ns), { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' });
    } else {
      for (const o of before.items) {
        if (o.metadata?.deletionTimestamp) continue;
        try {
          await this.opts.client.delete(res, ns, o.metadata!.name!, { propagationPolicy: 'Background', preconditions: { uid: o.metadata!.uid } });
        } catch (e) {
          if (!isStatusError(e, 'NotFound') && !isStatusError(e, 'Conflict')) throw e;
        }
      }
    }
    return (await this.opts.client.list(res, ns)).items;
  }

  /** Namespaced resources that can be listed and deleted, one version per group (the preferred one). */
  private async discover(): Promise<DiscoveredResource[]> {
    const now = this.clock.now();
    if (this.discovered && now - this.discovered.at < (this.opts.discoveryTtlMs ?? 10_000)) return this.discovered.resources;
    const out: DiscoveredResource[] = [];
    const seenStorage = new Set<string>();
    const take = (group: string, version: string, list: { resources?: APIResource[] }): void => {
      for (const r of list.resources ?? []) {
        if (r.name.includes('/') || !r.namespaced) continue;
        if (!r.verbs.includes('list') || !(r.verbs.includes('delete') || r.verbs.includes('deletecollection'))) continue;
        const key = `${group}/${r.name}`;
        if (seenStorage.has(key)) continue;
        seenStorage.add(key);
        out.push({ group, version, plural: r.name, kind: r.kind, deleteCollection: r.verbs.includes('deletecollection') });
      }
    };
    const core = (await this.opts.client.raw('GET', '/api/v1')) as { resources?: APIResource[] };
    take('', 'v1', core);
    const groups = (await this.opts.client.raw('GET', '/apis')) as { groups?: { name: string; preferredVersion?: { version: string }; versions?: { version: string }[] }[] };
    for (const g of groups.groups ?? []) {
      const version = g.preferredVersion?.version ?? g.versions?.[0]?.version;
      if (!version) continue;
      take(g.name, version, (await this.opts.client.raw('GET', `/apis/${g.name}/${version}`)) as { resources?: APIResource[] });
    }
    // events are stored once and served by two groups: delete them once
    const res = out.filter((r) => !(r.group === 'events.k8s.io' && r.plural === 'events' && out.some((x) => x.group === '' && x.plural === 'events')));
    this.discovered = { at: now, resources: res };
    return res;
  }

  /** Writes the deletion conditions when they changed; returns the namespace written (or undefined). */
  private async writeConditions(ns: KObject, conds: NamespaceCondition[]): Promise<KObject | undefined> {
    const status = (ns.status ?? {}) as { phase?: string; conditions?: NamespaceCondition[] };
    const old = status.conditions ?? [];
    const now = new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    let changed = false;
    const next = old.filter((c) => !conds.some((n) => n.type === c.type));
    for (const c of conds) {
      const prev = old.find((o) => o.type === c.type);
      if (prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message) { next.push(prev); continue; }
      changed = true;
      next.push({ ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime ?? now : now });
    }
    if (!changed) return undefined;
    const order = ['NamespaceDeletionDiscoveryFailure', 'NamespaceDeletionGroupVersionParsingFailure', 'NamespaceDeletionContentFailure', 'NamespaceContentRemaining', 'NamespaceFinalizersRemaining'];
    next.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
    const obj = structuredClone(ns);
    obj.status = { ...status, conditions: next };
    try {
      return await this.opts.client.updateStatus(namespacesRes, undefined, obj);
    } catch (e) {
      if (isStatusError(e, 'Conflict') || isStatusError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  private async finalize(ns: KObject): Promise<void> {
    const name = ns.metadata!.name!;
    for (let attempt = 0; attempt < 5; attempt++) {
      const obj = structuredClone(ns);
      const spec = (obj.spec ?? {}) as { finalizers?: string[] };
      spec.finalizers = (spec.finalizers ?? []).filter((f) => f !== FinalizerKubernetes);
      obj.spec = spec;
      try {
        await this.opts.client.raw('PUT', `/api/v1/namespaces/${encodeURIComponent(name)}/finalize`, obj);
        return;
      } catch (e) {
        if (isStatusError(e, 'NotFound')) {
          // gone — or a server that does not route namespaces/<name>/finalize: then spec.finalizers
          // is written with a plain update of the namespace
          try { ns = await this.opts.client.get(namespacesRes, undefined, name); } catch (e2) { if (isStatusError(e2, 'NotFound')) return; throw e2; }
          const plain = structuredClone(ns);
          plain.spec = { ...(plain.spec as object), finalizers: ((ns.spec as { finalizers?: string[] } | undefined)?.finalizers ?? []).filter((f) => f !== FinalizerKubernetes) };
          try { await this.opts.client.update(namespacesRes, undefined, plain); return; } catch (e3) {
            if (isStatusError(e3, 'NotFound')) return;
            if (!isStatusError(e3, 'Conflict')) throw e3;
          }
        } else if (!isStatusError(e, 'Conflict')) throw e;
        ns = await this.opts.client.get(namespacesRes, undefined, name);
      }
    }
    throw new Error(`namespace ${name}: finalize kept conflicting`);
  }
}

/** Runs the namespace controller on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<NamespaceControllerOptions> = {}): Promise<void> {
  await new NamespaceController({ client: ctx.client, informerFor: (r) => ctx.informers.informerFor(r), clock: ctx.clock, ...opts }).run(signal);
}
