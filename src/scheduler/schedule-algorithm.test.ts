import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FitError, ScheduleAlgorithm, numFeasibleNodesToFind } from './schedule-algorithm.js';
import { buildFramework } from './registry.js';
import { PodInfo } from './node-info.js';
import { makeNode, makePod, snapshot } from './testing/fixtures.js';

const fw = () => buildFramework('default-scheduler', { scoring: 'LeastAllocated' });

test('numFeasibleNodesToFind: all below 100 nodes, adaptive percentage above, at least 100', () => {
  assert.equal(numFeasibleNodesToFind(50), 50);
  assert.equal(numFeasibleNodesToFind(150), 100);
  assert.equal(numFeasibleNodesToFind(1000), 420); // 50 - 8 = 42%
  assert.equal(numFeasibleNodesToFind(5000), 500); // 50 - 40 = 10%
  assert.equal(numFeasibleNodesToFind(6000), 300); // 50 - 48 → floor of 5%
  assert.equal(numFeasibleNodesToFind(5000, 100), 5000);
  assert.equal(numFeasibleNodesToFind(5000, 30), 1500);
});

test('the scheduling cycle picks the least allocated node and counts assumed pods at once', () => {
  const cache = snapshot([makeNode('n1', { cpu: '4' }), makeNode('n2', { cpu: '4' })], [makePod('old', { node: 'n1', cpu: '1' })]);
  const algo = new ScheduleAlgorithm(fw(), { random: () => 0 });
  const a = new PodInfo(makePod('a', { cpu: '3' }));
  assert.equal(algo.schedule(a, cache).nodeName, 'n2');
  cache.assumePod(a, 'n2');
  // n2 now has 3 of 4 cpus taken by the assumed pod, n1 1 of 4: a second 3-cpu pod fits only n1
  const b = new PodInfo(makePod('b', { cpu: '3' }));
  assert.equal(algo.schedule(b, cache).nodeName, 'n1');
  cache.assumePod(b, 'n1');
  const c = new PodInfo(makePod('c', { cpu: '3' }));
  assert.throws(() => algo.schedule(c, cache), (e: unknown) => e instanceof FitError
    && e.message === '0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.');
  // a failed bind forgets the assumption and frees the room
  cache.forgetPod(a.key);
  assert.equal(algo.schedule(c, cache).nodeName, 'n2');
});

test('FitError: reasons counted over nodes and sorted as upstream (by the "N reason" text)', () => {
  const cache = snapshot([
    makeNode('n1', { cpu: '1' }),
    makeNode('n2', { cpu: '1', memory: '1Gi' }),
    makeNode('n3', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }),
    makeNode('n4', { unschedulable: true }),
  ]);
  const algo = new ScheduleAlgorithm(fw());
  try {
    algo.schedule(new PodInfo(makePod('p', { cpu: '2', memory: '2Gi' })), cache);
    assert.fail('expected a FitError');
  } catch (e) {
    assert.ok(e instanceof FitError);
    assert.equal(e.message, '0/4 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable, 2 Insufficient cpu. '
      + 'preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.');
    assert.deepEqual([...e.diagnosis.unschedulablePlugins].sort(), ['NodeResourcesFit', 'NodeUnschedulable', 'TaintToleration']);
  }
});

test('with many nodes only a sample is evaluated, starting where the last pod stopped', () => {
  const nodes = Array.from({ length: 1000 }, (_, i) => makeNode(`n${i}`));
  const cache = snapshot(nodes);
  const algo = new ScheduleAlgorithm(fw());
  const r1 = algo.schedule(new PodInfo(makePod('a', { cpu: '100m' })), cache);
  assert.equal(r1.feasibleNodes, 420);
  assert.equal(r1.evaluatedNodes, 420);
  const idx = (n: string) => Number(n.slice(1));
  assert.ok(idx(r1.nodeName) < 420, `first pod chose among the first 420 nodes, got ${r1.nodeName}`);
  const r2 = algo.schedule(new PodInfo(makePod('b', { cpu: '100m' })), cache);
  assert.ok(idx(r2.nodeName) >= 420 && idx(r2.nodeName) < 840, `second pod chose among the next 420, got ${r2.nodeName}`);
});

test('no nodes at all is an error, not a FitError', () => {
  assert.throws(() => new ScheduleAlgorithm(fw()).schedule(new PodInfo(makePod('a')), snapshot([])), /no nodes available to schedule pods/);
});
