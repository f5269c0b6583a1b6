import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InterPodAffinity } from './inter-pod-affinity.js';
import { makeNode, makePod, snapshot } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';
import { CycleState } from '../../framework.js';

const nodes = [makeNode('a1', { labels: { zone: 'a' } }), makeNode('a2', { labels: { zone: 'a' } }), makeNode('b1', { labels: { zone: 'b' } })];
const term = (app: string, topologyKey = 'zone') => ({ labelSelector: { matchLabels: { app } }, topologyKey });

function run(pod: PodInfo, snap: ReturnType<typeof snapshot>): Record<string, string | null> {
  const p = new InterPodAffinity();
  const st = new CycleState();
  assert.equal(p.preFilter(pod, st, snap), null);
  const out: Record<string, string | null> = {};
  for (const n of snap.nodeInfoList()) out[n.name] = p.filter(pod, n, st)?.reasons[0] ?? null;
  return out;
}

test('InterPodAffinity: required affinity needs a matching pod in the same topology domain', () => {
  const snap = snapshot(nodes, [makePod('db', { node: 'a1', labels: { app: 'db' } })]);
  const pod = new PodInfo(makePod('web', { spec: { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('db')] } } } }));
  assert.deepEqual(run(pod, snap), { a1: null, a2: null, b1: "node(s) didn't match pod affinity rules" });
});

test('InterPodAffinity: the first pod of a self-affine group may go anywhere', () => {
  const pod = new PodInfo(makePod('web', { labels: { app: 'web' }, spec: { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('web')] } } } }));
  assert.deepEqual(run(pod, snapshot(nodes)), { a1: null, a2: null, b1: null });
});

test('InterPodAffinity: required anti-affinity, both the incoming pod\'s and existing pods\'', () => {
  const snap = snapshot(nodes, [makePod('db', { node: 'a1', labels: { app: 'db' } })]);
  const pod = new PodInfo(makePod('web', { spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('db')] } } } }));
  assert.deepEqual(run(pod, snap), { a1: "node(s) didn't match pod anti-affinity rules", a2: "node(s) didn't match pod anti-affinity rules", b1: null });
  const snap2 = snapshot(nodes, [makePod('guard', { node: 'b1', labels: { app: 'guard' }, spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term('web', 'kubernetes.io/hostname')] } } } })]);
  const web = new PodInfo(makePod('web', { labels: { app: 'web' } }));
  assert.deepEqual(run(web, snap2), { a1: null, a2: null, b1: "node(s) didn't satisfy existing pods anti-affinity rules" });
  // other namespaces are not selected by default
  const elsewhere = new PodInfo(makePod('web', { ns: 'other', labels: { app: 'web' } }));
  assert.deepEqual(run(elsewhere, snap2), { a1: null, a2: null, b1: null });
});

test('InterPodAffinity score: preferred affinity pulls toward, preferred anti-affinity pushes away', () => {
  const snap = snapshot(nodes, [makePod('cache', { node: 'b1', labels: { app: 'cache' } })]);
  const p = new InterPodAffinity();
  const mk = (kind: 'podAffinity' | 'podAntiAffinity') => new PodInfo(makePod('web', { spec: { affinity: { [kind]: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: term('cache') }] } } } }));
  const nis = snap.nodeInfoList();
  for (const [kind, best] of [['podAffinity', 'b1'], ['podAntiAffinity', 'a1']] as const) {
    const pod = mk(kind);
    const st = new CycleState();
    assert.equal(p.preScore(pod, nis, st, snap), null);
    const scores = nis.map((n) => p.score(pod, n, st));
    p.normalize(pod, nis, scores);
    assert.equal(scores[nis.findIndex((n) => n.name === best)], 100, `${kind}: ${scores}`);
  }
});
