// Builders for scheduler unit tests: nodes, pods and an in-memory cache/snapshot.
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import { SchedulerCache } from '../cache.js';
import { NodeInfo, PodInfo } from '../node-info.js';

export function makeNode(name: string, o: { cpu?: string; memory?: string; pods?: string; labels?: Record<string, string>; taints?: NonNullable<Node['spec']>['taints']; unschedulable?: boolean; extra?: Record<string, string> } = {}): Node {
  const r = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110', 'ephemeral-storage': '100Gi', ...(o.extra ?? {}) };
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) } },
    spec: { taints: o.taints, unschedulable: o.unschedulable },
    status: { capacity: r, allocatable: r },
  };
}

export function makePod(name: string, o: { ns?: string; cpu?: string; memory?: string; labels?: Record<string, string>; node?: string; spec?: Partial<NonNullable<Pod['spec']>>; owner?: string } = {}): Pod {
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  return {
    metadata: {
      name, namespace: o.ns ?? 'default', labels: o.labels,
      ownerReferences: o.owner ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner, uid: `uid-${o.owner}`, controller: true }] : undefined,
    },
    spec: { containers: [{ name: 'c', image: 'x', resources: { requests } }], nodeName: o.node, ...(o.spec ?? {}) },
  };
}

export function nodeInfo(node: Node, ...pods: Pod[]): NodeInfo {
  const ni = new NodeInfo(node.metadata!.name!, node);
  for (const p of pods) ni.addPod(new PodInfo(p));
  return ni;
}

/** A cache holding the nodes and the (assigned) pods. */
export function snapshot(nodes: Node[], pods: Pod[] = []): SchedulerCache {
  const c = new SchedulerCache();
  for (const n of nodes) c.addOrUpdateNode(n);
  for (const p of pods) c.addOrUpdatePod(p);
  return c;
}
