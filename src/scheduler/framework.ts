// The scheduling framework, after kube-scheduler's: plugins implement small extension points
// (preFilter → filter per node → preScore → score per node → normalize), a per-cycle CycleState
// carries what preFilter/preScore computed, and a Status with reasons explains a rejection (the
// reasons end up, counted per node, in the pod's FailedScheduling event).
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import type { NodeInfo, PodInfo } from './node-info.js';

export type { Node, Pod } from 'kubernetes-types/core/v1.js';
export type { NodeInfo, PodInfo } from './node-info.js';

/** Upstream's status codes that matter here. */
export type StatusCode = 'Unschedulable' | 'UnschedulableAndUnresolvable' | 'Error';

/** A plugin's rejection (success is `null`). */
export interface Status {
  code: StatusCode;
  /** one or more reasons, e.g. ['Insufficient cpu', 'Insufficient memory'] */
  reasons: string[];
  /** the plugin that rejected (filled in by the framework) */
  plugin?: string;
}

export function unschedulable(...reasons: string[]): Status { return { code: 'Unschedulable', reasons }; }
export function unresolvable(...reasons: string[]): Status { return { code: 'UnschedulableAndUnresolvable', reasons }; }
export function errorStatus(message: string): Status { return { code: 'Error', reasons: [message] }; }

/** Per-cycle scratch space, keyed by plugin name. */
export class CycleState {
  private readonly data = new Map<string, unknown>();
  /** the filter plugins that run in this cycle: those whose preFilter said 'skip' are left out */
  activeFilters: readonly FilterPlugin[] | undefined;
  read<T>(key: string): T | undefined { return this.data.get(key) as T | undefined; }
  write(key: string, value: unknown): void { this.data.set(key, value); }
}

/** Read-only view of the cluster that plugins see during one cycle. */
export interface Snapshot {
  /** nodes that exist (their Node object is known), in a stable order */
  nodeInfoList(): readonly NodeInfo[];
  /** nodes with at least one pod that has (anti-)affinity terms */
  havePodsWithAffinityList(): readonly NodeInfo[];
  /** nodes with at least one pod that has required anti-affinity terms */
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[];
  get(nodeName: string): NodeInfo | undefined;
  /** labels of a namespace (for namespaceSelector in affinity terms); undefined when unknown */
  namespaceLabels(namespace: string): Record<string, string> | undefined;
}

export interface Plugin { readonly name: string }

/**
 * What preFilter answers: null (go on), a Status (the pod fits nowhere), or 'skip': the plugin has
 * nothing to check for this pod, and its filter is not run on any node in this cycle (upstream's
 * PreFilter Skip status, e.g. NodePorts for a pod without host ports).
 */
export type PreFilterResult = Status | null | 'skip';

export interface PreFilterPlugin extends Plugin {
  /** Computes what filter needs into state; a non-null status rejects the pod on every node. */
  preFilter(pod: PodInfo, state: CycleState, snapshot: Snapshot): PreFilterResult;
}

export interface FilterPlugin extends Plugin {
  preFilter?(pod: PodInfo, state: CycleState, snapshot: Snapshot): PreFilterResult;
  filter(pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): Status | null;
}

export interface ScorePlugin extends Plugin {
  /** relative weight of this plugin's (normalized, 0-100) score */
  readonly weight: number;
  /** Prepares scoring over the feasible nodes; 'skip' means the plugin has nothing to say for this pod. */
  preScore?(pod: PodInfo, nodes: readonly NodeInfo[], state: CycleState, snapshot: Snapshot): Status | null | 'skip';
  /** 0..100 (MaxNodeScore) — or any non-negative raw value when normalize() maps it to 0..100 */
  score(pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): number;
  /** Rewrites scores (one per node, same order as nodes) in place to 0..100. */
  normalize?(pod: PodInfo, nodes: readonly NodeInfo[], scores: number[], state: CycleState): void;
}

export const MaxNodeScore = 100;

export function isFilterPlugin(p: Plugin): p is FilterPlugin { return typeof (p as FilterPlugin).filter === 'function'; }
export function isScorePlugin(p: Plugin): p is ScorePlugin { return typeof (p as ScorePlugin).score === 'function'; }
export function isPreFilterPlugin(p: Plugin): p is PreFilterPlugin { return typeof (p as PreFilterPlugin).preFilter === 'function'; }

/**
 * Upstream's DefaultNormalizeScore: scales so the highest becomes 100 (reverse: the highest becomes 0).
 */
export function defaultNormalizeScore(scores: number[], reverse: boolean): void {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  if (max === 0) {
    if (reverse) for (let i = 0; i < scores.length; i++) scores[i] = MaxNodeScore;
    return;
  }
  for (let i = 0; i < scores.length; i++) {
    let s = Math.floor((MaxNodeScore * scores[i]) / max);
    if (reverse) s = MaxNodeScore - s;
    scores[i] = s;
  }
}

/** The ordered plugin set of one profile, split by extension point. */
export class Framework {
  readonly preFilters: PreFilterPlugin[] = [];
  readonly filters: FilterPlugin[] = [];
  readonly scores: ScorePlugin[] = [];

  constructor(readonly profileName: string, plugins: readonly Plugin[]) {
    for (const p of plugins) {
      if (isFilterPlugin(p)) {
        this.filters.push(p);
        if (typeof p.preFilter === 'function') this.preFilters.push(p as PreFilterPlugin);
      } else if (isPreFilterPlugin(p)) this.preFilters.push(p);
      if (isScorePlugin(p) && p.weight > 0) this.scores.push(p);
    }
  }

  /** Runs every preFilter; records in state which filters run this cycle (those that did not skip). */
  runPreFilter(pod: PodInfo, state: CycleState, snapshot: Snapshot): Status | null {
    let skipped: Set<string> | undefined;
    for (const p of this.preFilters) {
      const s = p.preFilter(pod, state, snapshot);
      if (s === 'skip') { (skipped ??= new Set()).add(p.name); continue; }
      if (s) { s.plugin ??= p.name; return s; }
    }
    state.activeFilters = skipped ? this.filters.filter((f) => !skipped.has(f.name)) : this.filters;
    return null;
  }

  /** First rejection wins, as upstream's RunFilterPlugins; filters skipped at preFilter do not run. */
  runFilter(pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): Status | null {
    const fs = state.activeFilters ?? this.filters;
    for (let i = 0; i < fs.length; i++) {
      const s = fs[i].filter(pod, nodeInfo, state);
      if (s) { s.plugin ??= fs[i].name; return s; }
    }
    return null;
  }

  /** Weighted sum of normalized scores per node (same order as nodes). */
  runScore(pod: PodInfo, nodes: readonly NodeInfo[], state: CycleState, snapshot: Snapshot): number[] {
    const total = new Array<number>(nodes.length).fill(0);
    const scores = new Array<number>(nodes.length);
    for (const p of this.scores) {
      if (p.preScore) {
        const r = p.preScore(pod, nodes, state, snapshot);
        if (r === 'skip') continue;
        if (r) throw new Error(`${p.name} preScore: ${r.reasons.join(', ')}`);
      }
      for (let i = 0; i < nodes.length; i++) scores[i] = p.score(pod, nodes[i], state);
      if (p.normalize) p.normalize(pod, nodes, scores, state);
      const w = p.weight;
      for (let i = 0; i < nodes.length; i++) total[i] += scores[i] * w;
    }
    return total;
  }
}
