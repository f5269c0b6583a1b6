import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPatch, recordUpdate, type ManagedFieldsEntry } from './server-side-apply.js';
import { patchMetaFor } from '../api/patch-meta.js';
import type { KObject } from '../api/types.js';
import { StatusError } from '../machinery/status.js';

const T1 = '2025-01-01T00:00:00Z';
const T2 = '2025-01-01T00:01:00Z';
const lookup = patchMetaFor('Deployment');
const opts = (manager: string, force = false, now = T1) => ({ manager, force, kind: 'Deployment', now, lookup });

function deployment(replicas: number | undefined, containers: Record<string, unknown>[], labels: Record<string, string> = { app: 'web' }): KObject {
  const spec: Record<string, unknown> = {
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers } },
  };
  if (replicas !== undefined) spec.replicas = replicas;
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default', labels }, spec };
}
const spec = (o: KObject) => o.spec as any;
const entries = (o: KObject) => o.metadata!.managedFields as ManagedFieldsEntry[];
const entry = (o: KObject, manager: string) => entries(o).find((e) => e.manager === manager);

test('create via apply records an Apply entry in FieldsV1 format', () => {
  const obj = applyPatch(undefined, deployment(2, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl'));
  assert.equal(spec(obj).replicas, 2);
  assert.equal(obj.metadata!.name, 'web');
  assert.deepEqual(entries(obj), [{
    manager: 'kubectl', operation: 'Apply', apiVersion: 'apps/v1', time: T1, fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': {
        'f:replicas': {},
        'f:selector': { 'f:matchLabels': { 'f:app': {} } },
        'f:template': {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } },
        },
      },
    },
  }]);
});

test('re-apply with a changed field, then without a field: it is removed', () => {
  let obj = applyPatch(undefined, deployment(2, [{ name: 'web', image: 'nginx:1.27' }], { app: 'web', tier: 'fe' }), opts('kubectl'));
  obj = applyPatch(obj, deployment(3, [{ name: 'web', image: 'nginx:1.28' }], { app: 'web', tier: 'fe' }), opts('kubectl', false, T2));
  assert.equal(spec(obj).replicas, 3);
  assert.equal(spec(obj).template.spec.containers[0].image, 'nginx:1.28');
  assert.equal(entry(obj, 'kubectl')!.time, T2);
  obj = applyPatch(obj, deployment(undefined, [{ name: 'web', image: 'nginx:1.28' }]), opts('kubectl'));
  assert.equal(spec(obj).replicas, undefined);
  assert.deepEqual(obj.metadata!.labels, { app: 'web' });
  assert.equal(entries(obj).length, 1);
  assert.equal((entry(obj, 'kubectl')!.fieldsV1['f:spec'] as Record<string, unknown>)['f:replicas'], undefined);
});

test('containers merge by name; a dropped container is removed, other managers keep theirs', () => {
  let obj = applyPatch(undefined, deployment(1, [{ name: 'web', image: 'nginx' }, { name: 'log', image: 'busybox' }]), opts('kubectl'));
  // another applier adds its own container and an env var to web
  obj = applyPatch(obj, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'A', value: '1' }] }, { name: 'proxy', image: 'envoy' }] } } },
  }, opts('mesh'));
  assert.deepEqual(spec(obj).template.spec.containers.map((c: { name: string }) => c.name), ['web', 'log', 'proxy']);
  assert.deepEqual(spec(obj).template.spec.containers[0], { name: 'web', image: 'nginx', env: [{ name: 'A', value: '1' }] });
  // kubectl drops "log" and also stops mentioning "web"'s image: the image goes, web stays (mesh owns part of it)
  obj = applyPatch(obj, deployment(1, [{ name: 'web' }]), opts('kubectl'));
  assert.deepEqual(spec(obj).template.spec.containers, [{ name: 'web', env: [{ name: 'A', value: '1' }] }, { name: 'proxy', image: 'envoy' }]);
  // kubectl stops mentioning containers at all: web survives with its name because mesh still owns part of it
  obj = applyPatch(obj, deployment(1, []), opts('kubectl'));
  assert.deepEqual(spec(obj).template.spec.containers, [{ name: 'web', env: [{ name: 'A', value: '1' }] }, { name: 'proxy', image: 'envoy' }]);
});

test('conflict with an Update manager: 409 with upstream message; force takes ownership', () => {
  // client-side apply created the object (an ordinary write by kubectl-client-side-apply)
  const created = deployment(2, [{ name: 'web', image: 'nginx:1.27' }]);
  recordUpdate(undefined, created, 'kubectl-client-side-apply', 'apps/v1', T1);
  assert.equal(entry(created, 'kubectl-client-side-apply')!.operation, 'Update');

  // same values: no conflict, shared ownership
  const same = applyPatch(created, deployment(2, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl'));
  assert.equal(entries(same).length, 2);

  let err: unknown;
  try { applyPatch(created, deployment(3, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl')); } catch (e) { err = e; }
  assert.ok(err instanceof StatusError);
  assert.equal(err.code, 409);
  assert.equal(err.reason, 'Conflict');
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas');
  assert.deepEqual(err.details?.causes, [{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using apps/v1', field: '.spec.replicas' }]);

  // two conflicts are listed per manager
  assert.throws(() => applyPatch(created, deployment(3, [{ name: 'web', image: 'nginx:1.28' }]), opts('kubectl')), (e: unknown) =>
    e instanceof StatusError && e.message === 'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name="web"].image');

  const forced = applyPatch(created, deployment(3, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl', true));
  assert.equal(spec(forced).replicas, 3);
  const csa = entry(forced, 'kubectl-client-side-apply')!;
  assert.equal((csa.fieldsV1['f:spec'] as Record<string, unknown>)['f:replicas'], undefined);
  assert.equal(csa.time, T1);
  // now kubectl owns replicas alone: a later ordinary write by someone else transfers it without conflict
  const scaled = structuredClone(forced);
  (scaled.spec as any).replicas = 5;
  recordUpdate(forced, scaled, 'kubectl-scale', 'apps/v1', T2);
  assert.ok((entry(scaled, 'kubectl-scale')!.fieldsV1['f:spec'] as Record<string, unknown>)['f:replicas']);
  assert.equal((entry(scaled, 'kubectl')!.fieldsV1['f:spec'] as Record<string, unknown>)['f:replicas'], undefined);
  assert.throws(() => applyPatch(scaled, deployment(3, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl')), /conflict with "kubectl-scale" using apps\/v1: \.spec\.replicas/);
});

test('kubectl apply --server-side after client-side apply: the annotation-only apply keeps the spec', () => {
  const lastApplied = '{"apiVersion":"apps/v1","kind":"Deployment"}\n';
  const created = deployment(2, [{ name: 'web', image: 'nginx:1.27' }]);
  created.metadata!.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied };
  recordUpdate(undefined, created, 'kubectl-client-side-apply', 'apps/v1', T1);

  const annotationOnly = (value: string): KObject => ({
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': value } },
  });
  // either order kubectl may use: annotation first, then the manifest ...
  let obj = applyPatch(created, annotationOnly(lastApplied), opts('kubectl-last-applied'));
  assert.deepEqual(obj.spec, created.spec);
  obj = applyPatch(obj, deployment(2, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl'));
  assert.deepEqual(obj.spec, created.spec);
  // the server keeps the annotation current for manager "kubectl"
  const updatedAnnotation = obj.metadata!.annotations!['kubectl.kubernetes.io/last-applied-configuration'];
  assert.notEqual(updatedAnnotation, lastApplied);
  assert.equal(JSON.parse(updatedAnnotation).spec.replicas, 2);

  // ... or the manifest first, then the annotation with its new value
  let obj2 = applyPatch(created, deployment(2, [{ name: 'web', image: 'nginx:1.27' }]), opts('kubectl'));
  obj2 = applyPatch(obj2, annotationOnly(obj2.metadata!.annotations!['kubectl.kubernetes.io/last-applied-configuration']), opts('kubectl-last-applied'));
  assert.deepEqual(obj2.spec, created.spec);
  assert.deepEqual(entries(obj2).map((e) => `${e.manager}/${e.operation}`), ['kubectl-client-side-apply/Update', 'kubectl/Apply', 'kubectl-last-applied/Apply']);
  // re-applying the annotation-only config again changes nothing
  const again = applyPatch(obj2, annotationOnly(obj2.metadata!.annotations!['kubectl.kubernetes.io/last-applied-configuration']), opts('kubectl-last-applied'));
  assert.deepEqual(again.spec, created.spec);
});

test('recordUpdate: only changed fields move, removed fields disappear, client-set managedFields win', () => {
  const v1 = deployment(1, [{ name: 'web', image: 'a' }]);
  recordUpdate(undefined, v1, 'creator', 'apps/v1', T1);
  const v2 = structuredClone(v1);
  spec(v2).template.spec.containers[0].image = 'b';
  delete v2.metadata!.labels;
  recordUpdate(v1, v2, 'kubectl-set', 'apps/v1', T2);
  const creator = entry(v2, 'creator')!;
  assert.equal(creator.time, T1);
  assert.equal((creator.fieldsV1['f:metadata'] as unknown), undefined);
  assert.deepEqual(entry(v2, 'kubectl-set')!.fieldsV1, { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { 'f:image': {} } } } } } });
  // an update that changes nothing records nothing new
  const v3 = structuredClone(v2);
  recordUpdate(v2, v3, 'noop', 'apps/v1', T2);
  assert.equal(entry(v3, 'noop'), undefined);
  // a request that rewrites managedFields (kubectl's CSA→SSA migration patch) is taken as given
  const v4 = structuredClone(v3);
  v4.metadata!.managedFields = [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'apps/v1', time: T1, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:replicas': {} } } }];
  recordUpdate(v3, v4, 'kubectl', 'apps/v1', T2);
  assert.deepEqual(entries(v4).map((e) => e.manager), ['kubectl']);
});

test('finalizers are a set; ownerReferences merge by uid; atomic lists are replaced', () => {
  const base: KObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', finalizers: ['a'] }, data: { x: '1' } };
  const cmLookup = patchMetaFor('ConfigMap');
  let obj = applyPatch(undefined, base, { manager: 'one', force: false, kind: 'ConfigMap', now: T1, lookup: cmLookup });
  obj = applyPatch(obj, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', finalizers: ['b'] } }, { manager: 'two', force: false, kind: 'ConfigMap', now: T1, lookup: cmLookup });
  assert.deepEqual(obj.metadata!.finalizers, ['a', 'b']);
  assert.deepEqual(entry(obj, 'two')!.fieldsV1, { 'f:metadata': { 'f:finalizers': { 'v:"b"': {} } } });
  obj = applyPatch(obj, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { x: '1' } }, { manager: 'one', force: false, kind: 'ConfigMap', now: T1, lookup: cmLookup });
  assert.deepEqual(obj.metadata!.finalizers, ['b']);
  // command is atomic: replaced whole, one owner
  let d = applyPatch(undefined, deployment(1, [{ name: 'web', image: 'x', command: ['a', 'b'] }]), opts('kubectl'));
  d = applyPatch(d, deployment(1, [{ name: 'web', image: 'x', command: ['c'] }]), opts('kubectl'));
  assert.deepEqual(spec(d).template.spec.containers[0].command, ['c']);
});
