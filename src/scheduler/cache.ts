// The scheduler's cache of nodes and the pods placed on them, as upstream's internal cache:
// informer events add/update/remove nodes and assigned pods; the scheduler "assumes" a pod on a
// node the moment it picks it (so the next pod already sees the resources taken) and either the
// informer later confirms it (the binding arrived) or a failed bind forgets it.
// Everything is single-threaded, so the cache itself serves as the cycle's snapshot.
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import type { Snapshot } from './framework.js';
import { NodeInfo, PodInfo } from './node-info.js';

export class SchedulerCache implements Snapshot {
  private readonly nodes = new Map<string, NodeInfo>();
  /** pod key → node name it is counted on */
  private readonly podNode = new Map<string, string>();
  /** pods assumed and not yet confirmed by the informer */
  private readonly assumed = new Set<string>();
  private list: NodeInfo[] | null = null;
  private affinityList: NodeInfo[] | null = null;
  private antiAffinityList: NodeInfo[] | null = null;
  private readonly nsLabels = new Map<string, Record<string, string>>();

  // --- Snapshot -------------------------------------------------------------------------------
  nodeInfoList(): readonly NodeInfo[] {
    if (!this.list) {
      this.list = [];
      for (const n of this.nodes.values()) if (n.node) this.list.push(n);
    }
    return this.list;
  }
  havePodsWithAffinityList(): readonly NodeInfo[] {
    this.affinityList ??= this.nodeInfoList().filter((n) => n.podsWithAffinity > 0);
    return this.affinityList;
  }
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[] {
    this.antiAffinityList ??= this.nodeInfoList().filter((n) => n.podsWithRequiredAntiAffinity > 0);
    return this.antiAffinityList;
  }
  get(nodeName: string): NodeInfo | undefined {
    const n = this.nodes.get(nodeName);
    return n?.node ? n : undefined;
  }
  namespaceLabels(namespace: string): Record<string, string> | undefined { return this.nsLabels.get(namespace); }
  setNamespaceLabels(namespace: string, labels: Record<string, string> | undefined): void {
    if (labels) this.nsLabels.set(namespace, labels); else this.nsLabels.delete(namespace);
  }

  get nodeCount(): number { return this.nodeInfoList().length; }
  get podCount(): number { return this.podNode.size; }
  isAssumed(podKey: string): boolean { return this.assumed.has(podKey); }
  nodeOf(podKey: string): string | undefined { return this.podNode.get(podKey); }

  // --- nodes ----------------------------------------------------------------------------------
  addOrUpdateNode(node: Node): NodeInfo {
    const name = node.metadata!.name!;
    let ni = this.nodes.get(name);
    const isNew = !ni?.node;
    if (!ni) { ni = new NodeInfo(name); this.nodes.set(name, ni); }
    ni.setNode(node);
    if (isNew) this.invalidate();
    return ni;
  }

  removeNode(name: string): void {
    const ni = this.nodes.get(name);
    if (!ni) return;
    // pods may still point at it until their deletion arrives: keep a node-less entry then
    if (ni.pods.size > 0) ni.node = undefined;
    else this.nodes.delete(name);
    this.invalidate();
  }

  // --- pods -----------------------------------------------------------------------------------
  /** Counts pi on nodeName before the binding is confirmed. */
  assumePod(pi: PodInfo, nodeName: string): void {
    this.place(pi, nodeName);
    this.assumed.add(pi.key);
  }

  /** Drops an assumed pod (its bind failed). */
  forgetPod(podKey: string): void {
    if (!this.assumed.delete(podKey)) return;
    this.unplace(podKey);
  }

  /** An assigned pod seen by the informer (add or update): confirms an assumption or records it. */
  addOrUpdatePod(pod: Pod): void {
    const pi = new PodInfo(pod);
    this.assumed.delete(pi.key);
    this.place(pi, pod.spec!.nodeName!);
  }

  removePod(podKey: string): void {
    this.assumed.delete(podKey);
    this.unplace(podKey);
  }

  private place(pi: PodInfo, nodeName: string): void {
    const prev = this.podNode.get(pi.key);
    if (prev !== undefined) this.unplace(pi.key);
    let ni = this.nodes.get(nodeName);
    if (!ni) { ni = new NodeInfo(nodeName); this.nodes.set(nodeName, ni); }
    ni.addPod(pi);
    this.podNode.set(pi.key, nodeName);
    if (pi.hasAffinity) this.affinityList = this.antiAffinityList = null;
  }

  private unplace(podKey: string): void {
    const nodeName = this.podNode.get(podKey);
    if (nodeName === undefined) return;
    this.podNode.delete(podKey);
    const ni = this.nodes.get(nodeName);
    const pi = ni?.removePod(podKey);
    if (pi?.hasAffinity) this.affinityList = this.antiAffinityList = null;
    if (ni && !ni.node && ni.pods.size === 0) this.nodes.delete(nodeName);
  }

  private invalidate(): void { this.list = this.affinityList = this.antiAffinityList = null; }
}
