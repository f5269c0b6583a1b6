// MostAllocated (the bin-packing scoring strategy): prefers nodes with the most cpu and memory
// already requested, so pods pack onto few nodes.
import { MaxNodeScore, type NodeInfo, type PodInfo, type ScorePlugin } from '../../framework.js';

export function mostRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0) return 0;
  if (requested > capacity) requested = capacity;
  return Math.floor((requested * MaxNodeScore) / capacity);
}

export class MostAllocated implements ScorePlugin {
  readonly name = 'NodeResourcesMostAllocated';
  constructor(readonly weight = 1) {}
  score(pod: PodInfo, n: NodeInfo): number {
    const cpu = mostRequestedScore(n.nonZeroCPU + pod.nonZeroCPU, n.allocatable.milliCPU);
    const mem = mostRequestedScore(n.nonZeroMem + pod.nonZeroMem, n.allocatable.memory);
    return Math.floor((cpu + mem) / 2);
  }
}
