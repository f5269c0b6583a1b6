// Unit tests of the HPA controller's algorithm with a fake clock, fake metrics and a fake scale
// client: tolerance, missing and unready pods, the scale-up limit, stabilization windows, behavior
// policies, min/max, conditions, events and status writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, Informer, type ListWatchClient, type ObjectReference, type ResourceRef } from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import { HorizontalController } from './horizontal-controller.js';
import { FakeMetricsClient, parseGoDuration } from './metrics-client.js';
import { scaleResourceFor, type ScaleClient } from './scale-client.js';
import type { HPAPod, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, MetricSpec, Scale } from './types.js';

const idle: ListWatchClient = { list: async () => ({ metadata: {}, items: [] }), watch: () => ({ async *[Symbol.asyncIterator]() {} }) };
const NS = 'ns';
const START = Date.parse('2025-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

class FakeScales implements ScaleClient {
  replicas = 3;
  selector = 'app=web';
  missing = false;
  updates: number[] = [];
  failUpdate?: Error;
  resourceFor(ref: { kind: string; name: string; apiVersion?: string }): ResourceRef { return scaleResourceFor(ref); }
  async getScale(_res: ResourceRef, ns: string, name: string): Promise<Scale> {
    if (this.missing) throw new Error(`deployments.apps "${name}" not found`);
    return { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: ns, resourceVersion: '1' }, spec: { replicas: this.replicas }, status: { replicas: this.replicas, selector: this.selector } };
  }
  async updateScale(_res: ResourceRef, _ns: string, scale: Scale): Promise<Scale> {
    if (this.failUpdate) throw this.failUpdate;
    this.replicas = scale.spec!.replicas!;
    this.updates.push(this.replicas);
    return scale;
  }
}

interface Ev { reason: string; type: string; message: string }

function setup(opts: { metrics?: MetricSpec[]; min?: number; max?: number; behavior?: HorizontalPodAutoscalerBehavior; replicas?: number; downscaleStabilizationMs?: number; cpuInitializationPeriodMs?: number; kind?: string } = {}) {
  const clock = new FakeClock(START);
  const metrics = new FakeMetricsClient(() => clock.now());
  const scales = new FakeScales();
  scales.replicas = opts.replicas ?? 3;
  const hpaInformer = new Informer<HorizontalPodAutoscaler>({ client: idle, resource: { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers' } });
  const podInformer = new Informer<HPAPod>({ client: idle, resource: { group: '', version: 'v1', plural: 'pods' } });
  const events: Ev[] = [];
  const statuses: HorizontalPodAutoscaler[] = [];
  let rv = 1;
  const client = {
    async updateStatus<T extends KObject>(_r: unknown, _ns: unknown, obj: T): Promise<T> {
      const o = structuredClone(obj) as unknown as HorizontalPodAutoscaler;
      o.metadata!.resourceVersion = String(++rv);
      statuses.push(o);
      hpaInformer.indexer.set(o);
      return o as unknown as T;
    },
  };
  const errors: string[] = [];
  const c = new HorizontalController({
    client, scales, metrics, hpaInformer, podInformer, clock,
    recorder: { event: (_o: KObject | ObjectReference, type: string, reason: string, message: string) => { events.push({ type, reason, message }); } },
    downscaleStabilizationMs: opts.downscaleStabilizationMs, cpuInitializationPeriodMs: opts.cpuInitializationPeriodMs ?? 0,
    onError: (e) => errors.push((e as Error).message),
  });
  const hpa: HorizontalPodAutoscaler = {
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web', namespace: NS, uid: 'hpa-uid', resourceVersion: '1' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: opts.kind ?? 'Deployment', name: 'web' }, minReplicas: opts.min ?? 1, maxReplicas: opts.max ?? 10,
      metrics: opts.metrics ?? [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      ...(opts.behavior ? { behavior: opts.behavior } : {}),
    },
  };
  hpaInformer.indexer.set(hpa);
  /** a running, ready pod started `age` ms ago, with requests, and (unless usage is null) a sample */
  const pod = (name: string, usage: string | null, p: { request?: string | null; phase?: string; ready?: boolean; age?: number; readyAt?: number; deleted?: boolean } = {}): void => {
    const started = clock.now() - (p.age ?? 600_000);
    const requests: Record<string, string> = p.request === null ? {} : { cpu: p.request ?? '1', memory: '100Mi' };
    podInformer.indexer.set({
      metadata: { name, namespace: NS, labels: { app: 'web' }, ...(p.deleted ? { deletionTimestamp: iso(clock.now()) } : {}) },
      spec: { containers: [{ name: 'c', resources: { requests } }] },
      status: {
        phase: p.phase ?? 'Running', startTime: iso(started),
        conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True', lastTransitionTime: iso(p.readyAt ?? started + 1000) }],
      },
    });
    if (usage !== null) metrics.set(NS, name, { app: 'web' }, { cpu: usage, memory: usage === '0' ? '0' : '50Mi' });
  };
  const sync = () => c.reconcileKey(`${NS}/web`).catch((e: Error) => { errors.push(e.message); });
  /** two syncs 1 ms apart: with a zero window the first one's initial recommendation has aged out */
  const settle = async () => { await sync(); clock.step(1); await sync(); };
  const last = (): HorizontalPodAutoscaler => statuses.at(-1)!;
  const cond = (type: string): [string, string] | undefined => {
    const x = last().status?.conditions?.find((k) => k.type === type);
    return x ? [x.status, x.reason ?? ''] : undefined;
  };
  return { clock, metrics, scales, c, events, statuses, errors, pod, sync, settle, last, cond, hpaInformer };
}

test('scales up by ceil(ratio × ready pods), with upstream status, conditions and event', async () => {
  const t = setup({ metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 30 } } }] });
  t.pod('a', '300m'); t.pod('b', '500m'); t.pod('c', '700m');
  await t.sync();
  assert.deepEqual(t.scales.updates, [5]); // 50% of a 30% target: ceil(1.66 × 3)
  const st = t.last().status!;
  assert.equal(st.currentReplicas, 3);
  assert.equal(st.desiredReplicas, 5);
  assert.equal(st.lastScaleTime, iso(START));
  assert.deepEqual(st.currentMetrics, [{ type: 'Resource', resource: { name: 'cpu', current: { averageValue: '500m', averageUtilization: 50 } } }]);
  assert.deepEqual(t.cond('AbleToScale'), ['True', 'SucceededRescale']);
  assert.deepEqual(t.cond('ScalingActive'), ['True', 'ValidMetricFound']);
  assert.deepEqual(t.cond('ScalingLimited'), ['False', 'DesiredWithinRange']);
  assert.equal(st.conditions!.find((c) => c.type === 'ScalingActive')!.message, 'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)');
  assert.deepEqual(t.events, [{ type: 'Normal', reason: 'SuccessfulRescale', message: 'New size: 5; reason: cpu resource utilization (percentage of request) above target' }]);
});

test('within the tolerance (|1 - ratio| ≤ 0.1) nothing changes; just outside it scales', async () => {
  const t = setup();
  // 54% of a 50% target: ratio 1.08
  t.pod('a', '540m'); t.pod('b', '540m'); t.pod('c', '540m');
  await t.sync();
  assert.deepEqual(t.scales.updates, []);
  assert.equal(t.last().status!.desiredReplicas, 3);
  assert.deepEqual(t.cond('AbleToScale'), ['True', 'ReadyForNewScale']);
  // 56%: ratio 1.12 → ceil(3.36) = 4
  for (const p of ['a', 'b', 'c']) t.metrics.set(NS, p, { app: 'web' }, { cpu: '560m' });
  await t.sync();
  assert.deepEqual(t.scales.updates, [4]);
});

test('missing metrics count as 0 on a scale-up and as 100% on a scale-down; the ratio never flips', async () => {
  const up = setup();
  up.pod('a', '1'); up.pod('b', '1'); up.pod('c', null); // 100% (ratio 2) without c; with c at 0: 66% → ratio 1.32 → ceil(3.96)
  await up.sync();
  assert.deepEqual(up.scales.updates, [4]);
  assert.equal(up.last().status!.currentMetrics![0]!.resource!.current.averageUtilization, 100, 'reported utilization leaves missing pods out');

  const down = setup({ replicas: 4, downscaleStabilizationMs: 0 });
  for (const p of ['a', 'b', 'c']) down.pod(p, '100m');
  down.pod('d', null); // 10% → with d at 100%: 1300/4000 = 32% → ratio 0.64 → 3
  await down.settle();
  assert.deepEqual(down.scales.updates, [3]);

  // 40% on 2 pods (ratio 0.8: a scale-down) and 2 missing: at 100% they make it 70% (ratio 1.4), which
  // would flip the direction → no change at all
  const flip = setup({ replicas: 4, downscaleStabilizationMs: 0 });
  flip.pod('a', '400m'); flip.pod('b', '400m'); flip.pod('c', null); flip.pod('d', null);
  await flip.settle();
  assert.deepEqual(flip.scales.updates, []);
});

test('unready and pending pods count as 0 on a scale-up; deleted and failed pods are ignored', async () => {
  const t = setup({ cpuInitializationPeriodMs: 300_000 });
  t.pod('a', '1'); t.pod('b', '1');
  t.pod('c', '1', { ready: false, age: 10_000 }); // within the cpu initialization period and unready
  t.pod('d', null, { phase: 'Pending' });
  t.pod('gone', '5', { deleted: true });
  t.pod('failed', '5', { phase: 'Failed' });
  // ready: 200% → ratio 4; with c and d at 0: 2000/4000 = 50% of request → ratio 1.0 → no change
  await t.sync();
  assert.deepEqual(t.scales.updates, []);
  assert.equal(t.last().status!.desiredReplicas, 3);
  // a pod that became ready within the last metric window is also unready while initializing
  const u = setup({ cpuInitializationPeriodMs: 300_000 });
  u.pod('a', '1'); u.pod('b', '1'); u.pod('c', '1', { age: 60_000, readyAt: START - 10_000 });
  await u.sync();
  // c ignored → 200% → ratio 4 → then c at 0: 2000/3000 = 66% → ratio 1.33 → ceil(1.33 × 3) = 4
  assert.deepEqual(u.scales.updates, [4]);
});

test('a missing cpu request is an error worded as upstream', async () => {
  const t = setup();
  t.pod('a', '1', { request: null });
  await t.sync();
  assert.deepEqual(t.cond('ScalingActive'), ['False', 'FailedGetResourceMetric']);
  assert.equal(t.events[0]!.message, 'failed to get cpu utilization: missing request for cpu in container c of Pod a');
});

test('without behavior the scale-up is limited to max(2 × current, 4) per sync: ScaleUpLimit', async () => {
  const t = setup({ replicas: 1, max: 20 });
  t.pod('a', '5'); // 500% of a 50% target → 10
  await t.sync();
  assert.deepEqual(t.scales.updates, [4]);
  assert.deepEqual(t.cond('ScalingLimited'), ['True', 'ScaleUpLimit']);
  assert.equal(t.events[0]!.message, 'New size: 4; reason: cpu resource utilization (percentage of request) above target');
});

test('min and max: TooManyReplicas, TooFewReplicas and the out-of-range rescale reasons', async () => {
  const t = setup({ max: 4 });
  t.pod('a', '1'); t.pod('b', '1'); t.pod('c', '1');
  await t.sync(); // 200% → 6, capped at 4
  assert.deepEqual(t.scales.updates, [4]);
  assert.deepEqual(t.cond('ScalingLimited'), ['True', 'TooManyReplicas']);

  const low = setup({ min: 3, replicas: 3, downscaleStabilizationMs: 0 });
  low.pod('a', '10m'); low.pod('b', '10m'); low.pod('c', '10m');
  await low.settle();
  assert.deepEqual(low.scales.updates, []);
  assert.deepEqual(low.cond('ScalingLimited'), ['True', 'TooFewReplicas']);

  const above = setup({ max: 5, replicas: 8 });
  await above.sync();
  assert.deepEqual(above.scales.updates, [5]);
  assert.equal(above.events[0]!.message, 'New size: 5; reason: Current number of replicas above Spec.MaxReplicas');
  const below = setup({ min: 2, replicas: 1 });
  await below.sync();
  assert.deepEqual(below.scales.updates, [2]);
  assert.equal(below.events[0]!.message, 'New size: 2; reason: Current number of replicas below Spec.MinReplicas');
});

test('the downscale stabilization window keeps the highest recent recommendation (default 5 min)', async () => {
  const t = setup({ replicas: 4 });
  for (const p of ['a', 'b', 'c', 'd']) t.pod(p, '100m');
  await t.sync(); // wants 1, but the initial recommendation (4) is in the window
  assert.deepEqual(t.scales.updates, []);
  assert.deepEqual(t.cond('AbleToScale'), ['True', 'ScaleDownStabilized']);
  assert.equal(t.last().status!.conditions!.find((c) => c.type === 'AbleToScale')!.message, 'recent recommendations were higher than current one, applying the highest recent recommendation');
  t.clock.step(299_000);
  await t.sync();
  assert.deepEqual(t.scales.updates, []);
  t.clock.step(2_000);
  await t.sync();
  assert.deepEqual(t.scales.updates, [1]);
  assert.equal(t.events.at(-1)!.message, 'New size: 1; reason: All metrics below target');
});

test('behavior: Pods policy per period, with the scale events of the period', async () => {
  const t = setup({ replicas: 2, max: 20, behavior: { scaleUp: { policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } } });
  t.pod('a', '5'); t.pod('b', '5'); // 1000% → 20
  await t.sync();
  assert.deepEqual(t.scales.updates, [3]);
  assert.deepEqual(t.cond('ScalingLimited'), ['True', 'ScaleUpLimit']);
  t.clock.step(15_000);
  await t.sync(); // still within the 60 s period: 2 + 1 = 3 allowed
  assert.deepEqual(t.scales.updates, [3]);
  t.clock.step(46_000);
  await t.sync();
  assert.deepEqual(t.scales.updates, [3, 4]);
});

test('behavior: selectPolicy Max/Min over Percent and Pods policies, and Disabled', async () => {
  const policies = [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }];
  const max = setup({ replicas: 10, max: 100, behavior: { scaleUp: { selectPolicy: 'Max', policies } } });
  for (let i = 0; i < 10; i++) max.pod(`p${i}`, '5');
  await max.sync();
  assert.deepEqual(max.scales.updates, [20]); // max(10 + 4, 10 × 2)
  const min = setup({ replicas: 10, max: 100, behavior: { scaleUp: { selectPolicy: 'Min', policies } } });
  for (let i = 0; i < 10; i++) min.pod(`p${i}`, '5');
  await min.sync();
  assert.deepEqual(min.scales.updates, [14]);
  const off = setup({ replicas: 4, behavior: { scaleDown: { selectPolicy: 'Disabled', stabilizationWindowSeconds: 0 } } });
  for (const p of ['a', 'b', 'c', 'd']) off.pod(p, '10m');
  await off.sync();
  assert.deepEqual(off.scales.updates, []);
  assert.deepEqual(off.cond('ScalingLimited'), ['True', 'ScaleDownLimit']);
  // scale-down by Percent: 50% per 15 s from 8
  const pct = setup({ replicas: 8, behavior: { scaleDown: { policies: [{ type: 'Percent', value: 50, periodSeconds: 15 }], stabilizationWindowSeconds: 0 } } });
  for (let i = 0; i < 8; i++) pct.pod(`p${i}`, '10m');
  await pct.sync();
  assert.deepEqual(pct.scales.updates, [4]);
  assert.deepEqual(pct.cond('ScalingLimited'), ['True', 'ScaleDownLimit']);
});

test('behavior: a scale-up stabilization window applies the lowest recent recommendation', async () => {
  const t = setup({ replicas: 2, behavior: { scaleUp: { stabilizationWindowSeconds: 60 } } });
  t.pod('a', '1'); t.pod('b', '1'); // 100% of 50 → 4, but the initial recommendation (2) is in the window
  await t.sync();
  assert.deepEqual(t.scales.updates, []);
  assert.deepEqual(t.cond('AbleToScale'), ['True', 'ScaleUpStabilized']);
  t.clock.step(61_000);
  await t.sync();
  assert.deepEqual(t.scales.updates, [4]);
});

test('AverageValue targets, and memory', async () => {
  const t = setup({ metrics: [{ type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '25Mi' } } }] });
  t.pod('a', '1'); t.pod('b', '1'); t.pod('c', '1'); // 50Mi each: ratio 2 → 6
  await t.sync();
  assert.deepEqual(t.scales.updates, [6]);
  assert.deepEqual(t.last().status!.currentMetrics, [{ type: 'Resource', resource: { name: 'memory', current: { averageValue: '52428800' } } }]);
  assert.equal(t.events[0]!.message, 'New size: 6; reason: memory resource above target');
});

test('no metrics: FailedGetResourceMetric and FailedComputeMetricsReplicas, status keeps an empty metric', async () => {
  const t = setup();
  t.pod('a', null);
  await t.sync();
  const st = t.last().status!;
  assert.deepEqual(st.currentMetrics, [{ type: '' }]);
  assert.equal(st.currentReplicas, 3);
  assert.deepEqual(t.cond('ScalingActive'), ['False', 'FailedGetResourceMetric']);
  assert.equal(st.conditions!.find((c) => c.type === 'ScalingActive')!.message,
    'the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API');
  assert.deepEqual(t.events.map((e) => [e.type, e.reason]), [['Warning', 'FailedGetResourceMetric'], ['Warning', 'FailedComputeMetricsReplicas']]);
  assert.equal(t.events[1]!.message, 'invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API');
  assert.match(t.errors[0]!, /^failed to compute desired number of replicas based on listed metrics for Deployment\/ns\/web: invalid metrics/);
});

test('scale target problems: FailedGetScale (missing target, unknown kind) and ScalingDisabled', async () => {
  const gone = setup();
  gone.scales.missing = true;
  await gone.sync();
  assert.deepEqual(gone.cond('AbleToScale'), ['False', 'FailedGetScale']);
  assert.equal(gone.last().status!.conditions![0]!.message, 'the HPA controller was unable to get the target\'s current scale: deployments.apps "web" not found');
  assert.deepEqual(gone.events[0], { type: 'Warning', reason: 'FailedGetScale', message: 'deployments.apps "web" not found' });

  const kind = setup({ kind: 'Foo' });
  await kind.sync();
  assert.deepEqual(kind.events[0], { type: 'Warning', reason: 'FailedGetScale', message: 'no matches for kind "Foo" in group "apps"' });
  assert.deepEqual(kind.cond('AbleToScale'), ['False', 'FailedGetScale']);

  const zero = setup({ replicas: 0 });
  await zero.sync();
  assert.deepEqual(zero.scales.updates, []);
  assert.deepEqual(zero.cond('ScalingActive'), ['False', 'ScalingDisabled']);
  assert.equal(zero.last().status!.conditions!.find((c) => c.type === 'ScalingActive')!.message, 'scaling is disabled since the replica count of the target is zero');
});

test('a failed scale update: FailedRescale event and AbleToScale=False FailedUpdateScale', async () => {
  const t = setup();
  t.scales.failUpdate = new Error('boom');
  t.pod('a', '1'); t.pod('b', '1'); t.pod('c', '1');
  await t.sync();
  assert.deepEqual(t.cond('AbleToScale'), ['False', 'FailedUpdateScale']);
  assert.deepEqual(t.events.at(-1), { type: 'Warning', reason: 'FailedRescale', message: 'New size: 6; reason: cpu resource utilization (percentage of request) above target; error: boom' });
});

test('status is written only when it changes; lastTransitionTime moves only on a status flip', async () => {
  const t = setup();
  t.pod('a', '500m'); t.pod('b', '500m'); t.pod('c', '500m');
  await t.sync();
  assert.equal(t.statuses.length, 1);
  const first = t.last().status!.conditions!.map((c) => c.lastTransitionTime);
  t.clock.step(15_000);
  await t.sync();
  assert.equal(t.statuses.length, 1, 'nothing changed: no write');
  t.metrics.error = new Error('down');
  await t.sync();
  assert.equal(t.statuses.length, 2);
  const second = t.last().status!.conditions!;
  assert.equal(second.find((c) => c.type === 'ScalingActive')!.lastTransitionTime, iso(START + 15_000));
  assert.equal(second.find((c) => c.type === 'AbleToScale')!.lastTransitionTime, first[0]);
});

test('parseGoDuration reads metrics-server windows', () => {
  assert.equal(parseGoDuration('30s'), 30_000);
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('10.5s'), 10_500);
  assert.equal(parseGoDuration('250ms'), 250);
  assert.ok(Number.isNaN(parseGoDuration('abc')));
});
