// The EndpointSlice planner: endpoint conditions, ports resolved per pod, 100 per slice, the
// placeholder slice, and low churn (slices kept stable and updated in place).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSlice, Node, Pod, Service } from './endpoint-util.js';
import { reconcile, type ReconcilePlan } from './reconciler.js';
import { TriggerTimeTracker, formatRFC3339Nano, managesEndpoints, servicesToUpdateOnPodChange } from './endpoint-util.js';

const svc = (over: Partial<NonNullable<Service['spec']>> = {}, labels?: Record<string, string>): Service => ({
  apiVersion: 'v1', kind: 'Service',
  metadata: { name: 'web', namespace: 'ns', uid: 'svc-uid', labels, creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { selector: { app: 'web' }, clusterIP: '10.43.0.10', ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], ...over },
});

let ipSeq = 0;
function pod(name: string, o: { ready?: boolean; deleting?: boolean; node?: string; ip?: string | null; ports?: Array<{ name: string; containerPort: number }>; phase?: string; hostname?: string; subdomain?: string } = {}): Pod {
  const ip = o.ip === null ? undefined : (o.ip ?? `10.42.${Math.floor(ipSeq / 250)}.${(ipSeq++ % 250) + 2}`);
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { app: 'web' }, resourceVersion: '1', ...(o.deleting ? { deletionTimestamp: '2025-01-01T00:01:00Z' } : {}) },
    spec: { nodeName: o.node ?? 'n1', containers: [{ name: 'c', image: 'x', ports: o.ports }], hostname: o.hostname, subdomain: o.subdomain },
    status: {
      phase: o.phase ?? 'Running', ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: '2025-01-01T00:00:30Z' }],
    },
  };
}

const nodes: Record<string, Node> = {
  n1: { metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } },
  n2: { metadata: { name: 'n2' } },
};
const nodeByName = (n: string): Node | undefined => nodes[n];

/** Applies a plan the way the API server would (names for creates), giving the new slice set. */
let nameSeq = 0;
function apply(existing: EndpointSlice[], plan: ReconcilePlan): EndpointSlice[] {
  const out = new Map(existing.map((s) => [s.metadata!.name!, s]));
  for (const s of plan.delete) out.delete(s.metadata!.name!);
  for (const s of plan.update) out.set(s.metadata!.name!, structuredClone(s));
  for (const s of plan.create) {
    const c = structuredClone(s);
    c.metadata!.name = `${c.metadata!.generateName}${nameSeq++}`;
    c.metadata!.uid = c.metadata!.name;
    out.set(c.metadata!.name, c);
  }
  return [...out.values()];
}
const writes = (p: ReconcilePlan) => p.create.length + p.update.length + p.delete.length;

test('one slice per Service: labels, owner, address type, ports, conditions, node, zone, targetRef', () => {
  const plan = reconcile({ service: svc({}, { tier: 'front' }), pods: [pod('a', { ip: '10.42.0.5' }), pod('b', { ip: '10.42.1.3', node: 'n2', ready: false })], existing: [], nodeByName });
  assert.equal(plan.create.length, 1);
  assert.deepEqual([plan.update.length, plan.delete.length, plan.errors.length], [0, 0, 0]);
  const s = plan.create[0]!;
  assert.equal(s.metadata!.generateName, 'web-');
  assert.deepEqual(s.metadata!.labels, { tier: 'front', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  assert.deepEqual(s.metadata!.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid', controller: true, blockOwnerDeletion: true }]);
  assert.equal(s.addressType, 'IPv4');
  assert.deepEqual(s.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  assert.deepEqual(s.endpoints, [
    { addresses: ['10.42.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1', zone: 'zone-a', targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' } },
    { addresses: ['10.42.1.3'], conditions: { ready: false, serving: false, terminating: false }, nodeName: 'n2', targetRef: { kind: 'Pod', namespace: 'ns', name: 'b', uid: 'uid-b' } },
  ]);
});

test('terminating pods stay, serving per readiness; publishNotReadyAddresses makes every endpoint ready', () => {
  const pods = [pod('r', { deleting: true }), pod('n', { deleting: true, ready: false }), pod('done', { phase: 'Succeeded' }), pod('noip', { ip: null })];
  const conds = (p: ReconcilePlan) => Object.fromEntries(p.create[0]!.endpoints.map((e) => [e.targetRef!.name, e.conditions]));
  assert.deepEqual(conds(reconcile({ service: svc(), pods, existing: [], nodeByName })), {
    r: { ready: false, serving: true, terminating: true },
    n: { ready: false, serving: false, terminating: true },
  });
  assert.deepEqual(conds(reconcile({ service: svc({ publishNotReadyAddresses: true }), pods, existing: [], nodeByName })), {
    r: { ready: true, serving: true, terminating: true },
    n: { ready: true, serving: false, terminating: true },
  });
});

test('named targetPorts resolve per pod; pods with different ports go to different slices; hostname with a matching subdomain', () => {
  const service = svc({ ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }] });
  const pods = [
    pod('a', { ports: [{ name: 'web', containerPort: 8080 }], hostname: 'a', subdomain: 'web' }),
    pod('b', { ports: [{ name: 'web', containerPort: 9090 }], hostname: 'b', subdomain: 'other' }),
    pod('c', { ports: [{ name: 'web', containerPort: 8080 }] }),
  ];
  const plan = reconcile({ service, pods, existing: [], nodeByName });
  assert.equal(plan.create.length, 2);
  const byPort = Object.fromEntries(plan.create.map((s) => [s.ports![0]!.port, s.endpoints.map((e) => [e.targetRef!.name, e.hostname])]));
  assert.deepEqual(byPort, { 8080: [['a', 'a'], ['c', undefined]], 9090: [['b', undefined]] });
});

test('at most 100 endpoints per slice; a second sync changes nothing', () => {
  const pods = Array.from({ length: 250 }, (_, i) => pod(`p${i}`));
  const plan = reconcile({ service: svc(), pods, existing: [], nodeByName });
  assert.deepEqual(plan.create.map((s) => s.endpoints.length), [100, 100, 50]);
  const slices = apply([], plan);
  const again = reconcile({ service: svc(), pods, existing: slices, nodeByName });
  assert.equal(writes(again), 0);
});

test('low churn: a removed pod updates only its slice; new pods fill slices being updated, then the fullest unchanged one', () => {
  const pods = Array.from({ length: 250 }, (_, i) => pod(`p${i}`));
  let slices = apply([], reconcile({ service: svc(), pods, existing: [], nodeByName }));
  const holder = (name: string) => slices.find((s) => s.endpoints.some((e) => e.targetRef!.name === name))!.metadata!.name;

  // remove one pod: one update of the slice that held it, nothing else
  const gone = holder('p7');
  let plan = reconcile({ service: svc(), pods: pods.filter((p) => p.metadata!.name !== 'p7'), existing: slices, nodeByName });
  assert.deepEqual([plan.create.length, plan.update.length, plan.delete.length], [0, 1, 0]);
  assert.equal(plan.update[0]!.metadata!.name, gone);

  // remove one and add two: the slice being updated takes one back to 100, the other goes into the half-full slice
  const more = [pod('new1'), pod('new2')];
  plan = reconcile({ service: svc(), pods: [...pods.filter((p) => p.metadata!.name !== 'p7'), ...more], existing: slices, nodeByName });
  assert.equal(plan.create.length, 0);
  assert.equal(plan.delete.length, 0);
  assert.equal(plan.update.length, 2);
  slices = apply(slices, plan);
  assert.deepEqual(slices.map((s) => s.endpoints.length).sort((a, b) => a - b), [51, 100, 100]);

  // a readiness change is an in-place update of one endpoint
  const flipped = [...pods.filter((p) => p.metadata!.name !== 'p7'), ...more].map((p) => (p.metadata!.name === 'p100' ? pod('p100', { ip: p.status!.podIP!, ready: false }) : p));
  plan = reconcile({ service: svc(), pods: flipped, existing: slices, nodeByName });
  assert.deepEqual([plan.create.length, plan.update.length, plan.delete.length], [0, 1, 0]);
  assert.equal(plan.update[0]!.endpoints.find((e) => e.targetRef!.name === 'p100')!.conditions!.ready, false);
});

test('no pods: one empty placeholder slice, kept as is; the first pod reuses it instead of delete + create', () => {
  let plan = reconcile({ service: svc(), pods: [], existing: [], nodeByName });
  assert.equal(plan.create.length, 1);
  assert.deepEqual([plan.create[0]!.ports, plan.create[0]!.endpoints], [[], []]);
  let slices = apply([], plan);
  assert.equal(writes(reconcile({ service: svc(), pods: [], existing: slices, nodeByName })), 0);
  const placeholder = slices[0]!.metadata!.name;
  plan = reconcile({ service: svc(), pods: [pod('a')], existing: slices, nodeByName });
  assert.deepEqual([plan.create.length, plan.update.length, plan.delete.length], [0, 1, 0]);
  assert.equal(plan.update[0]!.metadata!.name, placeholder);
  slices = apply(slices, plan);
  // and back to none: the slice becomes the placeholder again
  plan = reconcile({ service: svc(), pods: [], existing: slices, nodeByName });
  assert.deepEqual([plan.create.length, plan.update.length, plan.delete.length], [0, 1, 0]);
  assert.deepEqual(plan.update[0]!.endpoints, []);
});

test('slices of another Service with the same name are deleted; a pod on an unknown node is skipped with an error', () => {
  const foreign: EndpointSlice = {
    metadata: { name: 'web-old', namespace: 'ns', uid: 'x', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'older-uid', controller: true }] },
    addressType: 'IPv4', endpoints: [],
  };
  const plan = reconcile({ service: svc(), pods: [pod('a'), pod('lost', { node: 'gone' })], existing: [foreign], nodeByName });
  assert.deepEqual(plan.delete.map((s) => s.metadata!.name), ['web-old']);
  assert.equal(plan.create.length, 1);
  assert.deepEqual(plan.create[0]!.endpoints.map((e) => e.targetRef!.name), ['a']);
  assert.match(plan.errors[0]!, /skipping Pod lost for Service ns\/web: Node gone Not Found/);
});

test('headless Services are labelled; a headless Service without ports lists pods with no ports', () => {
  const plan = reconcile({ service: svc({ clusterIP: 'None', ports: [] }), pods: [pod('a')], existing: [], nodeByName });
  assert.equal(plan.create[0]!.metadata!.labels!['service.kubernetes.io/headless'], '');
  assert.deepEqual(plan.create[0]!.ports, []);
  assert.equal(plan.create[0]!.endpoints.length, 1);
});

test('trigger time: the Service creation time first, then the earliest Ready transition that changed', () => {
  const t = new TriggerTimeTracker();
  const s = svc();
  const a = pod('a'), b = pod('b');
  assert.equal(formatRFC3339Nano(t.compute(s, [a, b])!), '2025-01-01T00:00:00Z');
  assert.equal(t.compute(s, [a, b]), undefined, 'nothing changed');
  const b2 = structuredClone(b);
  b2.status!.conditions![0]!.lastTransitionTime = '2025-01-01T00:05:00Z';
  assert.equal(formatRFC3339Nano(t.compute(s, [a, b2])!), '2025-01-01T00:05:00Z');
  assert.equal(formatRFC3339Nano(Date.parse('2025-01-01T00:00:00.120Z')), '2025-01-01T00:00:00.12Z');
});

test('pod updates concern the Services it joins, leaves, or whose endpoints it changes', () => {
  const a = svc(), b: Service = { ...svc(), metadata: { ...svc().metadata, name: 'api' }, spec: { ...svc().spec, selector: { tier: 'api' } } };
  const old = pod('p');
  const relabelled = structuredClone(old);
  relabelled.metadata!.labels = { tier: 'api' };
  relabelled.metadata!.resourceVersion = '2';
  assert.deepEqual([...servicesToUpdateOnPodChange([a, b], old, relabelled)].sort(), ['ns/api', 'ns/web']);
  const annotated = structuredClone(old);
  annotated.metadata!.annotations = { x: 'y' };
  annotated.metadata!.resourceVersion = '3';
  assert.equal(servicesToUpdateOnPodChange([a, b], old, annotated).size, 0, 'an annotation does not matter');
  const unready = pod('p', { ip: old.status!.podIP!, ready: false });
  unready.metadata!.resourceVersion = '4';
  assert.deepEqual([...servicesToUpdateOnPodChange([a, b], old, unready)], ['ns/web']);
  // an empty selector selects nothing (upstream reads it back from protobuf as no selector)
  const all: Service = { ...svc(), metadata: { ...svc().metadata, name: 'all' }, spec: { ...svc().spec, selector: {} } };
  assert.equal(managesEndpoints(all), false);
  assert.deepEqual([...servicesToUpdateOnPodChange([all], old, unready)], []);
});
