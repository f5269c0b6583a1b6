import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPodAvailable, podsToDelete } from './pod-util.js';
import type { Pod } from './types.js';

const NOW = Date.parse('2025-01-01T01:00:00Z');
const iso = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();
function pod(name: string, o: { node?: string; phase?: string; readyAgo?: number; restarts?: number; createdAgo?: number; cost?: number } = {}): Pod {
  return {
    metadata: { name, uid: name, creationTimestamp: iso(o.createdAgo ?? 3000), annotations: o.cost !== undefined ? { 'controller.kubernetes.io/pod-deletion-cost': String(o.cost) } : undefined },
    spec: { nodeName: o.node },
    status: {
      phase: o.phase ?? 'Running',
      conditions: o.readyAgo !== undefined ? [{ type: 'Ready', status: 'True', lastTransitionTime: iso(o.readyAgo) }] : [{ type: 'Ready', status: 'False' }],
      containerStatuses: [{ restartCount: o.restarts ?? 0 }],
    },
  };
}

test('surplus pods: unscheduled, then pending, then not ready, then ready ones', () => {
  const pods = [pod('ready', { node: 'n1', readyAgo: 100 }), pod('notready', { node: 'n1' }), pod('pending', { node: 'n1', phase: 'Pending' }), pod('unscheduled', { phase: 'Pending' })];
  assert.deepEqual(podsToDelete(pods, [], 4 - 1, NOW).map((p) => p.metadata!.name), ['unscheduled', 'pending', 'notready']);
});

test('among ready pods: lower deletion cost, doubled-up nodes, recently ready, more restarts, newer go first', () => {
  const names = (ps: Pod[], n: number, related: Pod[] = []) => podsToDelete(ps, related, n, NOW).map((p) => p.metadata!.name);
  assert.deepEqual(names([pod('a', { node: 'n', readyAgo: 10, cost: 5 }), pod('b', { node: 'n', readyAgo: 10, cost: -1 })], 1), ['b']);
  const crowded = [pod('x', { node: 'n1', readyAgo: 100 }), pod('y', { node: 'n2', readyAgo: 100 })];
  assert.deepEqual(names(crowded, 1, [...crowded, pod('other', { node: 'n2', readyAgo: 5 })]), ['y']);
  assert.deepEqual(names([pod('old', { node: 'n', readyAgo: 3000 }), pod('recent', { node: 'n', readyAgo: 10 })], 1), ['recent']);
  // ready within the same power-of-two span: restarts decide
  assert.deepEqual(names([pod('calm', { node: 'n', readyAgo: 1000, restarts: 0 }), pod('flappy', { node: 'n', readyAgo: 1001, restarts: 4 })], 1), ['flappy']);
  assert.deepEqual(names([pod('older', { node: 'n', readyAgo: 1000, createdAgo: 2000 }), pod('newer', { node: 'n', readyAgo: 1000, createdAgo: 1500 })], 1), ['newer']);
});

test('availability needs minReadySeconds of readiness', () => {
  assert.ok(isPodAvailable(pod('a', { readyAgo: 5 }), 0, NOW));
  assert.ok(!isPodAvailable(pod('a', { readyAgo: 5 }), 10, NOW));
  assert.ok(isPodAvailable(pod('a', { readyAgo: 11 }), 10, NOW));
  assert.ok(!isPodAvailable(pod('a'), 0, NOW));
});
