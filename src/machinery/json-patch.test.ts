import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyJsonPatch, escapeJsonPointerToken, parseJsonPointer } from './json-patch.js';
import { StatusError } from './status.js';

function fails(fn: () => unknown, code: number, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StatusError, String(e));
    assert.equal(e.code, code);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('rollout undo body: replace template and annotations', () => {
  const deploy = {
    metadata: { name: 'web', annotations: { 'deployment.kubernetes.io/revision': '3', note: 'x' } },
    spec: { replicas: 2, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.28' }] } } },
  };
  const before = structuredClone(deploy);
  const out = applyJsonPatch(deploy, [
    { op: 'replace', path: '/spec/template', value: { metadata: { creationTimestamp: null, labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27', resources: {} }] } } },
    { op: 'replace', path: '/metadata/annotations', value: { 'deployment.kubernetes.io/revision': '2' } },
  ]) as typeof deploy;
  assert.equal(out.spec.template.spec.containers[0].image, 'nginx:1.27');
  assert.deepEqual(out.metadata.annotations, { 'deployment.kubernetes.io/revision': '2' });
  assert.equal(out.spec.replicas, 2);
  assert.deepEqual(deploy, before, 'input not mutated');
});

test('add, remove, move, copy, test', () => {
  const doc = { a: { b: [1, 2, 3] }, 'x/y': { '~z': 1 } };
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'add', path: '/a/b/-', value: 4 }]), { a: { b: [1, 2, 3, 4] }, 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'add', path: '/a/b/0', value: 0 }]), { a: { b: [0, 1, 2, 3] }, 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'add', path: '/a/b/3', value: 9 }]), { a: { b: [1, 2, 3, 9] }, 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'remove', path: '/a/b/1' }]), { a: { b: [1, 3] }, 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'remove', path: '/x~1y/~0z' }]), { a: { b: [1, 2, 3] }, 'x/y': {} });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'move', from: '/a/b', path: '/c' }]), { a: {}, c: [1, 2, 3], 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'move', from: '/a/b/0', path: '/a/b/-' }]), { a: { b: [2, 3, 1] }, 'x/y': { '~z': 1 } });
  const copied = applyJsonPatch(doc, [{ op: 'copy', from: '/a', path: '/d' }, { op: 'add', path: '/d/b/-', value: 5 }]) as { a: { b: number[] }; d: { b: number[] } };
  assert.deepEqual(copied.a.b, [1, 2, 3], 'copy is deep');
  assert.deepEqual(copied.d.b, [1, 2, 3, 5]);
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'test', path: '/a/b', value: [1, 2, 3] }, { op: 'replace', path: '/a', value: 1 }]), { a: 1, 'x/y': { '~z': 1 } });
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'test', path: '/nope', value: null }]), doc, 'missing member tests equal to null, as upstream');
  assert.deepEqual(applyJsonPatch(doc, [{ op: 'replace', path: '', value: { z: 1 } }]), { z: 1 });
  assert.deepEqual(applyJsonPatch(doc, []), doc);
});

test('operations are applied in sequence and stop at the first failure', () => {
  const doc = { a: 1 };
  fails(() => applyJsonPatch(doc, [{ op: 'replace', path: '/a', value: 2 }, { op: 'test', path: '/a', value: 1 }]), 422, 'testing value /a failed: test failed');
  assert.deepEqual(doc, { a: 1 });
});

test('failures to apply are 422 Invalid naming the operation and path', () => {
  const doc = { a: { b: [1] } };
  fails(() => applyJsonPatch(doc, [{ op: 'replace', path: '/a/c', value: 1 }]), 422, 'replace operation does not apply: doc is missing key: /a/c: missing value');
  fails(() => applyJsonPatch(doc, [{ op: 'replace', path: '/x/c', value: 1 }]), 422, 'replace operation does not apply: doc is missing path: /x/c: missing value');
  fails(() => applyJsonPatch(doc, [{ op: 'add', path: '/x/y', value: 1 }]), 422, 'add operation does not apply: doc is missing path: "/x/y": missing value');
  fails(() => applyJsonPatch(doc, [{ op: 'remove', path: '/a/zz' }]), 422, "error in remove for path: '/a/zz': Unable to remove nonexistent key: zz: missing value");
  fails(() => applyJsonPatch(doc, [{ op: 'add', path: '/a/b/5', value: 1 }]), 422, "error in add for path: '/a/b/5': Unable to access invalid index: 5: invalid index referenced");
  fails(() => applyJsonPatch(doc, [{ op: 'remove', path: '/a/b/1' }]), 422, /Unable to access invalid index: 1/);
  fails(() => applyJsonPatch(doc, [{ op: 'add', path: '/a/b/x', value: 1 }]), 422, /value was not a proper array index: 'x'/);
  fails(() => applyJsonPatch(doc, [{ op: 'test', path: '/a/b', value: [2] }]), 422, 'testing value /a/b failed: test failed');
  fails(() => applyJsonPatch(doc, [{ op: 'move', from: '/a', path: '/a/x' }]), 422, /prefix/);
  fails(() => applyJsonPatch(doc, [{ op: 'copy', from: '/q', path: '/r' }]), 422, 'copy operation does not apply: doc is missing from path: /q: missing value');
  fails(() => applyJsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), 422, 'Unexpected kind: frobnicate');
  fails(() => applyJsonPatch(doc, [{ op: 'add', value: 1 }]), 422, /missing path field/);
  fails(() => applyJsonPatch(doc, [{ op: 'add', path: '/q' }]), 422, /missing value field/);
});

test('a body that is not a list of operations is a 400', () => {
  fails(() => applyJsonPatch({}, { op: 'add' }), 400, 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  fails(() => applyJsonPatch({}, [1]), 400, 'json: cannot unmarshal number into Go value of type jsonpatch.Operation');
});

test('JSON pointer escaping', () => {
  assert.deepEqual(parseJsonPointer('/metadata/annotations/a~1b~0c'), ['metadata', 'annotations', 'a/b~c']);
  assert.deepEqual(parseJsonPointer(''), []);
  assert.equal(parseJsonPointer('a/b'), undefined);
  assert.equal(escapeJsonPointerToken('a/b~c'), 'a~1b~0c');
});
