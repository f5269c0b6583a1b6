// The agent's resource-metrics collector (the part of the kubelet + cAdvisor that metrics-server
// scrapes). Every resolution period (default 15 s, metrics-server's default; down to 1 s for tests) it
// samples the cumulative CPU time and the memory working set of every running container of the
// agent's pods from their cgroups (src/node/stats/cgroup-reader.ts, v1 and v2), and of the node from
// /proc. CPU usage is the difference between the last two samples over the time between them, so a
// container has figures after its second sample. The report (src/node/stats/resource-metrics.ts) is
// rebuilt after every round, so serving it costs nothing; entries of containers that are gone are
// dropped at the next round. All reads are synchronous file reads: 100 containers take a few ms of
// CPU per round (bench/metrics-bench.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupReader, readNodeSample, type CgroupSample } from './cgroup-reader.js';
import type { ContainerUsage, PodUsage, ResourceMetricsReport, ResourceMetricsSource, UsageSample } from './resource-metrics.js';

/** One running container, as the collector needs it. */
export interface ContainerRef {
  podNamespace: string;
  podName: string;
  podUID: string;
  containerName: string;
  /** the runtime's container id (a restarted container has a new one, and starts from zero) */
  containerId: string;
  /** the OCI `linux.cgroupsPath`, e.g. `/kybernetes/pod<uid>/<id>` */
  cgroupsPath: string;
}

export interface ResourceCollectorOptions {
  nodeName: string;
  /** the containers to sample now (called once per round) */
  containers(): ContainerRef[];
  /** sampling period in ms (default 15000, at least 1000 unless minResolutionMs says otherwise) */
  resolutionMs?: number;
  /** the cgroup filesystem (default /sys/fs/cgroup) */
  cgroupRoot?: string;
  /** where stat and meminfo are (default /proc) */
  procRoot?: string;
  /** wall clock in ms (default Date.now) */
  now?: () => number;
  log?(msg: string): void;
}

interface Point { t: number; cpuNs: number; workingSetBytes: number }
interface Series { prev?: Point; last: Point }

export const DEFAULT_RESOLUTION_MS = 15_000;

export class ResourceCollector implements ResourceMetricsSource {
  readonly resolutionMs: number;
  private readonly reader: CgroupReader;
  private readonly now: () => number;
  private readonly series = new Map<string, Series>(); // by container id
  private node?: Series;
  private current: ResourceMetricsReport;
  /** rounds taken so far */
  rounds = 0;

  constructor(private readonly o: ResourceCollectorOptions) {
    this.resolutionMs = Math.max(1, Math.round(o.resolutionMs ?? DEFAULT_RESOLUTION_MS));
    this.reader = new CgroupReader(o.cgroupRoot);
    this.now = o.now ?? Date.now;
    this.current = { nodeName: o.nodeName, resolutionMs: this.resolutionMs, pods: [] };
  }

  /** which cgroup layout was found */
  get cgroupVersion(): 'v1' | 'v2' { return this.reader.version; }

  /** the latest report (ResourceMetricsSource) */
  resourceMetrics(): ResourceMetricsReport { return this.current; }

  /** Takes one round of samples and rebuilds the report. */
  sample(): ResourceMetricsReport {
    const refs = this.o.containers();
    const t = this.now();
    const seen = new Set<string>();
    const pods = new Map<string, PodUsage>();
    for (const ref of refs) {
      const s = this.reader.read(ref.cgroupsPath);
      if (!s) continue; // exited and deleted, or not yet created
      seen.add(ref.containerId);
      const ser = advance(this.series.get(ref.containerId), t, s);
      this.series.set(ref.containerId, ser);
      const u = usage(ser);
      if (!u) continue;
      let p = pods.get(ref.podUID);
      if (!p) { p = { namespace: ref.podNamespace, name: ref.podName, uid: ref.podUID, containers: [] }; pods.set(ref.podUID, p); }
      const c: ContainerUsage = { name: ref.containerName, ...u };
      p.containers.push(c);
    }
    for (const id of this.series.keys()) if (!seen.has(id)) this.series.delete(id);
    const ns = readNodeSample(this.o.procRoot);
    if (ns) this.node = advance(this.node, t, ns);
    const nodeUsage = this.node ? usage(this.node) : undefined;
    this.current = {
      nodeName: this.o.nodeName, resolutionMs: this.resolutionMs,
      ...(nodeUsage ? { node: nodeUsage } : {}),
      pods: [...pods.values()],
    };
    this.rounds++;
    return this.current;
  }

  /** Samples now and then every resolution period until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.now();
      try { this.sample(); } catch (e) { this.o.log?.(`resource metrics: ${(e as Error).message}`); }
      // keep the period (not period + sampling time), and never spin
      const wait = Math.max(10, this.resolutionMs - (this.now() - started));
      await sleep(wait, undefined, { signal }).catch(() => undefined);
    }
  }
}

function advance(prev: Series | undefined, t: number, s: CgroupSample): Series {
  const p: Point = { t, cpuNs: s.cpuNs, workingSetBytes: s.workingSetBytes };
  // a counter that went back (a reset cgroup) starts a new series
  if (!prev || s.cpuNs < prev.last.cpuNs || t <= prev.last.t) return { last: p };
  return { prev: prev.last, last: p };
}

function usage(s: Series): UsageSample | undefined {
  if (!s.prev) return undefined;
  const dtMs = s.last.t - s.prev.t;
  if (dtMs <= 0) return undefined;
  // ns of CPU per ns of wall time, times 1e9: nanocores
  const usageNanoCores = Math.round(((s.last.cpuNs - s.prev.cpuNs) * 1000) / dtMs);
  return { usageNanoCores, workingSetBytes: s.last.workingSetBytes, timestamp: iso(s.last.t), windowMs: dtMs };
}

// every series of a round has the same sample time: format it once
let isoCache = { t: NaN, s: '' };
function iso(t: number): string {
  if (isoCache.t !== t) isoCache = { t, s: new Date(t).toISOString() };
  return isoCache.s;
}
