// Pod garbage collector, as upstream's pod-garbage-collector. Every gcCheckPeriod it force-deletes
// (gracePeriodSeconds 0):
//   - orphaned pods: bound to a node that does not exist (confirmed by a live GET after the node
//     has been missing from the cache for a quarantine period);
//   - terminating pods whose node is not Ready (or is tainted out-of-service) once their deletion
//     grace period has run out: no agent is left to finish them;
//   - terminating pods that were never bound to a node;
//   - terminated pods (Succeeded/Failed) beyond terminatedPodGCThreshold, oldest first.
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { Clock, Informer, ResourceRef, RestClient, TimerHandle } from '../../client/index.js';
import { keyOf, realClock, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';

const nodesRes: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const podsRes: ResourceRef = { group: '', version: 'v1', plural: 'pods' };

export const TaintNodeOutOfService = 'node.kubernetes.io/out-of-service';

export interface PodGCOptions {
  client: RestClient;
  informerFor(res: ResourceRef): Informer;
  clock?: Clock;
  /** how often to look (upstream 20 s) */
  gcCheckPeriodMs?: number;
  /** terminated pods kept before the oldest are deleted (upstream 12500; 0 disables) */
  terminatedPodGCThreshold?: number;
  /** how long a node must be missing before its pods count as orphaned (upstream 40 s) */
  quarantineMs?: number;
  onError?(err: unknown): void;
}

interface PodView { spec?: { nodeName?: string }; status?: { phase?: string } }

function nodeNameOf(p: KObject): string | undefined { return (p as PodView).spec?.nodeName || undefined; }
function phaseOf(p: KObject): string | undefined { return (p as PodView).status?.phase; }

export class PodGC {
  private readonly clock: Clock;
  private nodes!: Informer;
  private pods!: Informer;
  /** node name → when we first saw pods bound to it while it was missing */
  private readonly missingSince = new Map<string, number>();

  constructor(private readonly opts: PodGCOptions) {
    this.clock = opts.clock ?? realClock;
  }

  async run(signal: AbortSignal): Promise<void> {
    this.nodes = this.opts.informerFor(nodesRes);
    this.pods = this.opts.informerFor(podsRes);
    if (!(await waitForCacheSync(signal, this.nodes, this.pods))) return;
    let timer: TimerHandle | undefined;
    let running: Promise<void> = Promise.resolve();
    const tick = (): void => {
      if (signal.aborted) return;
      running = this.gc().catch((e) => this.report(e)).finally(() => {
        if (!signal.aborted) timer = this.clock.setTimeout(tick, this.opts.gcCheckPeriodMs ?? 20_000);
      });
    };
    tick();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    if (timer) this.clock.clearTimeout(timer);
    await running;
  }

  private report(e: unknown): void {
    if (this.opts.onError) this.opts.onError(e);
    else console.error('pod gc:', e);
  }

  /** One pass. */
  async gc(): Promise<void> {
    const pods = this.pods.indexer.list();
    await this.gcTerminated(pods);
    await this.gcTerminating(pods);
    await this.gcOrphaned(pods);
  }

  private async forceDelete(pod: KObject): Promise<void> {
    try {
      await this.opts.client.delete(podsRes, pod.metadata!.namespace, pod.metadata!.name!, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid } });
    } catch (e) {
      if (isStatusError(e, 'NotFound') || isStatusError(e, 'Conflict')) return;
      this.report(e);
    }
  }

  private async gcTerminated(pods: KObject[]): Promise<void> {
    const threshold = this.opts.terminatedPodGCThreshold ?? 12_500;
    if (threshold <= 0) return;
    const done = pods.filter((p) => (phaseOf(p) === 'Succeeded' || phaseOf(p) === 'Failed') && !p.metadata?.deletionTimestamp);
    const excess = done.length - threshold;
    if (excess <= 0) return;
    done.sort((a, b) => (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? '') || keyOf(a).localeCompare(keyOf(b)));
    for (const p of done.slice(0, excess)) await this.forceDelete(p);
  }

  private nodeGone(node: KObject): boolean {
    const taints = ((node.spec as { taints?: Array<{ key: string; effect: string }> } | undefined)?.taints) ?? [];
    if (taints.some((t) => t.key === TaintNodeOutOfService && t.effect === 'NoExecute')) return true;
    const ready = ((node.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []).find((c) => c.type === 'Ready');
    return !!ready && ready.status !== 'True';
  }

  private async gcTerminating(pods: KObject[]): Promise<void> {
    const now = this.clock.now();
    for (const p of pods) {
      const m = p.metadata ?? {};
      if (!m.deletionTimestamp) continue;
      const nodeName = nodeNameOf(p);
      if (!nodeName) { await this.forceDelete(p); continue; }
      const node = this.nodes.indexer.getByKey(nodeName);
      if (!node) continue; // orphan handling below
      if (!this.nodeGone(node)) continue;
      // deletionTimestamp is the moment the grace period ends
      if (Date.parse(m.deletionTimestamp) <= now) await this.forceDelete(p);
    }
  }

  private async gcOrphaned(pods: KObject[]): Promise<void> {
    const now = this.clock.now();
    const quarantine = this.opts.quarantineMs ?? 40_000;
    const missing = new Set<string>();
    for (const p of pods) {
      const n = nodeNameOf(p);
      if (n && !this.nodes.indexer.getByKey(n)) missing.add(n);
    }
    for (const n of this.missingSince.keys()) if (!missing.has(n)) this.missingSince.delete(n);
    for (const n of missing) {
      const since = this.missingSince.get(n);
      if (since === undefined) { this.missingSince.set(n, now); if (quarantine > 0) continue; }
      else if (now - since < quarantine) continue;
      // the cache may lag: ask the server
      try {
        await this.opts.client.get(nodesRes, undefined, n);
        this.missingSince.delete(n);
        continue;
      } catch (e) {
        if (!isStatusError(e, 'NotFound')) { this.report(e); continue; }
      }
      for (const p of pods) if (nodeNameOf(p) === n) await this.forceDelete(p);
      this.missingSince.delete(n);
    }
  }
}

/** Runs the pod GC on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<PodGCOptions> = {}): Promise<void> {
  await new PodGC({ client: ctx.client, informerFor: (r) => ctx.informers.informerFor(r), clock: ctx.clock, ...opts }).run(signal);
}
