import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeName } from './node-name.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';

test('NodeName: a pod naming a node fits only that node', () => {
  const p = new NodeName();
  assert.equal(p.filter(new PodInfo(makePod('a')), nodeInfo(makeNode('n1'))), null);
  assert.equal(p.filter(new PodInfo(makePod('a', { node: 'n1' })), nodeInfo(makeNode('n1'))), null);
  assert.deepEqual(p.filter(new PodInfo(makePod('a', { node: 'n2' })), nodeInfo(makeNode('n1')))?.reasons, ["node(s) didn't match the requested node name"]);
});
