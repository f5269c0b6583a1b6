// NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage, extended resources and one
// pod slot) must fit in what the node has allocatable minus what its pods already request.
import { unschedulable, type FilterPlugin, type NodeInfo, type PodInfo, type Status } from '../../framework.js';

export const ErrReasonTooManyPods = 'Too many pods';
export function insufficient(resource: string): string { return `Insufficient ${resource}`; }

/** Every reason pod does not fit nodeInfo (empty: it fits), in upstream's order. */
export function fitsRequest(pod: PodInfo, nodeInfo: NodeInfo): string[] | null {
  let reasons: string[] | null = null;
  const a = nodeInfo.allocatable;
  const u = nodeInfo.requested;
  if (nodeInfo.pods.size + 1 > a.allowedPodNumber) (reasons ??= []).push(ErrReasonTooManyPods);
  const r = pod.requests;
  if (r.milliCPU === 0 && r.memory === 0 && r.ephemeralStorage === 0 && !r.scalar) return reasons;
  if (r.milliCPU > 0 && r.milliCPU > a.milliCPU - u.milliCPU) (reasons ??= []).push(insufficient('cpu'));
  if (r.memory > 0 && r.memory > a.memory - u.memory) (reasons ??= []).push(insufficient('memory'));
  if (r.ephemeralStorage > 0 && r.ephemeralStorage > a.ephemeralStorage - u.ephemeralStorage) (reasons ??= []).push(insufficient('ephemeral-storage'));
  if (r.scalar) {
    for (const [name, want] of r.scalar) {
      if (want === 0) continue;
      const have = (a.scalar?.get(name) ?? 0) - (u.scalar?.get(name) ?? 0);
      if (want > have) (reasons ??= []).push(insufficient(name));
    }
  }
  return reasons;
}

export class NodeResourcesFit implements FilterPlugin {
  readonly name = 'NodeResourcesFit';
  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    const reasons = fitsRequest(pod, nodeInfo);
    return reasons ? unschedulable(...reasons) : null;
  }
}
