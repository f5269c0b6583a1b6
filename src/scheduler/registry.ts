// The one registry of scheduler plugins: a literal array, in upstream's default order (filters
// run in this order; the first rejection counts). Score weights are upstream's defaults.
import { Framework, type Plugin } from './framework.js';
import { NodeUnschedulable } from './plugins/node-unschedulable/node-unschedulable.js';
import { NodeName } from './plugins/node-name/node-name.js';
import { TaintToleration } from './plugins/taint-toleration/taint-toleration.js';
import { NodeAffinity } from './plugins/node-affinity/node-affinity.js';
import { NodePorts } from './plugins/node-ports/node-ports.js';
import { NodeResourcesFit } from './plugins/node-resources-fit/node-resources-fit.js';
import { PodTopologySpread } from './plugins/pod-topology-spread/pod-topology-spread.js';
import { InterPodAffinity } from './plugins/inter-pod-affinity/inter-pod-affinity.js';
import { LeastAllocated } from './plugins/least-allocated/least-allocated.js';
import { MostAllocated } from './plugins/most-allocated/most-allocated.js';
import { BalancedAllocation } from './plugins/balanced-allocation/balanced-allocation.js';

/** The scoring strategy of resources: spread (default) or bin-pack. */
export type ScoringProfile = 'LeastAllocated' | 'MostAllocated';

export interface ProfileConfig { scoring: ScoringProfile }

interface Entry { name: string; build(cfg: ProfileConfig): Plugin | null }

export const registry: readonly Entry[] = [
  { name: 'NodeUnschedulable', build: () => new NodeUnschedulable() },
  { name: 'NodeName', build: () => new NodeName() },
  { name: 'TaintToleration', build: () => new TaintToleration(3) },
  { name: 'NodeAffinity', build: () => new NodeAffinity(2) },
  { name: 'NodePorts', build: () => new NodePorts() },
  { name: 'NodeResourcesFit', build: () => new NodeResourcesFit() },
  { name: 'PodTopologySpread', build: () => new PodTopologySpread(2) },
  { name: 'InterPodAffinity', build: () => new InterPodAffinity(2) },
  { name: 'NodeResourcesLeastAllocated', build: (c) => (c.scoring === 'LeastAllocated' ? new LeastAllocated(1) : null) },
  { name: 'NodeResourcesMostAllocated', build: (c) => (c.scoring === 'MostAllocated' ? new MostAllocated(1) : null) },
  { name: 'NodeResourcesBalancedAllocation', build: () => new BalancedAllocation(1) },
];

export function buildPlugins(cfg: ProfileConfig): Plugin[] {
  return registry.map((e) => e.build(cfg)).filter((p): p is Plugin => p !== null);
}

export function buildFramework(profileName: string, cfg: ProfileConfig): Framework {
  return new Framework(profileName, buildPlugins(cfg));
}
