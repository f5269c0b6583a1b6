import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeAffinity } from './node-affinity.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';
import { CycleState } from '../../framework.js';

const n1 = nodeInfo(makeNode('n1', { labels: { disk: 'ssd', cores: '16', zone: 'a' } }));
const n2 = nodeInfo(makeNode('n2', { labels: { disk: 'hdd', cores: '4' } }));

function req(...terms: object[]) {
  return makePod('p', { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } } as object });
}
function fits(pod: ReturnType<typeof makePod>, ni = n1): boolean { return new NodeAffinity().filter(new PodInfo(pod), ni) === null; }

test('NodeAffinity: nodeSelector must match every label', () => {
  assert.ok(fits(makePod('a', { spec: { nodeSelector: { disk: 'ssd' } } })));
  const s = new NodeAffinity().filter(new PodInfo(makePod('a', { spec: { nodeSelector: { disk: 'ssd' } } })), n2);
  assert.equal(s?.code, 'UnschedulableAndUnresolvable');
  assert.deepEqual(s?.reasons, ["node(s) didn't match Pod's node affinity/selector"]);
});

test('NodeAffinity: every operator, terms ORed, expressions ANDed, matchFields on metadata.name', () => {
  const e = (key: string, operator: string, values?: string[]) => ({ matchExpressions: [{ key, operator, values }] });
  assert.ok(fits(req(e('disk', 'In', ['ssd', 'nvme']))));
  assert.ok(!fits(req(e('disk', 'NotIn', ['ssd']))));
  assert.ok(fits(req(e('gpu', 'NotIn', ['yes']))), 'NotIn matches a missing label');
  assert.ok(fits(req(e('zone', 'Exists'))));
  assert.ok(!fits(req(e('zone', 'DoesNotExist'))));
  assert.ok(fits(req(e('cores', 'Gt', ['8']))));
  assert.ok(!fits(req(e('cores', 'Gt', ['8'])), n2));
  assert.ok(fits(req(e('cores', 'Lt', ['8'])), n2));
  assert.ok(!fits(req(e('disk', 'Gt', ['1']))), 'Gt on a non-integer label does not match');
  assert.ok(fits(req(e('disk', 'In', ['nope']), e('zone', 'Exists'))), 'terms are ORed');
  assert.ok(!fits(req({ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }, { key: 'zone', operator: 'DoesNotExist' }] })), 'expressions are ANDed');
  assert.ok(fits(req({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] })));
  assert.ok(!fits(req({ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] })));
  assert.ok(!fits(req({})), 'an empty term matches nothing');
});

test('NodeAffinity score: preferred terms add their weights, normalized to 100', () => {
  const p = new NodeAffinity();
  const pod = new PodInfo(makePod('p', { spec: { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [
    { weight: 10, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } },
    { weight: 5, preference: { matchExpressions: [{ key: 'cores', operator: 'Exists' }] } },
  ] } } } }));
  const st = new CycleState();
  assert.equal(p.preScore(pod, [n1, n2], st), null);
  const scores = [n1, n2].map((n) => p.score(pod, n, st));
  assert.deepEqual(scores, [15, 5]);
  p.normalize(pod, [n1, n2], scores);
  assert.deepEqual(scores, [100, 33]);
  assert.equal(p.preScore(new PodInfo(makePod('none')), [n1], new CycleState()), 'skip');
});
