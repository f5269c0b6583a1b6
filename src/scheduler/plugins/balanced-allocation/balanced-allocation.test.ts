import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BalancedAllocation, balancedScore } from './balanced-allocation.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';

test('BalancedAllocation: equal cpu and memory fractions score 100, lopsided less', () => {
  assert.equal(balancedScore(0.5, 0.5), 100);
  assert.equal(balancedScore(1, 0), 50);
  assert.equal(balancedScore(0.75, 0.25), 75);
  const b = new BalancedAllocation();
  const n = nodeInfo(makeNode('n', { cpu: '4', memory: '4Gi' }));
  assert.equal(b.score(new PodInfo(makePod('p', { cpu: '2', memory: '2Gi' })), n), 100);
  assert.equal(b.score(new PodInfo(makePod('q', { cpu: '4', memory: '0' })), n), 50);
});
