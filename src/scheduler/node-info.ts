// What the scheduler knows of a node and of the pods on it: allocatable and requested resources
// (including pods just assumed), host ports in use, and the pods that carry affinity terms.
// PodInfo precomputes, once per pod, what every cycle needs (requests, ports, parsed terms).
import type { Container, Node, Pod, PodAffinityTerm, Taint } from 'kubernetes-types/core/v1.js';
import { tryParseQuantity } from '../machinery/quantity.js';
import { selectorFromLabelSelector, type LabelSelector } from '../machinery/labels.js';

/** Requests or capacity: cpu in millicores, the rest in whole units (bytes, count). */
export interface Resource {
  milliCPU: number;
  memory: number;
  ephemeralStorage: number;
  allowedPodNumber: number;
  /** extended resources and hugepages (name → units) */
  scalar: Map<string, number> | null;
}

export function emptyResource(): Resource {
  return { milliCPU: 0, memory: 0, ephemeralStorage: 0, allowedPodNumber: 0, scalar: null };
}

/** Upstream's defaults used for scoring containers that request nothing. */
export const DefaultMilliCPURequest = 100;
export const DefaultMemoryRequest = 200 * 1024 * 1024;

const qcache = new Map<string, { milli: number; value: number }>();
function q(s: unknown): { milli: number; value: number } {
  const str = String(s);
  let v = qcache.get(str);
  if (!v) {
    const parsed = tryParseQuantity(str);
    v = parsed ? { milli: parsed.milliValue(), value: parsed.value() } : { milli: 0, value: 0 };
    if (qcache.size < 10_000) qcache.set(str, v);
  }
  return v;
}

function addList(r: Resource, list: Record<string, unknown> | undefined | null, sign = 1): void {
  if (!list) return;
  for (const name in list) {
    const raw = list[name];
    switch (name) {
      case 'cpu': r.milliCPU += sign * q(raw).milli; break;
      case 'memory': r.memory += sign * q(raw).value; break;
      case 'ephemeral-storage': r.ephemeralStorage += sign * q(raw).value; break;
      case 'pods': r.allowedPodNumber += sign * q(raw).value; break;
      default: {
        if (!isScalarResourceName(name)) break;
        r.scalar ??= new Map();
        r.scalar.set(name, (r.scalar.get(name) ?? 0) + sign * q(raw).value);
      }
    }
  }
}

/** Extended resources (`domain/name` outside kubernetes.io), hugepages-*, attachable-volumes-*. */
export function isScalarResourceName(name: string): boolean {
  if (name.startsWith('hugepages-') || name.startsWith('attachable-volumes-')) return true;
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const domain = name.slice(0, slash);
  return !(domain === 'kubernetes.io' || domain.endsWith('.kubernetes.io')) && !name.startsWith('requests.');
}

function maxInto(dst: Resource, src: Resource): void {
  dst.milliCPU = Math.max(dst.milliCPU, src.milliCPU);
  dst.memory = Math.max(dst.memory, src.memory);
  dst.ephemeralStorage = Math.max(dst.ephemeralStorage, src.ephemeralStorage);
  if (src.scalar) {
    dst.scalar ??= new Map();
    for (const [k, v] of src.scalar) dst.scalar.set(k, Math.max(dst.scalar.get(k) ?? 0, v));
  }
}

function addInto(dst: Resource, src: Resource, sign = 1): void {
  dst.milliCPU += sign * src.milliCPU;
  dst.memory += sign * src.memory;
  dst.ephemeralStorage += sign * src.ephemeralStorage;
  dst.allowedPodNumber += sign * src.allowedPodNumber;
  if (src.scalar) {
    dst.scalar ??= new Map();
    for (const [k, v] of src.scalar) dst.scalar.set(k, (dst.scalar.get(k) ?? 0) + sign * v);
  }
}

function containerRequests(c: Container): Resource {
  const r = emptyResource();
  addList(r, c.resources?.requests as Record<string, unknown> | undefined);
  return r;
}

/**
 * The pod's effective request, as upstream's resource helpers: the sum over containers (plus
 * restartable "sidecar" init containers), against each regular init container's request plus the
 * sidecars started before it — whichever is larger, per resource — plus spec.overhead.
 * nonZero applies upstream's scoring defaults (100m cpu, 200Mi memory) to containers that request none.
 */
export function computePodRequests(pod: Pod): { requests: Resource; nonZeroCPU: number; nonZeroMem: number } {
  const spec = pod.spec ?? { containers: [] };
  const req = emptyResource();
  let nzCPU = 0;
  let nzMem = 0;
  for (const c of spec.containers ?? []) {
    const r = containerRequests(c);
    addInto(req, r);
    nzCPU += r.milliCPU || (c.resources?.requests?.cpu === undefined ? DefaultMilliCPURequest : 0);
    nzMem += r.memory || (c.resources?.requests?.memory === undefined ? DefaultMemoryRequest : 0);
  }
  const sidecars = emptyResource();
  const initMax = emptyResource();
  let initNzCPU = 0;
  let initNzMem = 0;
  for (const c of spec.initContainers ?? []) {
    const r = containerRequests(c);
    if (c.restartPolicy === 'Always') {
      addInto(sidecars, r);
      addInto(req, r);
      nzCPU += r.milliCPU;
      nzMem += r.memory;
    } else {
      const during = emptyResource();
      addInto(during, sidecars);
      addInto(during, r);
      maxInto(initMax, during);
      initNzCPU = Math.max(initNzCPU, sidecars.milliCPU + (r.milliCPU || (c.resources?.requests?.cpu === undefined ? DefaultMilliCPURequest : 0)));
      initNzMem = Math.max(initNzMem, sidecars.memory + (r.memory || (c.resources?.requests?.memory === undefined ? DefaultMemoryRequest : 0)));
    }
  }
  maxInto(req, initMax);
  nzCPU = Math.max(nzCPU, initNzCPU);
  nzMem = Math.max(nzMem, initNzMem);
  if (spec.overhead) {
    const o = emptyResource();
    addList(o, spec.overhead as Record<string, unknown>);
    addInto(req, o);
    nzCPU += o.milliCPU;
    nzMem += o.memory;
  }
  req.allowedPodNumber = 0;
  return { requests: req, nonZeroCPU: nzCPU, nonZeroMem: nzMem };
}

export interface HostPort { hostIP: string; protocol: string; port: number }

/** A parsed (anti-)affinity term: which pods it selects and over which topology key. */
export interface AffinityTerm {
  selector: LabelSelector;
  /** namespaces listed (or the pod's own when neither list nor selector is given) */
  namespaces: Set<string>;
  /** namespaceSelector; null when absent */
  namespaceSelector: LabelSelector | null;
  topologyKey: string;
}
export interface WeightedAffinityTerm extends AffinityTerm { weight: number }

function parseTerm(pod: Pod, t: PodAffinityTerm): AffinityTerm {
  const namespaces = new Set(t.namespaces ?? []);
  const nsSel = t.namespaceSelector ? selectorFromLabelSelector(t.namespaceSelector) : null;
  if (namespaces.size === 0 && !nsSel) namespaces.add(pod.metadata?.namespace ?? 'default');
  // matchLabelKeys / mismatchLabelKeys: add the incoming pod's values as requirements
  let selector = selectorFromLabelSelector(t.labelSelector ?? null);
  const extra: { key: string; operator: string; values: string[] }[] = [];
  const labels = pod.metadata?.labels ?? {};
  const tt = t as PodAffinityTerm & { matchLabelKeys?: string[]; mismatchLabelKeys?: string[] };
  for (const k of tt.matchLabelKeys ?? []) if (k in labels) extra.push({ key: k, operator: 'In', values: [labels[k]] });
  for (const k of tt.mismatchLabelKeys ?? []) if (k in labels) extra.push({ key: k, operator: 'NotIn', values: [labels[k]] });
  if (extra.length && t.labelSelector) {
    selector = selectorFromLabelSelector({
      matchLabels: t.labelSelector.matchLabels,
      matchExpressions: [...(t.labelSelector.matchExpressions ?? []), ...extra],
    });
  }
  return { selector, namespaces, namespaceSelector: nsSel, topologyKey: t.topologyKey };
}

/** Does the term select pod p (namespace and labels)? nsLabels: labels of p's namespace. */
export function termMatches(term: AffinityTerm, p: Pod, nsLabels: Record<string, string> | undefined): boolean {
  const ns = p.metadata?.namespace ?? 'default';
  if (!term.namespaces.has(ns) && !(term.namespaceSelector && term.namespaceSelector.matches(nsLabels ?? {}))) return false;
  return term.selector.matches(p.metadata?.labels);
}

export class PodInfo {
  readonly key: string;
  readonly requests: Resource;
  readonly nonZeroCPU: number;
  readonly nonZeroMem: number;
  readonly hostPorts: HostPort[];
  readonly requiredAffinity: AffinityTerm[];
  readonly requiredAntiAffinity: AffinityTerm[];
  readonly preferredAffinity: WeightedAffinityTerm[];
  readonly preferredAntiAffinity: WeightedAffinityTerm[];

  constructor(readonly pod: Pod) {
    const m = pod.metadata ?? {};
    this.key = `${m.namespace ?? ''}/${m.name ?? ''}`;
    const r = computePodRequests(pod);
    this.requests = r.requests;
    this.nonZeroCPU = r.nonZeroCPU;
    this.nonZeroMem = r.nonZeroMem;
    this.hostPorts = [];
    const spec = pod.spec;
    const portsOf = (cs: Container[] | undefined, sidecarsOnly: boolean): void => {
      for (const c of cs ?? []) {
        if (sidecarsOnly && c.restartPolicy !== 'Always') continue;
        for (const p of c.ports ?? []) {
          if (p.hostPort && p.hostPort > 0) this.hostPorts.push({ hostIP: p.hostIP || '0.0.0.0', protocol: p.protocol || 'TCP', port: p.hostPort });
        }
      }
    };
    portsOf(spec?.containers, false);
    portsOf(spec?.initContainers, true);
    const aff = spec?.affinity;
    this.requiredAffinity = (aff?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => parseTerm(pod, t));
    this.requiredAntiAffinity = (aff?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => parseTerm(pod, t));
    this.preferredAffinity = (aff?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => ({ ...parseTerm(pod, w.podAffinityTerm), weight: w.weight }));
    this.preferredAntiAffinity = (aff?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => ({ ...parseTerm(pod, w.podAffinityTerm), weight: w.weight }));
  }

  get hasAffinity(): boolean {
    return this.requiredAffinity.length + this.requiredAntiAffinity.length + this.preferredAffinity.length + this.preferredAntiAffinity.length > 0;
  }
  get hasRequiredAntiAffinity(): boolean { return this.requiredAntiAffinity.length > 0; }
}

export class NodeInfo {
  node: Node | undefined;
  name: string;
  labels: Record<string, string> = {};
  taints: Taint[] = [];
  readonly allocatable: Resource = emptyResource();
  readonly requested: Resource = emptyResource();
  nonZeroCPU = 0;
  nonZeroMem = 0;
  readonly pods = new Map<string, PodInfo>();
  readonly usedPorts: HostPort[] = [];
  podsWithAffinity = 0;
  podsWithRequiredAntiAffinity = 0;
  /** bumps on every change (for snapshot consumers) */
  generation = 0;

  constructor(name: string, node?: Node) {
    this.name = name;
    if (node) this.setNode(node);
  }

  setNode(node: Node): void {
    this.node = node;
    this.labels = node.metadata?.labels ?? {};
    this.taints = node.spec?.taints ?? [];
    const a = emptyResource();
    addList(a, (node.status?.allocatable ?? node.status?.capacity) as Record<string, unknown> | undefined);
    Object.assign(this.allocatable, a);
    this.generation++;
  }

  addPod(pi: PodInfo): void {
    if (this.pods.has(pi.key)) this.removePod(pi.key);
    this.pods.set(pi.key, pi);
    addInto(this.requested, pi.requests);
    this.requested.allowedPodNumber++;
    this.nonZeroCPU += pi.nonZeroCPU;
    this.nonZeroMem += pi.nonZeroMem;
    for (const p of pi.hostPorts) this.usedPorts.push(p);
    if (pi.hasAffinity) this.podsWithAffinity++;
    if (pi.hasRequiredAntiAffinity) this.podsWithRequiredAntiAffinity++;
    this.generation++;
  }

  removePod(key: string): PodInfo | undefined {
    const pi = this.pods.get(key);
    if (!pi) return undefined;
    this.pods.delete(key);
    addInto(this.requested, pi.requests, -1);
    this.requested.allowedPodNumber--;
    this.nonZeroCPU -= pi.nonZeroCPU;
    this.nonZeroMem -= pi.nonZeroMem;
    for (const p of pi.hostPorts) {
      const i = this.usedPorts.indexOf(p);
      if (i >= 0) this.usedPorts.splice(i, 1);
    }
    if (pi.hasAffinity) this.podsWithAffinity--;
    if (pi.hasRequiredAntiAffinity) this.podsWithRequiredAntiAffinity--;
    this.generation++;
    return pi;
  }
}
