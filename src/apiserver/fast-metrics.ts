// Counters and histograms for the per-request paths, registered in a prom-client registry.
//
// prom-client's `labels(...)` children hash their label object on every inc/observe (hashObject over
// the sorted label names), which showed as about 3 % of the API server thread's busy time in a
// create-heavy profile. These keep one series object per label set, found by a key the caller builds
// once per request (or holds on to), so that recording is a few array writes. prom-client still does
// the exposition: a metric here is a registry entry whose get() answers in prom-client's own shape
// (the one `Histogram.get()` gives: `_bucket` series with `le`, then `_sum` and `_count`), so the
// text format, getMetricsAsJSON() and the merging of the worker thread's metrics work as before.
import { register as defaultRegister, type Registry } from 'prom-client';

type Labels = Record<string, string>;
interface Value { labels: Labels; value: number; metricName?: string }
interface MetricData { name: string; help: string; type: 'counter' | 'histogram' | 'gauge'; values: Value[]; aggregator: 'sum' }

abstract class Metric<S> {
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, S>();
  constructor(readonly name: string, readonly help: string, registry: Registry) {
    registry.registerMetric(this as never);
  }
  /** drop every series (prom-client's registry.resetMetrics()) */
  reset(): void { this.series.clear(); }
  /** the series for a key, made with these labels the first time (the key must determine the labels) */
  protected seriesFor(key: string, labels: () => Labels, make: (labels: Labels) => S): S {
    let s = this.series.get(key);
    if (!s) { s = make(labels()); this.series.set(key, s); }
    return s;
  }
}

export interface CounterSeries { readonly labels: Labels; value: number }

/** A monotonically increasing counter (or, with dec, a gauge) per label set. */
export class FastCounter extends Metric<CounterSeries> {
  constructor(name: string, help: string, private readonly type: 'counter' | 'gauge' = 'counter', registry: Registry = defaultRegister) {
    super(name, help, registry);
  }
  child(key: string, labels: () => Labels): CounterSeries {
    return this.seriesFor(key, labels, (l) => ({ labels: l, value: 0 }));
  }
  async get(): Promise<MetricData> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })) };
  }
}

export class HistogramSeries {
  readonly counts: Float64Array; // per bucket, not cumulative; the last slot is +Inf
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** A histogram per label set, with fixed upper bounds (seconds, ascending). */
export class FastHistogram extends Metric<HistogramSeries> {
  constructor(name: string, help: string, readonly buckets: readonly number[], registry: Registry = defaultRegister) {
    super(name, help, registry);
  }
  child(key: string, labels: () => Labels): HistogramSeries {
    return this.seriesFor(key, labels, (l) => new HistogramSeries(l, this.buckets));
  }
  async get(): Promise<MetricData> {
    const values: Value[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += s.counts[i];
        values.push({ labels: { ...s.labels, le: i < this.buckets.length ? String(this.buckets[i]) : '+Inf' }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: this.aggregator, values };
  }
}
