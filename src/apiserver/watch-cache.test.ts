import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toEntry } from './watch-cache.js';
import { storageJson } from './registry.js';
import { splitUrl } from './handler.js';

test('toEntry: the stored text with the revision as resourceVersion, parsed on first use', () => {
  const stored = storageJson({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'd', resourceVersion: '3' }, data: { k: 'v' } });
  const e = toEntry('/registry/core/configmaps/d/a', stored, 42);
  assert.deepEqual(JSON.parse(e.json), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { resourceVersion: '42', name: 'a', namespace: 'd' }, data: { k: 'v' } });
  assert.equal(e.obj.metadata?.resourceVersion, '42');
  assert.equal(e.obj, e.obj, 'parsed once');
  assert.equal(e.rev, 42);
});

test('toEntry: texts the splice cannot handle are re-serialized with the revision', () => {
  const cases = [
    // a resourceVersion already in the text (JSON.parse keeps the last duplicate key)
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"3"}}',
    // metadata not first
    '{"kind":"ConfigMap","apiVersion":"v1","data":{"x":"y"},"metadata":{"name":"a"}}',
    // no metadata
    '{"apiVersion":"v1","kind":"ConfigMap"}',
    // empty metadata
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}',
  ];
  for (const v of cases) {
    const e = toEntry('/registry/core/configmaps/d/a', v, 7);
    assert.equal(JSON.parse(e.json).metadata.resourceVersion, '7', v);
    assert.equal(e.obj.metadata?.resourceVersion, '7', v);
    assert.deepEqual(JSON.parse(e.json), e.obj, v);
  }
});

test('splitUrl gives the path and query new URL() gives', () => {
  const targets = [
    '/api/v1/namespaces/default/configmaps',
    '/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create&fieldValidation=Strict',
    '/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=500',
    '/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dweb,tier+in+(a,b)#frag',
    '/api/v1/namespaces/default/../kube-system/pods',
    '/api/v1/./namespaces',
    '/api/v1/namespaces/a%2Fb/pods',
    '/api/v1/namespaces/x/pods/%7Bname%7D',
    '/api/v1/namespaces/default/configmaps/a.b-c_d~e',
    '/version?',
    '/openapi/v3/apis/apps/v1?hash=ABC',
    '//api/v1',
    '/api/v1/namespaces/ü/pods',
    '/api/v1/na mes',
    '/api/v1/namespaces/default/pods\\x',
  ];
  for (const t of targets) {
    const u = new URL(t, 'http://x');
    assert.deepEqual(splitUrl(t), { path: u.pathname, query: u.search.slice(1) }, t);
    assert.deepEqual([...new URLSearchParams(splitUrl(t).query)], [...u.searchParams], t);
  }
});

test('storageJson: apiVersion, kind and metadata first, without resourceVersion, whatever the input order', () => {
  const want = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"y"}},"data":{"k":"v"}}';
  assert.equal(storageJson({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: 'y' } }, data: { k: 'v' } }), want);
  assert.equal(storageJson({ data: { k: 'v' }, metadata: { name: 'a', labels: { x: 'y' } }, kind: 'ConfigMap', apiVersion: 'v1' }), want);
  assert.equal(storageJson({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', resourceVersion: '9', labels: { x: 'y' } }, data: { k: 'v' } }), want);
  assert.equal(storageJson({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'a', labels: { x: 'y' } }, data: { k: 'v' } }), want);
});
