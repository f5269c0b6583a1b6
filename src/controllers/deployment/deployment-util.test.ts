import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  computeHash, equalIgnoreHash, maxSurge, maxUnavailable, newRSNewReplicas, proportionalSizes, resolveFenceposts,
  setNewReplicaSetAnnotations, safeEncodeString, findNewReplicaSet, findActiveOrLatest, deploymentTimedOut, setCondition, newCondition,
} from './deployment-util.js';
import type { Deployment, ReplicaSet } from '../replicaset/types.js';

const template = (image: string) => ({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image, resources: {} }] } });
const dep = (replicas: number, surge: number | string = '25%', unavail: number | string = '25%', extra: Partial<Deployment['spec']> = {}): Deployment => ({
  metadata: { name: 'web', uid: 'd1', annotations: {} },
  spec: { replicas, template: template('a'), strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: surge, maxUnavailable: unavail } }, ...extra },
});
const rs = (name: string, replicas: number, extra: Partial<ReplicaSet> = {}, annotations: Record<string, string> = {}): ReplicaSet => ({
  metadata: { name, annotations, creationTimestamp: extra.metadata?.creationTimestamp ?? '2025-01-01T00:00:00Z' }, spec: { replicas, template: template(name) }, status: extra.status,
});

test('pod-template-hash: stable, independent of key order and empty fields, different for different templates and collision counts', () => {
  const a = computeHash(template('nginx:1'));
  assert.equal(a, computeHash(template('nginx:1')));
  assert.equal(a, computeHash({ spec: { containers: [{ resources: {}, image: 'nginx:1', name: 'c' }] }, metadata: { creationTimestamp: null as unknown as string, labels: { app: 'web' } } }));
  assert.equal(a, computeHash({ metadata: { labels: { app: 'web', 'pod-template-hash': 'zzz' } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } }));
  assert.notEqual(a, computeHash(template('nginx:2')));
  assert.notEqual(a, computeHash(template('nginx:1'), 1));
  assert.notEqual(computeHash(template('nginx:1'), 1), computeHash(template('nginx:1'), 2));
  assert.match(a, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
  // a fixed value, so a change to the hash (which would roll every deployment on upgrade) is noticed
  assert.equal(a, '79bfd649dc');
  assert.equal(safeEncodeString('0123456789'), '456789bcdf');
});

test('equalIgnoreHash ignores only the pod-template-hash label', () => {
  const t = template('x');
  const withHash = { ...t, metadata: { labels: { app: 'web', 'pod-template-hash': 'abc' } } };
  assert.ok(equalIgnoreHash(t, withHash));
  assert.ok(!equalIgnoreHash(t, { ...t, metadata: { labels: { app: 'other' } } }));
});

test('fenceposts: surge rounds up, unavailable rounds down, both zero means one unavailable', () => {
  assert.deepEqual(resolveFenceposts('25%', '25%', 10), { surge: 3, unavailable: 2 });
  assert.deepEqual(resolveFenceposts('25%', '25%', 1), { surge: 1, unavailable: 0 });
  assert.deepEqual(resolveFenceposts(0, 0, 5), { surge: 0, unavailable: 1 });
  assert.deepEqual(resolveFenceposts(0, '10%', 5), { surge: 0, unavailable: 1 });
  assert.equal(maxUnavailable(dep(2, 0, 5)), 2, 'capped at replicas');
  assert.equal(maxUnavailable(dep(0, 1, 1)), 0);
  assert.equal(maxSurge({ ...dep(4), spec: { ...dep(4).spec, strategy: { type: 'Recreate' } } }), 0);
});

test('newRSNewReplicas scales the new ReplicaSet up to replicas + maxSurge in total', () => {
  const d = dep(10, 3, 2);
  const old = rs('old', 10), neu = rs('new', 0);
  assert.equal(newRSNewReplicas(d, [old, neu], neu), 3);
  assert.equal(newRSNewReplicas(d, [rs('old', 13), neu], neu), 0);
  assert.equal(newRSNewReplicas(d, [rs('old', 1), rs('new', 8)], rs('new', 8)), 10, 'never above replicas');
  assert.equal(newRSNewReplicas({ ...d, spec: { ...d.spec, strategy: { type: 'Recreate' } } }, [old, neu], neu), 10);
});

test('revision annotations: new ReplicaSets get the revision and replica annotations; a reactivated one keeps its history', () => {
  const d = dep(3);
  d.metadata!.annotations = { 'kubernetes.io/change-cause': 'kubectl set image', 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'deployment.kubernetes.io/revision': '2' };
  const fresh = rs('new', 0);
  assert.ok(setNewReplicaSetAnnotations(d, fresh, 3, false));
  assert.deepEqual(fresh.metadata!.annotations, {
    'kubernetes.io/change-cause': 'kubectl set image', 'deployment.kubernetes.io/revision': '3',
    'deployment.kubernetes.io/desired-replicas': '3', 'deployment.kubernetes.io/max-replicas': '4',
  });
  assert.ok(!setNewReplicaSetAnnotations(d, fresh, 3, true), 'idempotent');
  const old = rs('old', 0, {}, { 'deployment.kubernetes.io/revision': '1' });
  assert.ok(setNewReplicaSetAnnotations(d, old, 3, true));
  assert.equal(old.metadata!.annotations!['deployment.kubernetes.io/revision'], '3');
  assert.equal(old.metadata!.annotations!['deployment.kubernetes.io/revision-history'], '1');
  assert.ok(setNewReplicaSetAnnotations(d, old, 5, true));
  assert.equal(old.metadata!.annotations!['deployment.kubernetes.io/revision-history'], '1,3');
  const higher = rs('h', 0, {}, { 'deployment.kubernetes.io/revision': '9' });
  setNewReplicaSetAnnotations({ metadata: {}, spec: {} }, higher, 4, true);
  assert.equal(higher.metadata!.annotations!['deployment.kubernetes.io/revision'], '9', 'never lowered');
});

test('findNewReplicaSet takes the oldest ReplicaSet with the template; findActiveOrLatest', () => {
  const d = dep(3);
  const a = { ...rs('a', 1), spec: { replicas: 1, template: { ...template('a'), metadata: { labels: { app: 'web', 'pod-template-hash': 'h1' } } } } };
  const b = { ...rs('b', 1, { metadata: { creationTimestamp: '2024-01-01T00:00:00Z' } }), spec: { replicas: 1, template: template('a') } };
  assert.equal(findNewReplicaSet(d, [a, b, rs('c', 1)]), b);
  assert.equal(findActiveOrLatest(undefined, [rs('x', 0), rs('y', 2)])!.metadata!.name, 'y');
  assert.equal(findActiveOrLatest(rs('n', 1), [rs('y', 2)]), undefined);
  assert.equal(findActiveOrLatest(rs('n', 0), [rs('y', 0)])!.metadata!.name, 'n');
});

test('proportional scaling spreads a resize over the active ReplicaSets by their size', () => {
  // 10 replicas, surge 3: old 8 + new 5 = 13 = 10 + 3; scaled to 20 (allowed 20 + 5 = 25)
  const d = dep(20, 3, 2);
  d.spec!.strategy!.rollingUpdate = { maxSurge: 3, maxUnavailable: 2 };
  const old = rs('old', 8, { metadata: { creationTimestamp: '2025-01-01T00:00:00Z' } }, { 'deployment.kubernetes.io/max-replicas': '13' });
  const neu = rs('new', 5, { metadata: { creationTimestamp: '2025-01-02T00:00:00Z' } }, { 'deployment.kubernetes.io/max-replicas': '13' });
  const sizes = proportionalSizes(d, [old, neu]);
  assert.equal(sizes.get('old')! + sizes.get('new')!, 23);
  assert.deepEqual([sizes.get('old'), sizes.get('new')], [14, 9]);
  // scaling down to 5 (allowed 5 + 3)
  const d2 = dep(5, 3, 2);
  const down = proportionalSizes(d2, [old, neu]);
  assert.equal(down.get('old')! + down.get('new')!, 8);
  assert.ok(down.get('old')! >= down.get('new')!);
});

test('progress deadline: timed out once the Progressing condition is older than the deadline', () => {
  const d = dep(1, 1, 0, { progressDeadlineSeconds: 10 });
  const s = {};
  setCondition(s, newCondition('Progressing', 'True', 'ReplicaSetUpdated', 'x', '2025-01-01T00:00:00Z'));
  assert.ok(!deploymentTimedOut(d, s, Date.parse('2025-01-01T00:00:09Z')));
  assert.ok(deploymentTimedOut(d, s, Date.parse('2025-01-01T00:00:11Z')));
  setCondition(s, newCondition('Progressing', 'True', 'NewReplicaSetAvailable', 'x', '2025-01-01T00:00:00Z'));
  assert.ok(!deploymentTimedOut(d, s, Date.parse('2025-01-02T00:00:00Z')));
});
