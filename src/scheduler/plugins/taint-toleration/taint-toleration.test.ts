import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaintToleration, toleratesTaint } from './taint-toleration.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';
import { CycleState } from '../../framework.js';

test('TaintToleration filter: NoSchedule / NoExecute taints need a toleration', () => {
  const p = new TaintToleration();
  const tainted = nodeInfo(makeNode('n1', { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }));
  const s = p.filter(new PodInfo(makePod('a')), tainted);
  assert.equal(s?.code, 'UnschedulableAndUnresolvable');
  assert.deepEqual(s?.reasons, ['node(s) had untolerated taint {dedicated: db}']);
  assert.equal(p.filter(new PodInfo(makePod('b', { spec: { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db' }] } })), tainted), null);
  assert.equal(p.filter(new PodInfo(makePod('c', { spec: { tolerations: [{ operator: 'Exists' }] } })), tainted), null);
  assert.notEqual(p.filter(new PodInfo(makePod('d', { spec: { tolerations: [{ key: 'dedicated', value: 'web' }] } })), tainted), null);
  const soft = nodeInfo(makeNode('n2', { taints: [{ key: 'k', effect: 'PreferNoSchedule' }] }));
  assert.equal(p.filter(new PodInfo(makePod('e')), soft), null);
});

test('toleratesTaint: operator, key and effect rules', () => {
  const taint = { key: 'k', value: 'v', effect: 'NoExecute' };
  assert.ok(toleratesTaint({ key: 'k', operator: 'Exists' }, taint));
  assert.ok(toleratesTaint({ key: 'k', value: 'v', effect: 'NoExecute' }, taint));
  assert.ok(!toleratesTaint({ key: 'k', value: 'v', effect: 'NoSchedule' }, taint));
  assert.ok(!toleratesTaint({ key: 'other', operator: 'Exists' }, taint));
});

test('TaintToleration score: fewer untolerated PreferNoSchedule taints score higher', () => {
  const p = new TaintToleration();
  const nodes = [
    nodeInfo(makeNode('clean')),
    nodeInfo(makeNode('one', { taints: [{ key: 'a', effect: 'PreferNoSchedule' }] })),
    nodeInfo(makeNode('two', { taints: [{ key: 'a', effect: 'PreferNoSchedule' }, { key: 'b', effect: 'PreferNoSchedule' }] })),
  ];
  const pod = new PodInfo(makePod('x', { spec: { tolerations: [{ key: 'b', operator: 'Exists', effect: 'PreferNoSchedule' }] } }));
  const st = new CycleState();
  p.preScore(pod, nodes, st);
  const scores = nodes.map((n) => p.score(pod, n, st));
  p.normalize(pod, nodes, scores);
  assert.deepEqual(scores, [100, 0, 0]);
});
