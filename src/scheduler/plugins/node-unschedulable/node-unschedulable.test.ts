import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeUnschedulable } from './node-unschedulable.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';

test('NodeUnschedulable: cordoned nodes reject pods unless they tolerate the unschedulable taint', () => {
  const p = new NodeUnschedulable();
  const cordoned = nodeInfo(makeNode('n1', { unschedulable: true }));
  const s = p.filter(new PodInfo(makePod('a')), cordoned);
  assert.equal(s?.code, 'UnschedulableAndUnresolvable');
  assert.deepEqual(s?.reasons, ['node(s) were unschedulable']);
  assert.equal(p.filter(new PodInfo(makePod('a')), nodeInfo(makeNode('n2'))), null);
  const tolerant = makePod('t', { spec: { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] } });
  assert.equal(p.filter(new PodInfo(tolerant), cordoned), null);
  const wrongEffect = makePod('w', { spec: { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoExecute' }] } });
  assert.notEqual(p.filter(new PodInfo(wrongEffect), cordoned), null);
});
