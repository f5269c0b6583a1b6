// A Store decorator that times every store operation into a Prometheus histogram:
//
//   kyb_storage_operation_duration_seconds{operation}   operation = get | list | count | create |
//       update | delete | currentRevision | compactedRevision | compact (and any other async method
//       a driver adds to the Store interface later, under its own name)
//
// Why not upstream's etcd_request_duration_seconds{operation,type}: that one times etcd client
// round trips per Kubernetes resource type. Our Store is the kine-like byte-level interface below
// the registry: it knows keys, not resources, and the driver may be SQLite, memory or (later) etcd.
// A name of our own says what is measured (any driver's operation latency) and keeps dashboards
// made for etcd from reading SQLite figures as etcd's.
//
// The decorator is a Proxy over the store, so methods a driver has beyond the interface (stats,
// batching) pass through untouched and keep working; methods are called on the real store, so
// drivers with private fields are fine. `watch` is not timed (it is a subscription, not a call).
import { register } from 'prom-client';
import type { Store } from '../storage/store.js';
import { FastHistogram, type HistogramSeries } from './fast-metrics.js';

/** Buckets from 50 µs (an in-memory get) to 10 s (a stalled fsync). */
export const STORE_DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const storeDuration = (register.getSingleMetric('kyb_storage_operation_duration_seconds') as FastHistogram | undefined) ?? new FastHistogram(
  'kyb_storage_operation_duration_seconds',
  'Latency of store (storage driver) operations in seconds, by operation.',
  STORE_DURATION_BUCKETS,
);

const UNTIMED = new Set(['watch', 'close', 'constructor']);

/** The store, with every async operation timed. */
export function instrumentStore<S extends Store>(store: S): S {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop, _receiver) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const hit = wrapped.get(prop);
      if (hit) return hit;
      const fn = v as (...a: unknown[]) => unknown;
      let w: unknown;
      if (typeof prop !== 'string' || UNTIMED.has(prop)) {
        w = fn.bind(target);
      } else {
        let obs: HistogramSeries | undefined; // made on the first async call
        w = function timed(...args: unknown[]): unknown {
          const t0 = performance.now();
          const r = fn.apply(target, args);
          // only calls that return a promise are operations; sync helpers (stats) are not timed
          if (r && typeof (r as Promise<unknown>).then === 'function') {
            const done = (): void => { (obs ??= storeDuration.child(prop, () => ({ operation: prop }))).observe((performance.now() - t0) / 1000); };
            (r as Promise<unknown>).then(done, done);
          }
          return r;
        };
      }
      wrapped.set(prop, w);
      return w;
    },
  });
}
