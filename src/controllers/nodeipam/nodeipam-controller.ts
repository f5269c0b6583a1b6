// Node IPAM controller, as upstream's node-ipam-controller with the range allocator: every Node
// without spec.podCIDR gets the next free range (a /24 by default) out of the cluster CIDR
// (10.42.0.0/16 by default, k3s's), written with a merge PATCH of spec.podCIDR and spec.podCIDRs.
// The agent waits for it before it builds its pod network.
//
// No range is handed out twice: the set of used ranges is rebuilt from the nodes in the informer
// cache before any allocation (ranges set on nodes by anyone, e.g. an agent given a static pod CIDR,
// count as used), a range handed out is held for its node until the node shows it (or is deleted),
// so a stale cache or a failed PATCH cannot give it to another node, and a deleted node's range is
// released. When the cluster CIDR is used up, the node gets a `CIDRNotAvailable` event (upstream's
// reason, type Warning here) and waits: releasing a range wakes the waiting nodes.
//
// Level-triggered: handlers note what nodes hold and enqueue node names; sync(name) allocates and
// patches. Options (from the controller manager's per-controller options, key "nodeipam"):
// clusterCIDR, nodeCIDRMaskSize, workers. IPv4 only: IPv6 entries of podCIDRs are ignored.
import type { Node } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { EventRecorder, Informer, PatchType, ResourceRef } from '../../client/index.js';
import { WorkQueue, runWorkers } from '../../client/index.js';
import type { ControllerContext } from '../context.js';
import { CidrSet } from './cidr-set.js';

export const controllerName = 'node-ipam-controller';
const nodesRes: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

export const defaultClusterCIDR = '10.42.0.0/16';
export const defaultNodeCIDRMaskSize = 24;

type NodeObj = KObject & Pick<Node, 'spec'>;

/** What the controller needs of a client; RestClient fits. */
export interface NodeIpamClient {
  patch<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, patch: unknown, type: PatchType): Promise<T>;
}

export interface NodeIpamSettings {
  /** the range node pod CIDRs come from (default 10.42.0.0/16) */
  clusterCIDR?: string;
  /** the prefix length of each node's range (default 24) */
  nodeCIDRMaskSize?: number;
  /** parallel syncs (default 2) */
  workers?: number;
}

export interface NodeIpamOptions extends NodeIpamSettings {
  client: NodeIpamClient;
  nodeInformer: Informer<NodeObj>;
  recorder?: Pick<EventRecorder, 'event'>;
  onError?(name: string, err: unknown): void;
}

/** The IPv4 pod CIDRs a node has (podCIDRs, else podCIDR). */
function podCIDRsOf(node: NodeObj): string[] {
  const spec = node.spec ?? {};
  const all = spec.podCIDRs?.length ? spec.podCIDRs : spec.podCIDR ? [spec.podCIDR] : [];
  return all.filter((c) => !c.includes(':'));
}

export class NodeIpamController {
  readonly queue = new WorkQueue<string>({ name: 'nodeipam' });
  readonly cidrs: CidrSet;
  /** node name → the ranges it holds: seen on the node, or handed out and being written */
  private readonly held = new Map<string, string[]>();
  /** nodes that found no free range; woken when one is released */
  private readonly waiting = new Set<string>();

  constructor(private readonly opts: NodeIpamOptions) {
    this.cidrs = new CidrSet(opts.clusterCIDR ?? defaultClusterCIDR, opts.nodeCIDRMaskSize ?? defaultNodeCIDRMaskSize);
    opts.nodeInformer.addEventHandler({
      onAdd: (n) => this.observe(n),
      onUpdate: (_o, n) => this.observe(n),
      onDelete: (n) => this.drop(n.metadata!.name!),
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    if (!(await this.opts.nodeInformer.waitForSync(signal))) return;
    // every range already on a node is marked before the first allocation (the handlers did it as
    // the cache filled; this pass makes it independent of handler order)
    for (const n of this.opts.nodeInformer.indexer.list()) this.observe(n);
    await runWorkers(this.queue, this.opts.workers ?? 2, (name) => this.sync(name), signal, {
      onError: (name, e) => {
        if (this.opts.onError) this.opts.onError(name, e);
        else if (!isStatusError(e, 'Conflict')) console.error(`${controllerName}: sync ${name}: ${e instanceof Error ? e.message : String(e)}`);
      },
    });
  }

  private observe(node: NodeObj): void {
    const name = node.metadata!.name!;
    const cidrs = podCIDRsOf(node);
    if (cidrs.length) {
      this.hold(name, cidrs);
      this.waiting.delete(name);
    } else {
      this.queue.add(name);
    }
  }

  private hold(name: string, cidrs: string[]): void {
    const prev = this.held.get(name) ?? [];
    this.held.set(name, cidrs);
    for (const c of cidrs) this.cidrs.occupy(c);
    for (const c of prev) if (!cidrs.includes(c)) this.releaseIfUnheld(c);
  }

  private drop(name: string): void {
    const prev = this.held.get(name) ?? [];
    this.held.delete(name);
    this.waiting.delete(name);
    for (const c of prev) this.releaseIfUnheld(c);
  }

  private releaseIfUnheld(cidr: string): void {
    for (const cs of this.held.values()) if (cs.includes(cidr)) return;
    this.cidrs.release(cidr);
    for (const n of this.waiting) this.queue.add(n);
  }

  /** Gives node `name` a range if it has none. */
  async sync(name: string): Promise<void> {
    const node = this.opts.nodeInformer.indexer.getByKey(name);
    if (!node) { this.drop(name); return; }
    const have = podCIDRsOf(node);
    if (have.length) { this.hold(name, have); this.waiting.delete(name); return; }

    let cidr = this.held.get(name)?.[0];
    if (!cidr) {
      cidr = this.cidrs.allocateNext();
      if (!cidr) {
        if (!this.waiting.has(name)) {
          this.waiting.add(name);
          this.opts.recorder?.event(
            { kind: 'Node', apiVersion: 'v1', name, uid: node.metadata?.uid },
            'Warning', 'CIDRNotAvailable',
            `Node ${name} status is now: CIDRNotAvailable (no free /${this.cidrs.maskSize} left in cluster CIDR ${this.cidrs.clusterCIDR})`,
          );
        }
        return;
      }
      this.hold(name, [cidr]);
    }
    this.waiting.delete(name);
    try {
      await this.opts.client.patch(nodesRes, undefined, name, { spec: { podCIDR: cidr, podCIDRs: [cidr] } }, 'merge');
    } catch (e) {
      // gone: give the range back. Anything else: keep holding it for this node and retry (the
      // PATCH may have been applied; the node's next update tells).
      if (isStatusError(e, 'NotFound')) { this.drop(name); return; }
      throw e;
    }
  }
}

/** Runs the node IPAM controller on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: NodeIpamSettings & Pick<NodeIpamOptions, 'onError'> = {}): Promise<void> {
  const c = new NodeIpamController({
    ...opts,
    client: ctx.client,
    nodeInformer: ctx.informers.informerFor<NodeObj>(nodesRes),
    recorder: ctx.recorder(controllerName),
  });
  ctx.informers.start(signal);
  await c.run(signal);
}
