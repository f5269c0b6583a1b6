import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minTolerationMs, toleratesTaint, type Taint } from './taints.js';

const unreachable: Taint = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' };
const notReady: Taint = { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' };

test('a toleration matches a taint by key, operator, value and effect', () => {
  assert.ok(toleratesTaint({ key: unreachable.key, operator: 'Exists', effect: 'NoExecute' }, unreachable));
  assert.ok(toleratesTaint({ operator: 'Exists' }, unreachable), 'empty key with Exists tolerates everything');
  assert.ok(!toleratesTaint({ key: unreachable.key, operator: 'Exists', effect: 'NoSchedule' }, unreachable));
  assert.ok(!toleratesTaint({ key: 'other', operator: 'Exists' }, unreachable));
  assert.ok(toleratesTaint({ key: 'k', value: 'v' }, { key: 'k', value: 'v', effect: 'NoExecute' }), 'Equal is the default operator');
  assert.ok(!toleratesTaint({ key: 'k', value: 'w' }, { key: 'k', value: 'v', effect: 'NoExecute' }));
});

test('the eviction delay is the smallest tolerationSeconds used; an untolerated taint means now', () => {
  assert.equal(minTolerationMs([], [unreachable]), undefined);
  assert.equal(minTolerationMs([{ key: unreachable.key, operator: 'Exists' }], [unreachable]), Infinity);
  assert.equal(minTolerationMs([
    { key: unreachable.key, operator: 'Exists', tolerationSeconds: 300 },
    { key: notReady.key, operator: 'Exists', tolerationSeconds: 30 },
  ], [unreachable, notReady]), 30_000);
  assert.equal(minTolerationMs([{ key: unreachable.key, operator: 'Exists', tolerationSeconds: 300 }], [unreachable, notReady]), undefined, 'one taint not tolerated');
  assert.equal(minTolerationMs([{ operator: 'Exists', tolerationSeconds: -5 }], [unreachable]), 0);
});
