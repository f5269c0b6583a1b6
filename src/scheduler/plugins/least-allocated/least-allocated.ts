// LeastAllocated (NodeResourcesFit's default scoring strategy): prefers nodes with the most
// cpu and memory left after placing the pod — spreads load.
import { MaxNodeScore, type NodeInfo, type PodInfo, type ScorePlugin } from '../../framework.js';

export function leastRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0 || requested > capacity) return 0;
  return Math.floor(((capacity - requested) * MaxNodeScore) / capacity);
}

export class LeastAllocated implements ScorePlugin {
  readonly name = 'NodeResourcesLeastAllocated';
  constructor(readonly weight = 1) {}
  score(pod: PodInfo, n: NodeInfo): number {
    const cpu = leastRequestedScore(n.nonZeroCPU + pod.nonZeroCPU, n.allocatable.milliCPU);
    const mem = leastRequestedScore(n.nonZeroMem + pod.nonZeroMem, n.allocatable.memory);
    return Math.floor((cpu + mem) / 2);
  }
}
