import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findByKind, findResource, groupVersions, resources } from './resources.js';

test('one plural per group-version, and one kind per group-version', () => {
  const plurals = new Set<string>();
  const kinds = new Set<string>();
  for (const r of resources) {
    const p = `${r.group}/${r.version}/${r.plural}`;
    const k = `${r.group}/${r.version}/${r.kind}`;
    assert.ok(!plurals.has(p), `duplicate ${p}`);
    assert.ok(!kinds.has(k), `duplicate ${k}`);
    plurals.add(p);
    kinds.add(k);
    assert.equal(r.listKind, r.kind === 'Endpoints' ? 'EndpointsList' : `${r.kind}List`);
    assert.equal(r.plural, r.plural.toLowerCase());
    assert.equal(r.singular, r.kind.toLowerCase());
    assert.ok(r.verbs.length > 0);
  }
});

test('short names, scope and categories as upstream', () => {
  const expected: Record<string, string[]> = {
    namespaces: ['ns'], pods: ['po'], services: ['svc'], endpoints: ['ep'], configmaps: ['cm'], serviceaccounts: ['sa'],
    nodes: ['no'], persistentvolumes: ['pv'], persistentvolumeclaims: ['pvc'], resourcequotas: ['quota'], limitranges: ['limits'],
    replicationcontrollers: ['rc'], componentstatuses: ['cs'], deployments: ['deploy'], replicasets: ['rs'], statefulsets: ['sts'],
    daemonsets: ['ds'], cronjobs: ['cj'], horizontalpodautoscalers: ['hpa'], ingresses: ['ing'], networkpolicies: ['netpol'],
    storageclasses: ['sc'], poddisruptionbudgets: ['pdb'], priorityclasses: ['pc'], events: ['ev'],
  };
  for (const r of resources) assert.deepEqual(r.shortNames, expected[r.plural], r.plural);
  const all = resources.filter((r) => r.categories?.includes('all')).map((r) => r.plural);
  assert.deepEqual([...new Set(all)].sort(), ['cronjobs', 'daemonsets', 'deployments', 'horizontalpodautoscalers', 'jobs', 'pods', 'replicasets', 'replicationcontrollers', 'services', 'statefulsets']);
  const cluster = resources.filter((r) => !r.namespaced).map((r) => r.plural).sort();
  assert.deepEqual(cluster, ['clusterrolebindings', 'clusterroles', 'componentstatuses', 'ingressclasses', 'namespaces', 'nodes', 'persistentvolumes',
    'priorityclasses', 'selfsubjectaccessreviews', 'selfsubjectreviews', 'selfsubjectrulesreviews', 'storageclasses', 'subjectaccessreviews', 'tokenreviews']);
});

test('lookups and subresource response kinds', () => {
  const pods = findResource('', 'v1', 'pods')!;
  assert.equal(pods.kind, 'Pod');
  assert.equal(pods.storageKey, 'core/pods');
  assert.ok(pods.strategy.statusSubresource);
  assert.deepEqual(pods.subresources!.find((s) => s.name === 'eviction'), { name: 'eviction', group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] });
  assert.deepEqual(findResource('apps', 'v1', 'deployments')!.subresources!.find((s) => s.name === 'scale'),
    { name: 'scale', group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
  assert.equal(findResource('', 'v1', 'serviceaccounts')!.subresources![0]!.kind, 'TokenRequest');
  assert.equal(findByKind('apps', 'v1', 'Deployment')!.plural, 'deployments');
  assert.equal(findResource('apps', 'v1', 'pods'), undefined);
  assert.deepEqual(findResource('', 'v1', 'namespaces')!.verbs, ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']);
  assert.deepEqual(findResource('authorization.k8s.io', 'v1', 'selfsubjectaccessreviews')!.verbs, ['create']);
  assert.ok(findResource('authorization.k8s.io', 'v1', 'selfsubjectaccessreviews')!.virtual);
  assert.equal(findResource('', 'v1', 'configmaps')!.strategy.statusSubresource, undefined);
});

test('shared storage: hpa v1/v2 and both event groups', () => {
  assert.equal(findResource('autoscaling', 'v1', 'horizontalpodautoscalers')!.storageKey, 'autoscaling/horizontalpodautoscalers');
  assert.equal(findResource('autoscaling', 'v2', 'horizontalpodautoscalers')!.storageKey, 'autoscaling/horizontalpodautoscalers');
  assert.equal(findResource('events.k8s.io', 'v1', 'events')!.storageKey, 'core/events');
  assert.equal(findResource('', 'v1', 'events')!.storageKey, 'core/events');
});

test('group versions: core first, autoscaling prefers v2', () => {
  const gv = groupVersions();
  assert.deepEqual(gv[0], { group: '', versions: ['v1'] });
  assert.deepEqual(gv.find((g) => g.group === 'autoscaling'), { group: 'autoscaling', versions: ['v2', 'v1'] });
  assert.equal(gv.length, 14);
});

test('strategies are wired: defaults, validation, printers, field selectors', () => {
  const pods = findResource('', 'v1', 'pods')!.strategy;
  assert.ok(pods.defaults && pods.validate && pods.columns && pods.row);
  assert.deepEqual(pods.fields!({ spec: { nodeName: 'n1', hostNetwork: true }, status: { phase: 'Running' } }), {
    'spec.nodeName': 'n1', 'spec.restartPolicy': '', 'spec.schedulerName': '', 'spec.serviceAccountName': '', 'spec.hostNetwork': 'true',
    'status.phase': 'Running', 'status.podIP': '', 'status.nominatedNodeName': '',
  });
  const ev = findResource('', 'v1', 'events')!.strategy.fields!({
    involvedObject: { kind: 'Pod', name: 'web', namespace: 'default', uid: 'u1' }, reason: 'Pulled', type: 'Normal', reportingComponent: 'kubelet',
  });
  assert.equal(ev['involvedObject.uid'], 'u1');
  assert.equal(ev.source, 'kubelet');
  assert.equal(findResource('', 'v1', 'secrets')!.strategy.fields!({ type: 'Opaque' }).type, 'Opaque');
  // validation through the strategy, with the kind's name rule
  const svc = findResource('', 'v1', 'services')!.strategy;
  const obj = { kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ port: 80 }] } };
  svc.defaults!(obj);
  assert.deepEqual(svc.validate!(obj), []);
});

test('job selector is generated from the uid unless manualSelector', () => {
  const job = findResource('batch', 'v1', 'jobs')!.strategy;
  const obj = { kind: 'Job', metadata: { name: 'pi', namespace: 'default', uid: 'u-1' }, spec: { template: { spec: { containers: [{ name: 'c', image: 'perl' }], restartPolicy: 'Never' } } } };
  job.defaults!(obj);
  job.prepareForCreate!(obj);
  assert.deepEqual((obj.spec as any).selector, { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-1' } });
  assert.equal((obj.spec as any).template.metadata.labels['job-name'], 'pi');
  assert.deepEqual(job.validate!(obj), []);
});
