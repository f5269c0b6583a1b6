import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeastAllocated } from './least-allocated.js';
import { MostAllocated } from '../most-allocated/most-allocated.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';

test('LeastAllocated prefers the emptier node; MostAllocated the fuller one', () => {
  const empty = nodeInfo(makeNode('e', { cpu: '4', memory: '8Gi' }));
  const busy = nodeInfo(makeNode('b', { cpu: '4', memory: '8Gi' }), makePod('x', { node: 'b', cpu: '2', memory: '4Gi' }));
  const pod = new PodInfo(makePod('p', { cpu: '1', memory: '2Gi' }));
  const la = new LeastAllocated();
  // empty: cpu (4-1)/4 = 75, mem 75 → 75; busy: (4-3)/4 = 25, 25 → 25
  assert.equal(la.score(pod, empty), 75);
  assert.equal(la.score(pod, busy), 25);
  const ma = new MostAllocated();
  assert.equal(ma.score(pod, empty), 25);
  assert.equal(ma.score(pod, busy), 75);
  const huge = new PodInfo(makePod('h', { cpu: '8', memory: '16Gi' }));
  assert.equal(la.score(huge, empty), 0, 'over capacity scores 0');
  assert.equal(ma.score(huge, empty), 100, 'over capacity counts as full');
});
