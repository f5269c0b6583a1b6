// One scheduling decision, as upstream's schedulePod: preFilter, then filter nodes starting where
// the last pod stopped (round robin) until enough feasible nodes are found (adaptive
// percentageOfNodesToScore), score them, pick the best (ties broken at random).
// A pod that fits nowhere raises FitError, whose message is upstream's
// "0/3 nodes are available: 3 Insufficient cpu. preemption: …".
import { CycleState, type Framework, type Snapshot, type Status } from './framework.js';
import type { NodeInfo, PodInfo } from './node-info.js';

export const minFeasibleNodesToFind = 100;
export const minFeasibleNodesPercentageToFind = 5;

/**
 * How many feasible nodes to look for: all below 100 nodes; else percentage% of them (adaptive
 * when percentage is 0/undefined: 50 - nodes/125, at least 5), never fewer than 100.
 */
export function numFeasibleNodesToFind(numAllNodes: number, percentage?: number): number {
  if (numAllNodes < minFeasibleNodesToFind) return numAllNodes;
  let pct = percentage ?? 0;
  if (pct >= 100) return numAllNodes;
  if (pct <= 0) {
    pct = 50 - Math.trunc(numAllNodes / 125);
    if (pct < minFeasibleNodesPercentageToFind) pct = minFeasibleNodesPercentageToFind;
  }
  const n = Math.trunc((numAllNodes * pct) / 100);
  return n < minFeasibleNodesToFind ? minFeasibleNodesToFind : n;
}

export interface Diagnosis {
  /** node name → why it was rejected */
  nodeToStatus: Map<string, Status>;
  /** a preFilter rejection (applies to every node) */
  preFilterMsg?: string;
  /** plugins that rejected the pod somewhere */
  unschedulablePlugins: Set<string>;
}

/** "N reason" strings counted over nodes, sorted as upstream sorts them (plain string order). */
function histogram(reasonsPerNode: Iterable<readonly string[]>): string[] {
  const counts = new Map<string, number>();
  for (const reasons of reasonsPerNode) for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const out = [...counts].map(([r, n]) => `${n} ${r}`);
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out;
}

export class FitError extends Error {
  constructor(readonly pod: PodInfo, readonly numAllNodes: number, readonly diagnosis: Diagnosis, readonly postFilterMsg?: string) {
    super(fitErrorMessage(numAllNodes, diagnosis, postFilterMsg));
    this.name = 'FitError';
  }
}

/** Upstream's FitError.Error(). */
export function fitErrorMessage(numAllNodes: number, d: Diagnosis, postFilterMsg?: string): string {
  let msg = `0/${numAllNodes} nodes are available:`;
  if (d.preFilterMsg) msg += ` ${d.preFilterMsg}.`;
  const h = histogram([...d.nodeToStatus.values()].map((s) => s.reasons));
  if (h.length) msg += ` ${h.join(', ')}.`;
  if (postFilterMsg) msg += ` ${postFilterMsg}.`;
  return msg;
}

/**
 * What upstream's default preemption says when it finds nothing to evict. Preemption itself is
 * not implemented: nodes rejected for a resolvable reason are reported as having no victims.
 */
export function preemptionMessage(numAllNodes: number, d: Diagnosis): string {
  const per = [...d.nodeToStatus.values()].map((s) => [s.code === 'UnschedulableAndUnresolvable'
    ? 'Preemption is not helpful for scheduling' : 'No preemption victims found for incoming pod']);
  if (d.preFilterMsg && per.length === 0) return `preemption: 0/${numAllNodes} nodes are available: ${numAllNodes} Preemption is not helpful for scheduling`;
  return `preemption: 0/${numAllNodes} nodes are available: ${histogram(per).join(', ')}`;
}

export interface ScheduleResult {
  nodeName: string;
  evaluatedNodes: number;
  feasibleNodes: number;
}

export interface ScheduleAlgorithmOptions {
  /** percentageOfNodesToScore; 0/undefined = adaptive */
  percentageOfNodesToScore?: number;
  /** for tie-breaking; default Math.random */
  random?: () => number;
}

export class ScheduleAlgorithm {
  private nextStartNodeIndex = 0;
  private readonly random: () => number;

  constructor(private readonly framework: Framework, private readonly opts: ScheduleAlgorithmOptions = {}) {
    this.random = opts.random ?? Math.random;
  }

  /** Picks a node for pod, or throws FitError (or Error when there are no nodes at all). */
  schedule(pod: PodInfo, snapshot: Snapshot): ScheduleResult {
    const all = snapshot.nodeInfoList();
    if (all.length === 0) throw new Error('no nodes available to schedule pods');
    const state = new CycleState();
    const d: Diagnosis = { nodeToStatus: new Map(), unschedulablePlugins: new Set() };
    const pre = this.framework.runPreFilter(pod, state, snapshot);
    if (pre) {
      d.preFilterMsg = pre.reasons.join(', ');
      if (pre.plugin) d.unschedulablePlugins.add(pre.plugin);
      if (pre.code === 'Error') throw new Error(`running PreFilter plugin ${pre.plugin}: ${d.preFilterMsg}`);
      throw new FitError(pod, all.length, d, preemptionMessage(all.length, d));
    }
    const feasible = this.findNodesThatFit(pod, all, state, d);
    if (feasible.length === 0) throw new FitError(pod, all.length, d, preemptionMessage(all.length, d));
    if (feasible.length === 1) return { nodeName: feasible[0].name, evaluatedNodes: d.nodeToStatus.size + 1, feasibleNodes: 1 };
    const scores = this.framework.runScore(pod, feasible, state, snapshot);
    return { nodeName: this.selectHost(feasible, scores), evaluatedNodes: d.nodeToStatus.size + feasible.length, feasibleNodes: feasible.length };
  }

  private findNodesThatFit(pod: PodInfo, all: readonly NodeInfo[], state: CycleState, d: Diagnosis): NodeInfo[] {
    const n = all.length;
    const want = numFeasibleNodesToFind(n, this.opts.percentageOfNodesToScore);
    const feasible: NodeInfo[] = [];
    const start = this.nextStartNodeIndex % n;
    let processed = 0;
    for (; processed < n && feasible.length < want; processed++) {
      const ni = all[(start + processed) % n];
      const s = this.framework.runFilter(pod, ni, state);
      if (s === null) feasible.push(ni);
      else {
        if (s.code === 'Error') throw new Error(`running Filter plugin ${s.plugin}: ${s.reasons.join(', ')}`);
        d.nodeToStatus.set(ni.name, s);
        if (s.plugin) d.unschedulablePlugins.add(s.plugin);
      }
    }
    this.nextStartNodeIndex = (start + processed) % n;
    return feasible;
  }

  /** Highest total; among equals, each is equally likely (reservoir sampling, as upstream). */
  private selectHost(nodes: readonly NodeInfo[], scores: readonly number[]): string {
    let best = 0;
    let ties = 1;
    for (let i = 1; i < nodes.length; i++) {
      if (scores[i] > scores[best]) { best = i; ties = 1; }
      else if (scores[i] === scores[best]) {
        ties++;
        if (Math.floor(this.random() * ties) === 0) best = i;
      }
    }
    return nodes[best].name;
  }
}
