// NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods that tolerate the
// node.kubernetes.io/unschedulable:NoSchedule taint.
import { unresolvable, type FilterPlugin, type NodeInfo, type PodInfo, type Status } from '../../framework.js';
import { tolerationsTolerateTaint } from '../taint-toleration/taint-toleration.js';

export const ErrReasonUnschedulable = 'node(s) were unschedulable';
const unschedulableTaint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

export class NodeUnschedulable implements FilterPlugin {
  readonly name = 'NodeUnschedulable';
  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    if (!nodeInfo.node?.spec?.unschedulable) return null;
    if (tolerationsTolerateTaint(pod.pod.spec?.tolerations, unschedulableTaint)) return null;
    return unresolvable(ErrReasonUnschedulable);
  }
}
