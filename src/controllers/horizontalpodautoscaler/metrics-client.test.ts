// The REST metrics client (PodMetrics → per-pod usage, upstream's errors) and the scale target mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/types.js';
import type { ResourceRef } from '../../client/index.js';
import { RestMetricsClient, podMetricsResource } from './metrics-client.js';
import { RestScaleClient, parseGroupVersion, scaleResourceFor } from './scale-client.js';

test('RestMetricsClient lists PodMetrics by namespace and selector and sums containers in milli-units', async () => {
  const calls: unknown[] = [];
  const items = [
    { metadata: { name: 'a' }, timestamp: '2025-01-01T00:00:00Z', window: '15.5s', containers: [{ name: 'x', usage: { cpu: '250m', memory: '10Mi' } }, { name: 'y', usage: { cpu: '1', memory: '1Mi' } }] },
    { metadata: { name: 'b' }, timestamp: '2025-01-01T00:00:01Z', window: '30s', containers: [{ name: 'x', usage: { memory: '5Mi' } }] }, // no cpu: missing
    { metadata: { name: 'c' }, timestamp: '2025-01-01T00:00:01Z', window: '30s', containers: [] }, // no containers: missing
  ];
  const client = new RestMetricsClient({ list: async <T extends KObject>(res: ResourceRef, ns?: string | null, opts?: { labelSelector?: string }) => { calls.push([res, ns, opts]); return { items: items as unknown as T[] }; } });
  const { metrics, timestampMs } = await client.getResourceMetric('cpu', 'ns', 'app=web');
  assert.deepEqual(calls, [[podMetricsResource, 'ns', { labelSelector: 'app=web' }]]);
  assert.deepEqual([...metrics], [['a', { value: 1250, timestampMs: Date.parse('2025-01-01T00:00:00Z'), windowMs: 15_500 }]]);
  assert.equal(timestampMs, Date.parse('2025-01-01T00:00:00Z'));
  const mem = await client.getResourceMetric('memory', 'ns', 'app=web');
  assert.equal(mem.metrics.get('b')!.value, 5 * 1024 * 1024 * 1000);
  const one = await client.getResourceMetric('cpu', 'ns', 'app=web', 'y').catch((e: Error) => e.message);
  assert.equal(one, 'failed to get container metrics: container y not present in metrics for pod /b');
});

test('RestMetricsClient errors are worded as upstream', async () => {
  const empty = new RestMetricsClient({ list: async () => ({ items: [] }) });
  await assert.rejects(empty.getResourceMetric('cpu', 'ns', 'app=web'), { message: 'no metrics returned from resource metrics API' });
  const down = new RestMetricsClient({ list: async () => { throw new Error('the server could not find the requested resource'); } });
  await assert.rejects(down.getResourceMetric('cpu', 'ns', 'app=web'), { message: 'unable to fetch metrics from resource metrics API: the server could not find the requested resource' });
});

test('scaleTargetRef kind and apiVersion map to a resource with a /scale subresource', async () => {
  assert.deepEqual(scaleResourceFor({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x' }), { group: 'apps', version: 'v1', plural: 'deployments' });
  assert.deepEqual(scaleResourceFor({ apiVersion: 'apps/v1beta2', kind: 'ReplicaSet', name: 'x' }), { group: 'apps', version: 'v1', plural: 'replicasets' });
  assert.deepEqual(scaleResourceFor({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'x' }), { group: 'apps', version: 'v1', plural: 'statefulsets' });
  assert.throws(() => scaleResourceFor({ apiVersion: 'apps/v1', kind: 'Foo', name: 'x' }), { message: 'no matches for kind "Foo" in group "apps"' });
  assert.throws(() => scaleResourceFor({ apiVersion: 'v1', kind: 'Deployment', name: 'x' }), { message: 'no matches for kind "Deployment" in group ""' });
  assert.throws(() => parseGroupVersion('a/b/c'), { message: 'unexpected GroupVersion string: a/b/c' });
  const sent: unknown[] = [];
  const c = new RestScaleClient({
    getSubresource: async <R>(res: ResourceRef, ns: string | undefined | null, name: string, sub: string) => { sent.push(['GET', res.plural, ns, name, sub]); return {} as R; },
    raw: async (method: string, path: string, body?: unknown) => { sent.push([method, path, body]); return body; },
  });
  await c.getScale({ group: 'apps', version: 'v1', plural: 'deployments' }, 'ns', 'web');
  await c.updateScale({ group: 'apps', version: 'v1', plural: 'deployments' }, 'ns', { metadata: { name: 'web', resourceVersion: '7' }, spec: { replicas: 3 } });
  assert.deepEqual(sent, [
    ['GET', 'deployments', 'ns', 'web', 'scale'],
    ['PUT', '/apis/apps/v1/namespaces/ns/deployments/web/scale', { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web', resourceVersion: '7' }, spec: { replicas: 3 } }],
  ]);
});
