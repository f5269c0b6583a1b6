import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyStrategicMergePatch } from './strategic-merge-patch.js';
import { StatusError } from './status.js';
import { mapRetainsKeys, patchMetaFor } from '../api/patch-meta.js';

const deployMeta = patchMetaFor('Deployment');
const podMeta = patchMetaFor('Pod');
const smp = (doc: unknown, patch: unknown, kind = 'Deployment'): any =>
  applyStrategicMergePatch(doc, patch, patchMetaFor(kind), (p) => mapRetainsKeys(kind, p));

function liveDeployment(): any {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', labels: { app: 'web' }, finalizers: ['a.example.com/f', 'b.example.com/f'] },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80, protocol: 'TCP' }],
              env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], args: ['--x', '--y'], resources: {} },
            { name: 'sidecar', image: 'busybox', command: ['sleep', '3600'] },
          ],
          restartPolicy: 'Always',
        },
      },
    },
  };
}

function badRequest(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StatusError, String(e));
    assert.equal(e.code, 400);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('kubectl set image: merges one container by name, keeps everything else', () => {
  const live = liveDeployment();
  const before = structuredClone(live);
  const patch = { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'web' }, { name: 'sidecar' }], containers: [{ image: 'nginx:1.28', name: 'web' }] } } } };
  const out = smp(live, patch);
  const cs = out.spec.template.spec.containers;
  assert.deepEqual(cs.map((c: any) => [c.name, c.image]), [['web', 'nginx:1.28'], ['sidecar', 'busybox']]);
  assert.deepEqual(cs[0].ports, [{ containerPort: 80, protocol: 'TCP' }]);
  assert.deepEqual(cs[0].env, [{ name: 'A', value: '1' }, { name: 'B', value: '2' }]);
  assert.equal(out.spec.template.spec.restartPolicy, 'Always');
  assert.equal(JSON.stringify(out).includes('$setElementOrder'), false);
  assert.deepEqual(live, before, 'input not mutated');
});

test('the exact set-image body kubectl sends for a one-container deployment', () => {
  const live = liveDeployment();
  live.spec.template.spec.containers.pop();
  const out = smp(live, JSON.parse('{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.28","name":"web"}]}}}}'));
  assert.equal(out.spec.template.spec.containers.length, 1);
  assert.equal(out.spec.template.spec.containers[0].image, 'nginx:1.28');
  assert.equal(out.spec.template.spec.containers[0].name, 'web');
});

test('apply update body: replicas, annotation and $setElementOrder/containers', () => {
  const live = liveDeployment();
  live.spec.template.spec.containers.pop();
  const patch = JSON.parse('{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\\n"}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.28","name":"web"}]}}}}');
  const out = smp(live, patch);
  assert.equal(out.spec.replicas, 3);
  assert.equal(out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], '{}\n');
  assert.deepEqual(out.metadata.labels, { app: 'web' });
  assert.equal(out.spec.template.spec.containers[0].image, 'nginx:1.28');
});

test('$setElementOrder reorders, and a new container lands where the order says', () => {
  const live = liveDeployment();
  const out = smp(live, { spec: { template: { spec: {
    '$setElementOrder/containers': [{ name: 'init' }, { name: 'sidecar' }, { name: 'web' }],
    containers: [{ name: 'init', image: 'alpine' }],
  } } } });
  assert.deepEqual(out.spec.template.spec.containers.map((c: any) => c.name), ['init', 'sidecar', 'web']);
});

test('server-only elements keep their place relative to the live order', () => {
  const live = { spec: { containers: [{ name: 'a' }, { name: 'injected' }, { name: 'b' }] } };
  const out = smp(live, { spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'b' }], containers: [{ name: 'b', image: 'x' }] } }, 'Pod');
  assert.deepEqual(out.spec.containers.map((c: any) => c.name), ['a', 'injected', 'b']);
  // without $setElementOrder a new element comes first, as upstream (the k8s docs' "patch-demo-ctr-2")
  const out2 = smp(live, { spec: { containers: [{ name: 'c' }] } }, 'Pod');
  assert.deepEqual(out2.spec.containers.map((c: any) => c.name), ['c', 'a', 'injected', 'b']);
  // the order in the patch list beats the live order; server-only items slot in by live order
  const out3 = smp(live, { spec: { containers: [{ name: 'b', image: 'y' }, { name: 'a', image: 'x' }] } }, 'Pod');
  assert.deepEqual(out3.spec.containers.map((c: any) => c.name), ['injected', 'b', 'a']);
});

test('deleting a container with {"$patch":"delete"}', () => {
  const out = smp(liveDeployment(), { spec: { template: { spec: {
    '$setElementOrder/containers': [{ name: 'web' }],
    containers: [{ $patch: 'delete', name: 'sidecar' }],
  } } } });
  assert.deepEqual(out.spec.template.spec.containers.map((c: any) => c.name), ['web']);
  assert.equal(out.spec.template.spec.containers[0].image, 'nginx:1.27');
  // deleting something that is not there is fine
  const out2 = smp(liveDeployment(), { spec: { template: { spec: { containers: [{ $patch: 'delete', name: 'nope' }] } } } });
  assert.equal(out2.spec.template.spec.containers.length, 2);
});

test('strategy RollingUpdate → Recreate with $retainKeys drops rollingUpdate', () => {
  const out = smp(liveDeployment(), JSON.parse('{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}'));
  assert.deepEqual(out.spec.strategy, { type: 'Recreate' });
  // without the directive the map merges and rollingUpdate would survive
  const merged = smp(liveDeployment(), { spec: { strategy: { type: 'Recreate' } } });
  assert.deepEqual(merged.spec.strategy, { type: 'Recreate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } });
});

test('strategy Recreate → RollingUpdate with $retainKeys', () => {
  const live = liveDeployment();
  live.spec.strategy = { type: 'Recreate' };
  const out = smp(live, { spec: { strategy: { $retainKeys: ['rollingUpdate', 'type'], rollingUpdate: { maxSurge: 1 }, type: 'RollingUpdate' } } });
  assert.deepEqual(out.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } });
  badRequest(() => smp(live, { spec: { strategy: { $retainKeys: ['type'], type: 'RollingUpdate', rollingUpdate: {} } } }), 'invalid patch format of retainKeys');
  badRequest(() => smp(live, { spec: { strategy: { $retainKeys: 'type' } } }), 'invalid patch format of retainKeys');
});

test('$retainKeys inside a volumes element (volume source switch)', () => {
  const live = { spec: { volumes: [{ name: 'v', emptyDir: {} }, { name: 'w', hostPath: { path: '/x' } }] } };
  const out = smp(live, { spec: { volumes: [{ name: 'v', $retainKeys: ['configMap', 'name'], configMap: { name: 'cm' } }] } }, 'Pod');
  assert.deepEqual(out.spec.volumes, [{ name: 'v', configMap: { name: 'cm' } }, { name: 'w', hostPath: { path: '/x' } }]);
});

test('removing an env var: null for a map key, $patch delete for a list element', () => {
  const out = smp(liveDeployment(), { spec: { template: { spec: {
    containers: [{ name: 'web', env: [{ $patch: 'delete', name: 'A' }, { name: 'C', value: '3' }] }],
  } } } });
  assert.deepEqual(out.spec.template.spec.containers[0].env, [{ name: 'C', value: '3' }, { name: 'B', value: '2' }]);
  const out2 = smp(liveDeployment(), { spec: { template: { spec: { containers: [{ name: 'web', resources: null, args: null }] } } } });
  assert.equal('resources' in out2.spec.template.spec.containers[0], false);
  assert.equal('args' in out2.spec.template.spec.containers[0], false);
});

test('env value change merges by name; value null removes just that field', () => {
  const out = smp(liveDeployment(), { spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'B', value: null, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] }] } } } });
  assert.deepEqual(out.spec.template.spec.containers[0].env, [{ name: 'A', value: '1' }, { name: 'B', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
});

test('lists without metadata are replaced wholesale', () => {
  const out = smp(liveDeployment(), { spec: { template: { spec: { containers: [{ name: 'web', args: ['--z'] }] } } } });
  assert.deepEqual(out.spec.template.spec.containers[0].args, ['--z']);
});

test('labels set and remove; template restart annotation', () => {
  const out = smp(liveDeployment(), { metadata: { labels: { tier: 'fe', app: null } }, spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' } } } } });
  assert.deepEqual(out.metadata.labels, { tier: 'fe' });
  assert.deepEqual(out.spec.template.metadata, { labels: { app: 'web' }, annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' } });
});

test('finalizers: merged as a set, $deleteFromPrimitiveList removes', () => {
  const live = liveDeployment();
  const added = smp(live, { metadata: { finalizers: ['b.example.com/f', 'c.example.com/f'] } });
  assert.deepEqual(added.metadata.finalizers, ['a.example.com/f', 'b.example.com/f', 'c.example.com/f']);
  const removed = smp(live, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a.example.com/f'] } });
  assert.deepEqual(removed.metadata.finalizers, ['b.example.com/f']);
  // apply's shape: order + deletion + addition together
  const both = smp(live, { metadata: {
    '$setElementOrder/finalizers': ['b.example.com/f', 'c.example.com/f'],
    '$deleteFromPrimitiveList/finalizers': ['a.example.com/f'],
    finalizers: ['c.example.com/f'],
  } });
  assert.deepEqual(both.metadata.finalizers, ['b.example.com/f', 'c.example.com/f']);
  assert.equal(JSON.stringify(both).includes('$'), false);
  // deleting from a list that is not there does nothing
  assert.equal('finalizers' in smp({ metadata: {} }, { metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] } }).metadata, false);
});

test('$patch: replace in a map and in a list; $patch: delete in a map', () => {
  const live = liveDeployment();
  const r1 = smp(live, { spec: { selector: { $patch: 'replace', matchLabels: { app: 'other' } } } });
  assert.deepEqual(r1.spec.selector, { matchLabels: { app: 'other' } });
  const r2 = smp(live, { metadata: { labels: { $patch: 'replace', only: 'this' } } });
  assert.deepEqual(r2.metadata.labels, { only: 'this' });
  const r3 = smp(live, { spec: { template: { spec: { containers: [{ $patch: 'replace' }, { name: 'solo', image: 'x' }] } } } });
  assert.deepEqual(r3.spec.template.spec.containers, [{ name: 'solo', image: 'x' }]);
  const r4 = smp(live, { spec: { strategy: { $patch: 'delete' } } });
  assert.equal('strategy' in r4.spec, false);
  assert.deepEqual(smp(live, { $patch: 'delete' }), {});
});

test('new fields from the patch are added without directives or nulls', () => {
  const out = smp({ spec: {} }, { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'a', image: 'x', env: [{ $patch: 'delete', name: 'Z' }, { name: 'Y', value: null }] }] } }, extra: { gone: null, kept: 1 } } });
  assert.deepEqual(out.spec, { template: { spec: { containers: [{ name: 'a', image: 'x', env: [{ name: 'Y' }] }] } }, extra: { kept: 1 } });
});

test('merge-keyed lists in other places: service ports, node taints, conditions, ownerReferences', () => {
  const svc = { spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443 }] } };
  assert.deepEqual(smp(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }, 'Service').spec.ports, [{ port: 80, targetPort: 9090 }, { port: 443 }]);
  const node = { spec: { taints: [{ key: 'a', effect: 'NoSchedule' }] } };
  assert.deepEqual(smp(node, { spec: { taints: [{ key: 'b', effect: 'NoExecute' }] } }, 'Node').spec.taints.map((t: any) => t.key), ['b', 'a']);
  const pod = { status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] } };
  assert.deepEqual(smp(pod, { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, 'Pod').status.conditions, [{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }]);
  // a CRD kind: every list is atomic
  assert.deepEqual(smp({ spec: { items: [{ name: 'a' }] } }, { spec: { items: [{ name: 'b' }] } }, 'Widget').spec.items, [{ name: 'b' }]);
});

test('cordon: {"spec":{"unschedulable":true}}', () => {
  assert.deepEqual(smp({ spec: { podCIDR: '10.0.0.0/24' } }, { spec: { unschedulable: true } }, 'Node').spec, { podCIDR: '10.0.0.0/24', unschedulable: true });
});

test('bad patches are 400s', () => {
  const live = liveDeployment();
  badRequest(() => smp(live, { spec: { $patch: 'bogus' } }), 'unknown patch type: bogus in map: map[$patch:bogus]');
  badRequest(() => smp(live, { spec: { template: { spec: { containers: [{ $patch: 'bogus', name: 'web' }] } } } }), /^unknown patch type: bogus in map:/);
  badRequest(() => smp(live, { spec: { template: { spec: { containers: [{ image: 'x' }] } } } }), 'map: map[image:x] does not contain declared merge key: name');
  badRequest(() => smp(live, { spec: { template: { spec: { containers: [{ $patch: 'delete' }] } } } }), /does not contain declared merge key: name/);
  badRequest(() => smp(live, { spec: { template: { spec: { containers: [{ $patch: 'merge' }] } } } }), 'merging lists cannot yet be specified in the patch');
  badRequest(() => smp(live, { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'web' }], containers: [{ name: 'other' }] } } } }), /doesn't match \$setElementOrder list/);
  badRequest(() => smp(live, { spec: { template: { spec: { '$setElementOrder/containers': 'web' } } } }), 'invalid patch format of setElementOrder list');
  badRequest(() => smp(live, { metadata: { '$deleteFromPrimitiveList/finalizers': 'a' } }), 'invalid patch format of primitive list');
  badRequest(() => applyStrategicMergePatch(live, [1], deployMeta), 'invalid JSON document');
  assert.throws(() => applyStrategicMergePatch({ spec: { containers: [[1]] } }, { spec: { containers: [[2]] } }, podMeta), (e: unknown) => e instanceof StatusError && e.code === 422);
});
