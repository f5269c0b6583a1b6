import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMergePatch, cloneJson, createMergePatch, jsonEqual } from './merge-patch.js';

test('kubectl label / annotate / scale bodies', () => {
  const pod = { metadata: { name: 'nginx', labels: { app: 'nginx', tier: 'fe' } }, spec: { containers: [{ name: 'c' }] } };
  const before = cloneJson(pod);
  assert.deepEqual(applyMergePatch(pod, { metadata: { labels: { tier: null } } }), { metadata: { name: 'nginx', labels: { app: 'nginx' } }, spec: { containers: [{ name: 'c' }] } });
  assert.deepEqual(applyMergePatch(pod, { metadata: { annotations: { note: 'hello' } } }), { metadata: { name: 'nginx', labels: { app: 'nginx', tier: 'fe' }, annotations: { note: 'hello' } }, spec: { containers: [{ name: 'c' }] } });
  assert.deepEqual(applyMergePatch({ spec: { replicas: 2 }, status: { replicas: 2 } }, { spec: { replicas: 3 } }), { spec: { replicas: 3 }, status: { replicas: 2 } });
  assert.deepEqual(pod, before, 'input not mutated');
});

test('RFC 7386 rules: arrays and non-objects replace; nulls inside new members vanish', () => {
  assert.deepEqual(applyMergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] });
  assert.deepEqual(applyMergePatch({ a: 'x' }, { a: { b: 'c', d: null } }), { a: { b: 'c' } });
  assert.deepEqual(applyMergePatch({ a: 1 }, [1]), [1]);
  assert.deepEqual(applyMergePatch({ a: 1 }, 'x'), 'x');
  assert.deepEqual(applyMergePatch([1], { a: 1 }), { a: 1 });
  assert.deepEqual(applyMergePatch({ a: 1 }, {}), { a: 1 });
  assert.deepEqual(applyMergePatch({ a: { b: 1 } }, { a: null, c: null }), {});
});

test('the result shares nothing with the inputs', () => {
  const doc = { keep: { deep: [1] } };
  const patch = { add: { n: [2] } };
  const out = applyMergePatch(doc, patch) as { keep: { deep: number[] }; add: { n: number[] } };
  out.keep.deep.push(9);
  out.add.n.push(9);
  assert.deepEqual(doc, { keep: { deep: [1] } });
  assert.deepEqual(patch, { add: { n: [2] } });
});

test('createMergePatch is the inverse of applyMergePatch', () => {
  const cases: [unknown, unknown][] = [
    [{ a: 1, b: { c: 2, d: 3 }, e: [1] }, { a: 1, b: { c: 5 }, e: [1, 2], f: 'new' }],
    [{ spec: { replicas: 2 } }, { spec: { replicas: 2 } }],
    [{ m: { x: 1 } }, { m: 'scalar' }],
    [{ m: 'scalar' }, { m: { x: 1 } }],
  ];
  for (const [o, m] of cases) {
    const p = createMergePatch(o, m);
    assert.deepEqual(applyMergePatch(o, p), m);
  }
  assert.deepEqual(createMergePatch({ spec: { replicas: 2 } }, { spec: { replicas: 2 } }), {});
  assert.deepEqual(createMergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } }), { a: null, b: { d: null } });
});

test('jsonEqual ignores key order only', () => {
  assert.equal(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }), true);
  assert.equal(jsonEqual([1, 2], [2, 1]), false);
  assert.equal(jsonEqual({ a: undefined }, {}), false);
  assert.equal(jsonEqual(null, {}), false);
});
