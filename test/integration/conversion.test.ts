// Versions that share storage are converted: autoscaling v1 ⇄ v2 HPAs, core ⇄ events.k8s.io Events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';

let api: ApiServer;
before(async () => { api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false }); });
after(async () => { await api?.close(); });

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(api.url + path, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json() as any };
}

test('an HPA written as autoscaling/v1 reads as v2, and back', async () => {
  const c = await call('POST', '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers', {
    apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web' },
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 1, maxReplicas: 5, targetCPUUtilizationPercentage: 50 },
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  assert.equal(c.body.apiVersion, 'autoscaling/v1');
  const v2 = await call('GET', '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web');
  assert.equal(v2.body.apiVersion, 'autoscaling/v2');
  assert.deepEqual(v2.body.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }]);
  const p = await call('PATCH', '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web', undefined);
  assert.ok(p.status >= 400); // no body
  const list = await call('GET', '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers');
  assert.equal(list.body.items[0].spec.targetCPUUtilizationPercentage, 50);
  assert.equal(list.body.items[0].apiVersion, 'autoscaling/v1');
});

test('a core Event reads as events.k8s.io/v1', async () => {
  const c = await call('POST', '/api/v1/namespaces/default/events', {
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' },
    reason: 'Started', message: 'Started container', type: 'Normal', source: { component: 'kubelet' }, count: 2,
    firstTimestamp: '2026-01-01T00:00:00Z', lastTimestamp: '2026-01-01T00:01:00Z',
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const e = await call('GET', '/apis/events.k8s.io/v1/namespaces/default/events/e1');
  assert.equal(e.body.apiVersion, 'events.k8s.io/v1');
  assert.equal(e.body.note, 'Started container');
  assert.equal(e.body.regarding.name, 'p');
  assert.equal(e.body.deprecatedCount, 2);
  assert.equal(e.body.reportingController, 'kubelet');
});
