import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, Informer, type ListWatchClient } from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import { ReplicaSetController, slowStartBatch, type ReplicaSetClient } from './replicaset-controller.js';
import type { Pod, ReplicaSet } from './types.js';

const idle: ListWatchClient = { list: async () => ({ metadata: {}, items: [] }), watch: () => ({ async *[Symbol.asyncIterator]() {} }) };

class FakeClient implements ReplicaSetClient {
  created: Pod[] = [];
  deleted: string[] = [];
  statuses: ReplicaSet[] = [];
  failCreatesAfter = Infinity;
  private n = 0;
  async get<T extends KObject>(): Promise<T> { throw new Error('not used'); }
  async create<T extends KObject>(_r: unknown, _ns: unknown, obj: T): Promise<T> {
    if (this.created.length >= this.failCreatesAfter) throw new Error('quota exceeded');
    const p = structuredClone(obj) as Pod;
    p.metadata!.name = `${p.metadata!.generateName}${String(this.n++).padStart(5, '0')}`;
    p.metadata!.uid = p.metadata!.name;
    this.created.push(p);
    return p as T;
  }
  async updateStatus<T extends KObject>(_r: unknown, _ns: unknown, obj: T): Promise<T> { this.statuses.push(structuredClone(obj) as ReplicaSet); return obj; }
  async patch<T extends KObject>(): Promise<T> { throw new Error('not used'); }
  async delete(_r: unknown, _ns: unknown, name: string): Promise<unknown> { this.deleted.push(name); return {}; }
}

function setup(replicas: number) {
  const clock = new FakeClock(Date.parse('2025-01-01T00:00:00Z'));
  const client = new FakeClient();
  const rsInformer = new Informer<ReplicaSet>({ client: idle, resource: { group: 'apps', version: 'v1', plural: 'replicasets' } });
  const podInformer = new Informer<Pod>({ client: idle, resource: { group: '', version: 'v1', plural: 'pods' }, indexers: { byControllerOwner: (o) => (o.metadata?.ownerReferences ?? []).filter((r) => r.controller).map((r) => r.uid) } });
  const c = new ReplicaSetController({ client, rsInformer, podInformer, clock });
  const rs: ReplicaSet = {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web', namespace: 'ns', uid: 'rs-uid', generation: 1, resourceVersion: '1' },
    spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
  };
  rsInformer.indexer.set(rs);
  return { clock, client, rsInformer, podInformer, c, rs };
}

test('creates the missing pods from the template, owned by the ReplicaSet, in slow-start batches', async () => {
  const { client, c } = setup(3);
  await c.sync('ns/web');
  assert.equal(client.created.length, 3);
  for (const p of client.created) {
    assert.equal(p.metadata!.generateName, 'web-');
    assert.deepEqual(p.metadata!.labels, { app: 'web' });
    assert.deepEqual(p.metadata!.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true, blockOwnerDeletion: true }]);
  }
  assert.equal(client.statuses.at(-1)!.status!.observedGeneration, 1);
});

test('expectations: a stale cache does not make it create twice, until the creations are seen or time out', async () => {
  const { client, c, podInformer, clock } = setup(3);
  await c.sync('ns/web');
  assert.equal(client.created.length, 3);
  await c.sync('ns/web'); // the informer has not seen the pods yet
  assert.equal(client.created.length, 3);
  // two of three arrive; still waiting for the third
  for (const p of client.created.slice(0, 2)) { podInformer.indexer.set(p); c.expectations.creationObserved('ns/web'); }
  await c.sync('ns/web');
  assert.equal(client.created.length, 3);
  // the third never arrives: after the 5 minute expectation timeout the controller acts again
  clock.step(5 * 60_000 + 1);
  await c.sync('ns/web');
  assert.equal(client.created.length, 4);
});

test('a create error stops the slow start, lowers expectations, and sets ReplicaFailure', async () => {
  const { client, c } = setup(10);
  client.failCreatesAfter = 2;
  await assert.rejects(c.sync('ns/web'), /quota exceeded/);
  // batches 1, 2: the second batch has one failure; the rest is skipped
  assert.equal(client.created.length, 2);
  assert.deepEqual(c.expectations.get('ns/web'), { add: 2, del: 0 });
  const cond = client.statuses.at(-1)!.status!.conditions![0]!;
  assert.deepEqual([cond.type, cond.status, cond.reason, cond.message], ['ReplicaFailure', 'True', 'FailedCreate', 'quota exceeded']);
});

test('deletes surplus pods, not-ready ones first, and waits for the deletions to be observed', async () => {
  const { client, c, podInformer } = setup(1);
  const mk = (name: string, ready: boolean): Pod => ({
    metadata: { name, namespace: 'ns', uid: name, labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }] },
    spec: { nodeName: 'n1' }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  for (const p of [mk('a', true), mk('b', false), mk('c', true)]) podInformer.indexer.set(p);
  await c.sync('ns/web');
  assert.equal(client.deleted.length, 2);
  assert.ok(client.deleted.includes('b'));
  await c.sync('ns/web');
  assert.equal(client.deleted.length, 2, 'no second round before the deletions are seen');
  const st = client.statuses.at(-1)!.status!;
  assert.deepEqual([st.replicas, st.readyReplicas, st.availableReplicas], [3, 2, 2]);
});

test('pods being deleted and finished pods do not count', async () => {
  const { client, c, podInformer } = setup(2);
  const own = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }];
  podInformer.indexer.set({ metadata: { name: 'gone', namespace: 'ns', uid: 'g', labels: { app: 'web' }, ownerReferences: own, deletionTimestamp: '2025-01-01T00:00:00Z' }, spec: {}, status: { phase: 'Running' } });
  podInformer.indexer.set({ metadata: { name: 'done', namespace: 'ns', uid: 'd', labels: { app: 'web' }, ownerReferences: own }, spec: {}, status: { phase: 'Succeeded' } });
  await c.sync('ns/web');
  assert.equal(client.created.length, 2);
});

test('slowStartBatch goes 1, 2, 4, … and stops at the first failing batch', async () => {
  let inFlight = 0;
  const batches: number[] = [];
  const r = await slowStartBatch(10, 1, async () => {
    if (inFlight++ === 0) queueMicrotask(() => { batches.push(inFlight); inFlight = 0; });
  });
  assert.equal(r.successes, 10);
  assert.deepEqual(batches, [1, 2, 4, 3]);
  let n = 0;
  const r2 = await slowStartBatch(10, 1, async () => { if (++n === 3) throw new Error('boom'); });
  assert.equal(r2.successes, 2);
  assert.equal(n, 3, 'batches of 1 and 2; the 4-batch never started');
});
