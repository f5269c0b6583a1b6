// NodeName: a pod that names its node (spec.nodeName) fits only that node.
import { unresolvable, type FilterPlugin, type PreFilterResult, type NodeInfo, type PodInfo, type Status } from '../../framework.js';

export const ErrReasonNodeName = "node(s) didn't match the requested node name";

export class NodeName implements FilterPlugin {
  readonly name = 'NodeName';
  /** nothing to check for a pod that names no node */
  preFilter(pod: PodInfo): PreFilterResult { return pod.pod.spec?.nodeName ? null : 'skip'; }
  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    const want = pod.pod.spec?.nodeName;
    if (want && want !== nodeInfo.name) return unresolvable(ErrReasonNodeName);
    return null;
  }
}
