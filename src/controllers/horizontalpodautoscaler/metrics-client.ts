// Where the HPA controller gets pod resource usage: a MetricsClient interface (upstream's
// metrics.MetricsClient, resource part), a REST implementation reading metrics.k8s.io/v1beta1
// PodMetrics through our RestClient (as upstream's resourceMetricsClient does), and an in-memory fake
// for unit tests. Values are milli-units (millicores, milli-bytes), summed over a pod's containers.
import { tryParseQuantity } from '../../machinery/quantity.js';
import { parseLabelSelector, type ResourceRef } from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import type { PodMetrics } from './types.js';

export const podMetricsResource: ResourceRef = { group: 'metrics.k8s.io', version: 'v1beta1', plural: 'pods' };

/** One pod's usage: the sum over its containers, with the sample's time and window. */
export interface PodMetric { value: number; timestampMs: number; windowMs: number }

/** pod name → usage */
export type PodMetricsInfo = Map<string, PodMetric>;

export interface MetricsClient {
  /**
   * Usage of `resource` (cpu, memory) for the pods matching `selector` (string form) in namespace,
   * and the timestamp of the first sample. container: only that container's usage ('' = whole pod).
   * Throws with upstream's wording when the API fails or returns nothing.
   */
  getResourceMetric(resource: string, namespace: string, selector: string, container?: string): Promise<{ metrics: PodMetricsInfo; timestampMs: number }>;
}

/** A Go time.Duration string ("30s", "1m30s", "10.5s", "250ms") in milliseconds; NaN if malformed. */
export function parseGoDuration(s: string | undefined | null): number {
  if (!s) return NaN;
  if (s === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let sign = 1;
  let rest = s;
  if (rest[0] === '-' || rest[0] === '+') { sign = rest[0] === '-' ? -1 : 1; rest = rest.slice(1); }
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === 0 ? NaN : sign * total;
}

/** What the REST metrics client needs of a client; RestClient fits. */
export interface PodMetricsLister {
  list<T extends KObject>(res: ResourceRef, ns?: string | null, opts?: { labelSelector?: string }): Promise<{ items: T[] }>;
}

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

/** Sums each pod's usage of resource (upstream's getPodMetrics / getContainerMetrics). */
export function podMetricsInfo(items: PodMetrics[], resource: string, container = ''): PodMetricsInfo {
  const out: PodMetricsInfo = new Map();
  for (const m of items) {
    const name = m.metadata?.name;
    if (!name) continue;
    const timestampMs = m.timestamp ? Date.parse(m.timestamp) : NaN;
    const windowMs = parseGoDuration(m.window);
    const sample = (value: number): PodMetric => ({ value, timestampMs, windowMs: Number.isFinite(windowMs) ? windowMs : 0 });
    const containers = m.containers ?? [];
    if (container) {
      const c = containers.find((x) => x.name === container);
      if (!c) throw new Error(`container ${container} not present in metrics for pod ${m.metadata?.namespace ?? ''}/${name}`);
      const q = c.usage?.[resource] !== undefined ? tryParseQuantity(String(c.usage[resource])) : undefined;
      if (q) out.set(name, sample(q.milliValue()));
      continue;
    }
    let sum = 0;
    let missing = containers.length === 0;
    for (const c of containers) {
      const raw = c.usage?.[resource];
      const q = raw === undefined ? undefined : tryParseQuantity(String(raw));
      if (!q) { missing = true; break; }
      sum += q.milliValue();
    }
    if (!missing) out.set(name, sample(sum));
  }
  return out;
}

/** Reads PodMetrics from `/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=…`. */
export class RestMetricsClient implements MetricsClient {
  constructor(private readonly client: PodMetricsLister) {}

  async getResourceMetric(resource: string, namespace: string, selector: string, container = ''): Promise<{ metrics: PodMetricsInfo; timestampMs: number }> {
    let items: PodMetrics[];
    try {
      items = (await this.client.list<PodMetrics>(podMetricsResource, namespace, { labelSelector: selector })).items ?? [];
    } catch (e) {
      throw new Error(`unable to fetch metrics from resource metrics API: ${errMessage(e)}`);
    }
    if (items.length === 0) throw new Error('no metrics returned from resource metrics API');
    let metrics: PodMetricsInfo;
    try { metrics = podMetricsInfo(items, resource, container); } catch (e) {
      throw new Error(`failed to get container metrics: ${errMessage(e)}`);
    }
    const t = items[0]!.timestamp ? Date.parse(items[0]!.timestamp) : NaN;
    return { metrics, timestampMs: t };
  }
}

/** An in-memory MetricsClient for tests: set usage per namespace/pod; `error` makes every call fail. */
export class FakeMetricsClient implements MetricsClient {
  /** `${namespace}/${pod}` → PodMetrics-like sample */
  readonly pods = new Map<string, { labels: Record<string, string>; usage: Record<string, string>; timestampMs: number; windowMs: number }>();
  error?: Error;
  calls = 0;

  constructor(private readonly now: () => number = Date.now) {}

  set(namespace: string, pod: string, labels: Record<string, string>, usage: Record<string, string>, opts: { timestampMs?: number; windowMs?: number } = {}): void {
    this.pods.set(`${namespace}/${pod}`, { labels, usage, timestampMs: opts.timestampMs ?? this.now(), windowMs: opts.windowMs ?? 30_000 });
  }

  delete(namespace: string, pod: string): void { this.pods.delete(`${namespace}/${pod}`); }

  async getResourceMetric(resource: string, namespace: string, selector: string, container = ''): Promise<{ metrics: PodMetricsInfo; timestampMs: number }> {
    this.calls++;
    if (this.error) throw new Error(`unable to fetch metrics from resource metrics API: ${this.error.message}`);
    const matches = parseLabelSelector(selector);
    const items: PodMetrics[] = [];
    for (const [key, p] of this.pods) {
      const [ns, name] = key.split('/') as [string, string];
      if (ns !== namespace || !matches(p.labels)) continue;
      items.push({
        metadata: { name, namespace: ns, labels: p.labels }, timestamp: new Date(p.timestampMs).toISOString(), window: `${p.windowMs / 1000}s`,
        containers: [{ name: 'c', usage: p.usage }],
      });
    }
    return new RestMetricsClient({ list: async <T extends KObject>() => ({ items: items as unknown as T[] }) }).getResourceMetric(resource, namespace, selector, container);
  }
}
