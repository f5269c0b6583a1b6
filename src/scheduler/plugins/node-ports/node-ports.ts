// NodePorts: a pod's hostPorts must be free on the node (same protocol and port, overlapping
// hostIP; 0.0.0.0 overlaps every address).
import { unschedulable, type FilterPlugin, type PreFilterResult, type NodeInfo, type PodInfo, type Status } from '../../framework.js';
import type { HostPort } from '../../node-info.js';

export const ErrReasonNodePorts = "node(s) didn't have free ports for the requested pod ports";

export function portsConflict(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.protocol !== b.protocol) return false;
  return a.hostIP === b.hostIP || a.hostIP === '0.0.0.0' || b.hostIP === '0.0.0.0';
}

export class NodePorts implements FilterPlugin {
  readonly name = 'NodePorts';
  /** upstream's PreFilter Skip: a pod without host ports cannot clash */
  preFilter(pod: PodInfo): PreFilterResult { return pod.hostPorts.length === 0 ? 'skip' : null; }
  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    if (pod.hostPorts.length === 0 || nodeInfo.usedPorts.length === 0) return null;
    for (const want of pod.hostPorts) {
      for (const used of nodeInfo.usedPorts) if (portsConflict(want, used)) return unschedulable(ErrReasonNodePorts);
    }
    return null;
  }
}
