// Garbage collector: deletes objects whose owners are gone, as upstream's garbage collector does.
//
// An ownership graph (uid → what we know of the object, owner uid → dependent uids) is kept from
// informers over every resource whose objects commonly carry ownerReferences. One work queue of
// uids; sync(uid) looks at the object in the graph and:
//   - it is being deleted with the `orphan` finalizer → strip the ownerReference to it from every
//     dependent, then remove the finalizer;
//   - it is being deleted with the `foregroundDeletion` finalizer → queue its dependents for
//     deletion and, once no dependent that blocks owner deletion is left, remove the finalizer;
//   - it has ownerReferences → check each owner with a live GET (uid mismatch = absent):
//     some owner still exists → drop the references to absent owners (if any);
//     every owner is absent → delete the object (Background, or Foreground when an owner waits in
//     foreground deletion and the object has dependents of its own).
// Events only enqueue uids; all decisions are made in sync from the graph and live reads.
import type { KObject, OwnerReference } from '../../api/types.js';
import { findByKind, findResource } from '../../api/resources.js';
import { isStatusError } from '../../machinery/status.js';
import type { Informer, ResourceRef, RestClient } from '../../client/index.js';
import { WorkQueue, runWorkers, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';

/** Resources the collector watches (dependents and owners). */
export const gcResources: ReadonlyArray<ResourceRef & { namespaced: boolean }> = [
  ['', 'v1', 'pods'], ['', 'v1', 'services'], ['', 'v1', 'endpoints'], ['', 'v1', 'configmaps'], ['', 'v1', 'secrets'],
  ['', 'v1', 'serviceaccounts'], ['', 'v1', 'persistentvolumeclaims'], ['', 'v1', 'replicationcontrollers'], ['', 'v1', 'podtemplates'],
  ['apps', 'v1', 'replicasets'], ['apps', 'v1', 'deployments'], ['apps', 'v1', 'statefulsets'], ['apps', 'v1', 'daemonsets'],
  ['apps', 'v1', 'controllerrevisions'], ['batch', 'v1', 'jobs'], ['batch', 'v1', 'cronjobs'],
  ['discovery.k8s.io', 'v1', 'endpointslices'], ['coordination.k8s.io', 'v1', 'leases'],
  ['policy', 'v1', 'poddisruptionbudgets'], ['networking.k8s.io', 'v1', 'ingresses'],
  ['rbac.authorization.k8s.io', 'v1', 'roles'], ['rbac.authorization.k8s.io', 'v1', 'rolebindings'],
  ['', 'v1', 'nodes'], ['', 'v1', 'namespaces'], ['', 'v1', 'persistentvolumes'],
].map(([group, version, plural]) => {
  const def = findResource(group!, version!, plural!);
  if (!def) throw new Error(`garbage collector: unknown resource ${group}/${version}/${plural}`);
  return { group: def.group, version: def.version, plural: def.plural, namespaced: def.namespaced };
});

export const FinalizerOrphan = 'orphan';
export const FinalizerForeground = 'foregroundDeletion';

interface GraphNode {
  uid: string;
  res: ResourceRef & { namespaced: boolean };
  namespace?: string;
  name: string;
  owners: OwnerReference[];
  deleting: boolean;
  finalizers: string[];
}

export interface GarbageCollectorOptions {
  client: RestClient;
  /** the informer for a resource (shared with other controllers or private) */
  informerFor(res: ResourceRef): Informer;
  workers?: number;
  resources?: ReadonlyArray<ResourceRef & { namespaced: boolean }>;
  onError?(err: unknown): void;
}

export class GarbageCollector {
  private readonly nodes = new Map<string, GraphNode>();
  /** owner uid → dependent uids (whether or not the owner itself is known) */
  private readonly dependents = new Map<string, Set<string>>();
  /** owners found absent by a live GET recently (uid → time) */
  private readonly absent = new Map<string, number>();
  readonly queue = new WorkQueue<string>({ name: 'garbagecollector' });
  private synced = false;

  constructor(private readonly opts: GarbageCollectorOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    const informers: Informer[] = [];
    const removers: Array<() => void> = [];
    for (const res of this.opts.resources ?? gcResources) {
      const inf = this.opts.informerFor(res);
      informers.push(inf);
      removers.push(inf.addEventHandler({
        onAdd: (o) => this.observe(res, o),
        onUpdate: (_old, o) => this.observe(res, o),
        onDelete: (o) => this.forget(o),
      }));
    }
    signal.addEventListener('abort', () => removers.forEach((f) => f()), { once: true });
    if (!(await waitForCacheSync(signal, ...informers))) return;
    this.synced = true;
    // after the caches are complete, every object with owners is checked once
    for (const n of this.nodes.values()) if (n.owners.length || n.deleting) this.queue.add(n.uid);
    await runWorkers(this.queue, this.opts.workers ?? 4, (uid) => this.sync(uid), signal, {
      onError: (uid, e) => this.report(e, uid),
    });
  }

  private report(e: unknown, uid?: string): void {
    if (this.opts.onError) this.opts.onError(e);
    else if (!isStatusError(e, 'Conflict')) console.error(`garbagecollector: ${uid ?? ''}:`, e);
  }

  // ------------------------------------------------------------------ graph upkeep

  private observe(res: ResourceRef & { namespaced: boolean }, o: KObject): void {
    const m = o.metadata ?? {};
    const uid = m.uid;
    if (!uid || !m.name) return;
    const prev = this.nodes.get(uid);
    const node: GraphNode = {
      uid, res, namespace: m.namespace, name: m.name, owners: m.ownerReferences ?? [],
      deleting: !!m.deletionTimestamp, finalizers: m.finalizers ?? [],
    };
    this.nodes.set(uid, node);
    this.absent.delete(uid);
    const before = new Set((prev?.owners ?? []).map((r) => r.uid));
    const after = new Set(node.owners.map((r) => r.uid));
    for (const u of before) if (!after.has(u)) { this.unlink(u, uid); this.enqueueIfDeleting(u); }
    for (const u of after) {
      let s = this.dependents.get(u);
      if (!s) this.dependents.set(u, (s = new Set()));
      s.add(uid);
    }
    if (!this.synced) return;
    // the object itself: being deleted with a GC finalizer, or has an owner we do not know
    if (node.deleting && (node.finalizers.includes(FinalizerOrphan) || node.finalizers.includes(FinalizerForeground))) this.queue.add(uid);
    else if (node.owners.some((r) => { const on = this.nodes.get(r.uid); return !on || on.deleting; })) this.queue.add(uid);
    // a newly seen owner becoming deleting: its dependents must look again
    if (node.deleting && (!prev || !prev.deleting)) for (const d of this.dependents.get(uid) ?? []) this.queue.add(d);
  }

  private forget(o: KObject): void {
    const uid = o.metadata?.uid;
    if (!uid) return;
    const node = this.nodes.get(uid);
    this.nodes.delete(uid);
    for (const r of node?.owners ?? o.metadata?.ownerReferences ?? []) { this.unlink(r.uid, uid); this.enqueueIfDeleting(r.uid); }
    // its dependents have lost an owner
    for (const d of this.dependents.get(uid) ?? []) this.queue.add(d);
  }

  private unlink(ownerUid: string, depUid: string): void {
    const s = this.dependents.get(ownerUid);
    if (!s) return;
    s.delete(depUid);
    if (s.size === 0) this.dependents.delete(ownerUid);
  }

  private enqueueIfDeleting(uid: string): void {
    const n = this.nodes.get(uid);
    if (n?.deleting && this.synced) this.queue.add(uid);
  }

  // ------------------------------------------------------------------ sync

  async sync(uid: string): Promise<void> {
    const node = this.nodes.get(uid);
    if (!node) return;
    if (node.deleting) {
      if (node.finalizers.includes(FinalizerOrphan)) { await this.orphanDependents(node); return; }
      if (node.finalizers.includes(FinalizerForeground)) { await this.deleteDependentsInForeground(node); return; }
      return; // already on its way out
    }
    if (node.owners.length === 0) return;
    await this.attemptToDelete(node);
  }

  /** The live object, or undefined when it is gone or has another uid. */
  private async getLive(res: ResourceRef, ns: string | undefined, name: string, uid: string): Promise<KObject | undefined> {
    try {
      const o = await this.opts.client.get(res, ns, name);
      return o.metadata?.uid === uid ? o : undefined;
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  private async attemptToDelete(node: GraphNode): Promise<void> {
    // the item itself must still be the one we know
    const item = await this.getLive(node.res, node.namespace, node.name, node.uid);
    if (!item || item.metadata?.deletionTimestamp) return;
    const owners = item.metadata?.ownerReferences ?? [];
    if (owners.length === 0) return;
    const solid: OwnerReference[] = [];
    const dangling: OwnerReference[] = [];
    const waiting: OwnerReference[] = [];
    for (const ref of owners) {
      const state = await this.ownerState(ref, node.namespace);
      if (state === 'absent') dangling.push(ref);
      else if (state === 'waiting') waiting.push(ref);
      else solid.push(ref);
    }
    if (solid.length > 0) {
      if (dangling.length === 0 && waiting.length === 0) return;
      // keep the object; forget the owners that are gone or going
      const drop = new Set([...dangling, ...waiting].map((r) => r.uid));
      await this.removeOwnerRefs(node, (r) => drop.has(r.uid));
      return;
    }
    const hasDependents = (this.dependents.get(node.uid)?.size ?? 0) > 0;
    const policy = waiting.length > 0 && hasDependents ? 'Foreground' : 'Background';
    try {
      await this.opts.client.delete(node.res, node.namespace, node.name, { propagationPolicy: policy, preconditions: { uid: node.uid } });
    } catch (e) {
      if (isStatusError(e, 'NotFound') || isStatusError(e, 'Conflict')) return;
      throw e;
    }
  }

  /** 'absent' (gone, or another object with the name), 'waiting' (in foreground deletion), or 'solid'. */
  private async ownerState(ref: OwnerReference, depNamespace: string | undefined): Promise<'absent' | 'waiting' | 'solid'> {
    const seen = this.absent.get(ref.uid);
    if (seen !== undefined) return 'absent';
    const [group, version] = ref.apiVersion.includes('/') ? ref.apiVersion.split('/', 2) as [string, string] : ['', ref.apiVersion];
    const def = findByKind(group, version, ref.kind);
    if (!def) return 'solid'; // a kind we cannot look up: never delete on its account
    let live: KObject | undefined;
    try {
      live = await this.getLive(def, def.namespaced ? depNamespace : undefined, ref.name, ref.uid);
    } catch (e) {
      if (isStatusError(e, 'NotFound')) live = undefined;
      else throw e;
    }
    if (!live) {
      this.rememberAbsent(ref.uid);
      return 'absent';
    }
    const m = live.metadata ?? {};
    if (m.deletionTimestamp && (m.finalizers ?? []).includes(FinalizerForeground)) return 'waiting';
    return 'solid';
  }

  private rememberAbsent(uid: string): void {
    this.absent.set(uid, Date.now());
    if (this.absent.size > 10_000) {
      const oldest = this.absent.keys().next().value;
      if (oldest !== undefined) this.absent.delete(oldest);
    }
  }

  /** Removes the ownerReferences matching drop from the object (read-modify-write, conflict retried by the queue). */
  private async removeOwnerRefs(node: GraphNode, drop: (r: OwnerReference) => boolean): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const live = await this.getLive(node.res, node.namespace, node.name, node.uid);
      if (!live) return;
      const refs = live.metadata?.ownerReferences ?? [];
      const keep = refs.filter((r) => !drop(r));
      if (keep.length === refs.length) return;
      const next = structuredClone(live);
      next.metadata!.ownerReferences = keep;
      try {
        await this.opts.client.update(node.res, node.namespace, next);
        return;
      } catch (e) {
        if (isStatusError(e, 'NotFound')) return;
        if (isStatusError(e, 'Conflict')) continue;
        throw e;
      }
    }
    throw new Error(`could not update ownerReferences of ${node.res.plural} ${node.namespace ?? ''}/${node.name}: conflicts`);
  }

  private async removeFinalizer(node: GraphNode, finalizer: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const live = await this.getLive(node.res, node.namespace, node.name, node.uid);
      if (!live) return;
      const fins = live.metadata?.finalizers ?? [];
      if (!fins.includes(finalizer)) return;
      const next = structuredClone(live);
      next.metadata!.finalizers = fins.filter((f) => f !== finalizer);
      try {
        await this.opts.client.update(node.res, node.namespace, next);
        return;
      } catch (e) {
        if (isStatusError(e, 'NotFound')) return;
        if (isStatusError(e, 'Conflict')) continue;
        throw e;
      }
    }
    throw new Error(`could not remove finalizer ${finalizer} from ${node.res.plural} ${node.namespace ?? ''}/${node.name}: conflicts`);
  }

  private async orphanDependents(owner: GraphNode): Promise<void> {
    const deps = [...(this.dependents.get(owner.uid) ?? [])];
    const failures: unknown[] = [];
    await Promise.all(deps.map(async (d) => {
      const dn = this.nodes.get(d);
      if (!dn) return;
      try { await this.removeOwnerRefs(dn, (r) => r.uid === owner.uid); } catch (e) { failures.push(e); }
    }));
    if (failures.length) throw failures[0];
    await this.removeFinalizer(owner, FinalizerOrphan);
  }

  private async deleteDependentsInForeground(owner: GraphNode): Promise<void> {
    const deps = [...(this.dependents.get(owner.uid) ?? [])];
    let blocking = 0;
    for (const d of deps) {
      const dn = this.nodes.get(d);
      if (!dn) continue;
      const ref = dn.owners.find((r) => r.uid === owner.uid);
      if (ref?.blockOwnerDeletion) blocking++;
      if (!dn.deleting) this.queue.add(d);
    }
    // the queued dependents are deleted by attemptToDelete (owner 'waiting'); each deletion of a
    // dependent re-queues this owner through forget(); when no blocker remains, let the owner go
    if (blocking === 0) await this.removeFinalizer(owner, FinalizerForeground);
  }
}

/** Runs the garbage collector on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<GarbageCollectorOptions> = {}): Promise<void> {
  // the collector reads only metadata; it asks for its informers once the other controllers started
  // in the same turn have asked for theirs, so that it shares their full informers where there are
  // any and watches metadata only where there are none (e.g. ConfigMaps, Secrets)
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (signal.aborted) return;
  await new GarbageCollector({ client: ctx.client, informerFor: (r) => ctx.informers.metadataInformerFor(r), ...opts }).run(signal);
}
