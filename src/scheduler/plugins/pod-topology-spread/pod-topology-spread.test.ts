import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PodTopologySpread } from './pod-topology-spread.js';
import { makeNode, makePod, snapshot } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';
import { CycleState } from '../../framework.js';

const zoneNodes = [
  makeNode('a1', { labels: { zone: 'a' } }), makeNode('a2', { labels: { zone: 'a' } }),
  makeNode('b1', { labels: { zone: 'b' } }), makeNode('nolabel'),
];

function spreadPod(name: string, when: 'DoNotSchedule' | 'ScheduleAnyway', maxSkew = 1) {
  return makePod(name, { labels: { app: 'web' }, spec: { topologySpreadConstraints: [{ maxSkew, topologyKey: 'zone', whenUnsatisfiable: when, labelSelector: { matchLabels: { app: 'web' } } }] } });
}

test('PodTopologySpread filter: DoNotSchedule keeps the skew within maxSkew', () => {
  const existing = [makePod('w1', { node: 'a1', labels: { app: 'web' } }), makePod('w2', { node: 'a2', labels: { app: 'web' } }), makePod('other', { node: 'b1', labels: { app: 'db' } })];
  const snap = snapshot(zoneNodes, existing);
  const p = new PodTopologySpread();
  const pod = new PodInfo(spreadPod('new', 'DoNotSchedule'));
  const st = new CycleState();
  assert.equal(p.preFilter(pod, st, snap), null);
  // zone a has 2, zone b has 0: placing in a gives skew 3 > 1
  assert.deepEqual(p.filter(pod, snap.get('a1')!, st)?.reasons, ["node(s) didn't match pod topology spread constraints"]);
  assert.equal(p.filter(pod, snap.get('b1')!, st), null);
  const missing = p.filter(pod, snap.get('nolabel')!, st);
  assert.equal(missing?.code, 'UnschedulableAndUnresolvable');
  assert.deepEqual(missing?.reasons, ["node(s) didn't match pod topology spread constraints (missing required label)"]);
  // with maxSkew 2, zone a is allowed again
  const lenient = new PodInfo(spreadPod('new2', 'DoNotSchedule', 3));
  const st2 = new CycleState();
  p.preFilter(lenient, st2, snap);
  assert.equal(p.filter(lenient, snap.get('a1')!, st2), null);
});

test('PodTopologySpread score: ScheduleAnyway prefers the emptier domain', () => {
  const snap = snapshot(zoneNodes, [makePod('w1', { node: 'a1', labels: { app: 'web' } })]);
  const p = new PodTopologySpread();
  const pod = new PodInfo(spreadPod('new', 'ScheduleAnyway'));
  const nodes = ['a1', 'a2', 'b1'].map((n) => snap.get(n)!);
  const st = new CycleState();
  assert.equal(p.preScore(pod, nodes, st, snap), null);
  const scores = nodes.map((n) => p.score(pod, n, st));
  p.normalize(pod, nodes, scores, st);
  assert.ok(scores[2] > scores[0] && scores[2] > scores[1], `zone b preferred: ${scores}`);
  assert.equal(scores[0], scores[1], 'both zone-a nodes are alike');
});

test('PodTopologySpread default spreading: pods of the same owner avoid crowded hosts', () => {
  const nodes = [makeNode('h1'), makeNode('h2')];
  const snap = snapshot(nodes, [makePod('r1', { node: 'h1', owner: 'rs' }), makePod('r2', { node: 'h1', owner: 'rs' }), makePod('x', { node: 'h2', owner: 'other' })]);
  const p = new PodTopologySpread();
  const pod = new PodInfo(makePod('r3', { owner: 'rs' }));
  const nis = nodes.map((n) => snap.get(n.metadata!.name!)!);
  const st = new CycleState();
  assert.equal(p.preScore(pod, nis, st, snap), null);
  const scores = nis.map((n) => p.score(pod, n, st));
  p.normalize(pod, nis, scores, st);
  assert.ok(scores[1] > scores[0], `h2 preferred: ${scores}`);
  assert.equal(p.preScore(new PodInfo(makePod('lonely')), nis, new CycleState(), snap), 'skip', 'no owner, no constraints: nothing to say');
});
