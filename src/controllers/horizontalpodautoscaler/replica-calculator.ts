// The replica arithmetic of the HPA (upstream's ReplicaCalculator, resource metrics): from pod usage
// and pod requests to a proposed replica count. Pods are grouped as upstream does: deleted and
// failed pods are ignored; pending pods, and for cpu pods still initializing, count as unready; pods
// without a sample are missing. Without unready or missing pods the proposal is
// ceil(ratio × ready pods) unless the ratio is within tolerance. With them the ratio is recomputed
// conservatively (missing pods at 0 on a scale-up and at max(100%, target) — or the target value — on
// a scale-down; unready pods at 0 on a scale-up), and the proposal never flips direction.
import type { Clock } from '../../client/index.js';
import { tryParseQuantity } from '../../machinery/quantity.js';
import type { MetricsClient, PodMetricsInfo } from './metrics-client.js';
import type { HPAPod } from './types.js';

export interface ReplicaCalculatorOptions {
  metrics: MetricsClient;
  /** the pods in namespace matching selector (string form) */
  listPods(namespace: string, selector: string): HPAPod[];
  tolerance: number;
  cpuInitializationPeriodMs: number;
  initialReadinessDelayMs: number;
  clock: Clock;
}

export interface ResourceReplicas { replicas: number; utilization: number; rawUtilization: number; timestampMs: number }
export interface RawResourceReplicas { replicas: number; usage: number; timestampMs: number }

function errMessage(e: unknown): string { return e instanceof Error ? e.message : String(e); }

function ts(s: string | undefined | null): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

export interface PodGroups { readyPodCount: number; unready: Set<string>; missing: Set<string>; ignored: Set<string> }

/** Upstream's groupPods. */
export function groupPods(pods: HPAPod[], metrics: PodMetricsInfo, resource: string, cpuInitializationPeriodMs: number, initialReadinessDelayMs: number, nowMs: number): PodGroups {
  const g: PodGroups = { readyPodCount: 0, unready: new Set(), missing: new Set(), ignored: new Set() };
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    if (pod.metadata?.deletionTimestamp || pod.status?.phase === 'Failed') { g.ignored.add(name); continue; }
    if (pod.status?.phase === 'Pending') { g.unready.add(name); continue; }
    const metric = metrics.get(name);
    if (!metric) { g.missing.add(name); continue; }
    if (resource === 'cpu') {
      let unready: boolean;
      const cond = pod.status?.conditions?.find((c) => c.type === 'Ready');
      const start = ts(pod.status?.startTime);
      if (!cond || start === undefined) unready = true;
      else {
        const transition = ts(cond.lastTransitionTime) ?? 0;
        if (start + cpuInitializationPeriodMs > nowMs) {
          // still initializing: ignore the sample if unready, or if it began before the last transition
          unready = cond.status === 'False' || metric.timestampMs < transition + metric.windowMs;
        } else {
          // ignore it if the pod is unready and has never been ready since it started
          unready = cond.status === 'False' && start + initialReadinessDelayMs > transition;
        }
      }
      if (unready) { g.unready.add(name); continue; }
    }
    g.readyPodCount++;
  }
  return g;
}

/** Each pod's request of resource in milli-units (containers and restartable init containers);
 *  container limits it to that container. Throws upstream's error for a missing request. */
export function calculatePodRequests(pods: HPAPod[], container: string, resource: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const pod of pods) {
    let sum = 0;
    const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
    for (const c of containers) {
      if (container && container !== c.name) continue;
      const raw = c.resources?.requests?.[resource];
      const q = raw === undefined ? undefined : tryParseQuantity(String(raw));
      if (!q) throw new Error(`missing request for ${resource} in container ${c.name} of Pod ${pod.metadata?.name ?? ''}`);
      sum += q.milliValue();
    }
    out.set(pod.metadata?.name ?? '', sum);
  }
  return out;
}

/** Upstream's GetResourceUtilizationRatio: usage/requests over the pods with both, as a percentage. */
export function resourceUtilizationRatio(metrics: PodMetricsInfo, requests: Map<string, number>, targetUtilization: number): { ratio: number; utilization: number; rawAverage: number } {
  let metricsTotal = 0n, requestsTotal = 0n, n = 0n;
  for (const [pod, m] of metrics) {
    const r = requests.get(pod);
    if (r === undefined) continue; // extraneous metric
    metricsTotal += BigInt(Math.trunc(m.value));
    requestsTotal += BigInt(Math.trunc(r));
    n++;
  }
  if (requestsTotal === 0n) throw new Error('no metrics returned matched known pods');
  const utilization = Number((metricsTotal * 100n) / requestsTotal);
  return { ratio: utilization / targetUtilization, utilization, rawAverage: Number(metricsTotal / n) };
}

/** Upstream's GetMetricUsageRatio: the average usage over target. */
export function metricUsageRatio(metrics: PodMetricsInfo, targetUsage: number): { ratio: number; usage: number } {
  let total = 0n;
  for (const m of metrics.values()) total += BigInt(Math.trunc(m.value));
  const usage = Number(total / BigInt(metrics.size));
  return { ratio: usage / targetUsage, usage };
}

export class ReplicaCalculator {
  constructor(private readonly opts: ReplicaCalculatorOptions) {}

  private listPods(namespace: string, selector: string): HPAPod[] {
    const pods = this.opts.listPods(namespace, selector);
    if (pods.length === 0) throw new Error('no pods returned by selector while calculating replica count');
    return pods;
  }

  /** Replicas for a target utilization (percent of requests) of resource. */
  async getResourceReplicas(currentReplicas: number, targetUtilization: number, resource: string, namespace: string, selector: string, container = ''): Promise<ResourceReplicas> {
    let got;
    try { got = await this.opts.metrics.getResourceMetric(resource, namespace, selector, container); } catch (e) {
      throw new Error(`unable to get metrics for resource ${resource}: ${errMessage(e)}`);
    }
    const metrics = new Map(got.metrics);
    const pods = this.listPods(namespace, selector);
    const g = groupPods(pods, metrics, resource, this.opts.cpuInitializationPeriodMs, this.opts.initialReadinessDelayMs, this.opts.clock.now());
    for (const p of g.ignored) metrics.delete(p);
    for (const p of g.unready) metrics.delete(p);
    if (metrics.size === 0) throw new Error('did not receive metrics for targeted pods (pods might be unready)');
    const requests = calculatePodRequests(pods, container, resource);
    const { ratio, utilization, rawAverage } = resourceUtilizationRatio(metrics, requests, targetUtilization);
    const result = (replicas: number): ResourceReplicas => ({ replicas, utilization, rawUtilization: rawAverage, timestampMs: got.timestampMs });
    const tolerance = this.opts.tolerance;

    const scaleUpWithUnready = g.unready.size > 0 && ratio > 1.0;
    if (!scaleUpWithUnready && g.missing.size === 0) {
      if (Math.abs(1.0 - ratio) <= tolerance) return result(currentReplicas);
      return result(Math.ceil(ratio * g.readyPodCount));
    }
    if (g.missing.size > 0) {
      if (ratio < 1.0) {
        // scale-down: missing pods use all of their request, or the target when it is above 100%
        const fallback = Math.max(100, targetUtilization);
        for (const p of g.missing) metrics.set(p, { value: Math.trunc(((requests.get(p) ?? 0) * fallback) / 100), timestampMs: 0, windowMs: 0 });
      } else if (ratio > 1.0) {
        for (const p of g.missing) metrics.set(p, { value: 0, timestampMs: 0, windowMs: 0 });
      }
    }
    if (scaleUpWithUnready) for (const p of g.unready) metrics.set(p, { value: 0, timestampMs: 0, windowMs: 0 });

    const newRatio = resourceUtilizationRatio(metrics, requests, targetUtilization).ratio;
    if (Math.abs(1.0 - newRatio) <= tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0)) {
      return result(currentReplicas);
    }
    const newReplicas = Math.ceil(newRatio * metrics.size);
    if ((newRatio < 1.0 && newReplicas > currentReplicas) || (newRatio > 1.0 && newReplicas < currentReplicas)) return result(currentReplicas);
    return result(newReplicas);
  }

  /** Replicas for a target average value (milli-units) of resource. */
  async getRawResourceReplicas(currentReplicas: number, targetUsage: number, resource: string, namespace: string, selector: string, container = ''): Promise<RawResourceReplicas> {
    let got;
    try { got = await this.opts.metrics.getResourceMetric(resource, namespace, selector, container); } catch (e) {
      throw new Error(`unable to get metrics for resource ${resource}: ${errMessage(e)}`);
    }
    const { replicas, usage } = this.calcPlainMetricReplicas(new Map(got.metrics), currentReplicas, targetUsage, namespace, selector, resource);
    return { replicas, usage, timestampMs: got.timestampMs };
  }

  private calcPlainMetricReplicas(metrics: PodMetricsInfo, currentReplicas: number, targetUsage: number, namespace: string, selector: string, resource: string): { replicas: number; usage: number } {
    const pods = this.listPods(namespace, selector);
    const g = groupPods(pods, metrics, resource, this.opts.cpuInitializationPeriodMs, this.opts.initialReadinessDelayMs, this.opts.clock.now());
    for (const p of g.ignored) metrics.delete(p);
    for (const p of g.unready) metrics.delete(p);
    if (metrics.size === 0) throw new Error('did not receive metrics for targeted pods (pods might be unready)');
    const { ratio, usage } = metricUsageRatio(metrics, targetUsage);
    const tolerance = this.opts.tolerance;
    const scaleUpWithUnready = g.unready.size > 0 && ratio > 1.0;
    if (!scaleUpWithUnready && g.missing.size === 0) {
      if (Math.abs(1.0 - ratio) <= tolerance) return { replicas: currentReplicas, usage };
      return { replicas: Math.ceil(ratio * g.readyPodCount), usage };
    }
    if (g.missing.size > 0) {
      if (ratio < 1.0) for (const p of g.missing) metrics.set(p, { value: targetUsage, timestampMs: 0, windowMs: 0 });
      else if (ratio > 1.0) for (const p of g.missing) metrics.set(p, { value: 0, timestampMs: 0, windowMs: 0 });
    }
    if (scaleUpWithUnready) for (const p of g.unready) metrics.set(p, { value: 0, timestampMs: 0, windowMs: 0 });
    const newRatio = metricUsageRatio(metrics, targetUsage).ratio;
    if (Math.abs(1.0 - newRatio) <= tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0)) {
      return { replicas: currentReplicas, usage };
    }
    const newReplicas = Math.ceil(newRatio * metrics.size);
    if ((newRatio < 1.0 && newReplicas > currentReplicas) || (newRatio > 1.0 && newReplicas < currentReplicas)) return { replicas: currentReplicas, usage };
    return { replicas: newReplicas, usage };
  }
}
