// NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in equal
// fractions after placing the pod (1 - standard deviation of the fractions).
import { MaxNodeScore, type NodeInfo, type PodInfo, type ScorePlugin } from '../../framework.js';

export function balancedScore(cpuFraction: number, memFraction: number): number {
  const f1 = Math.min(cpuFraction, 1);
  const f2 = Math.min(memFraction, 1);
  const std = Math.abs(f1 - f2) / 2;
  return Math.trunc((1 - std) * MaxNodeScore);
}

export class BalancedAllocation implements ScorePlugin {
  readonly name = 'NodeResourcesBalancedAllocation';
  constructor(readonly weight = 1) {}
  score(pod: PodInfo, n: NodeInfo): number {
    const a = n.allocatable;
    if (a.milliCPU === 0 || a.memory === 0) return 0;
    return balancedScore((n.requested.milliCPU + pod.requests.milliCPU) / a.milliCPU, (n.requested.memory + pod.requests.memory) / a.memory);
  }
}
