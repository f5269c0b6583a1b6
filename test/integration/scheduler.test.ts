// The scheduler against a real API server (in-process, memory store): nodes and pods created
// through the API, placements observed through the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { RestClient } from '../../src/client/rest-client.js';
import type { KObject } from '../../src/api/types.js';
import { Scheduler, podsResource, nodesResource } from '../../src/scheduler/scheduler.js';

const eventsResource = { group: '', version: 'v1', plural: 'events' };
type KPod = Pod & KObject;

let api: ApiServer;
let client: RestClient;

/** A fresh API server and scheduler per scenario, so each sees exactly its own nodes. */
async function cluster(t: { after(fn: () => Promise<void>): void }, opts: ConstructorParameters<typeof Scheduler>[1] = {}): Promise<void> {
  const a = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  const c = new RestClient({ server: a.url });
  api = a;
  client = c;
  const ac = new AbortController();
  const sc = new RestClient({ server: a.url });
  const done = new Scheduler(sc, { ...opts, onError: () => {} }).run(ac.signal);
  t.after(async () => { ac.abort(); await done; sc.close(); c.close(); await a.close(); });
}

async function podScheduledFalse(ns: string, name: string): Promise<NonNullable<NonNullable<Pod['status']>['conditions']>[number]> {
  return until(`${ns}/${name} to be marked unschedulable`, async () => {
    const p = await client.get<KPod>(podsResource, ns, name);
    return (p.status as Pod['status'])?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await f(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function createNode(name: string, opts: { cpu?: string; memory?: string; labels?: Record<string, string>; taints?: Node['spec'] extends infer S ? S extends { taints?: infer T } ? T : never : never } = {}): Promise<void> {
  const res = { cpu: opts.cpu ?? '4', memory: opts.memory ?? '8Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  const node: Node & KObject = {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(opts.labels ?? {}) } },
    spec: { taints: opts.taints },
    status: { capacity: res, allocatable: res, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready' }] },
  };
  const created = await client.create(nodesResource, null, node);
  if (!(created.status as Node['status'])?.allocatable) await client.updateStatus(nodesResource, null, { ...created, status: node.status });
}

function pod(ns: string, name: string, extra: Partial<Pod['spec']> & { labels?: Record<string, string>; cpu?: string } = {}): KPod {
  const { labels, cpu, ...spec } = extra;
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels },
    spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: cpu ?? '100m', memory: '64Mi' } } }], ...spec },
  };
}

async function nodeOf(ns: string, name: string): Promise<string | undefined> {
  const p = await client.get<KPod>(podsResource, ns, name);
  return (p.spec as Pod['spec'])?.nodeName || undefined;
}

async function waitScheduled(ns: string, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = await until(`${ns}/${n} to be bound`, () => nodeOf(ns, n));
  return out;
}

test('pods spread over three nodes', async (t) => {
  await cluster(t);
  for (const n of ['n1', 'n2', 'n3']) await createNode(n);
  const names = Array.from({ length: 9 }, (_, i) => `p${i}`);
  for (const n of names) await client.create(podsResource, 'default', pod('default', n));
  const placed = await waitScheduled('default', names);
  const per: Record<string, number> = {};
  for (const n of Object.values(placed)) per[n] = (per[n] ?? 0) + 1;
  assert.deepEqual(per, { n1: 3, n2: 3, n3: 3 });
});

test('nodeSelector is honoured; a taint without toleration is avoided, a toleration admits', async (t) => {
  await cluster(t);
  await createNode('n1', { labels: { disk: 'ssd' } });
  await createNode('n2');
  await createNode('n3', { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] });
  for (let i = 0; i < 3; i++) await client.create(podsResource, 'default', pod('default', `ssd${i}`, { nodeSelector: { disk: 'ssd' } }));
  for (let i = 0; i < 4; i++) await client.create(podsResource, 'default', pod('default', `any${i}`));
  await client.create(podsResource, 'default', pod('default', 'db', {
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n3'] }] }] } } },
  }));
  const placed = await waitScheduled('default', ['ssd0', 'ssd1', 'ssd2', 'any0', 'any1', 'any2', 'any3', 'db']);
  for (let i = 0; i < 3; i++) assert.equal(placed[`ssd${i}`], 'n1');
  for (let i = 0; i < 4; i++) assert.notEqual(placed[`any${i}`], 'n3', `any${i} landed on the tainted node`);
  assert.equal(placed.db, 'n3');
  // the untainted pods were spread over n1/n2 by LeastAllocated: n2 got the most of them
  assert.ok(Object.values(placed).filter((n) => n === 'n2').length >= 3, JSON.stringify(placed));
});

test('required anti-affinity puts replicas on different nodes; a 4th replica is unschedulable', async (t) => {
  await cluster(t);
  for (const n of ['n1', 'n2', 'n3']) await createNode(n);
  const anti = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' }] } };
  for (const n of ['w0', 'w1', 'w2']) await client.create(podsResource, 'default', pod('default', n, { labels: { app: 'web' }, affinity: anti }));
  const placed = await waitScheduled('default', ['w0', 'w1', 'w2']);
  assert.equal(new Set(Object.values(placed)).size, 3, JSON.stringify(placed));
  await client.create(podsResource, 'default', pod('default', 'w3', { labels: { app: 'web' }, affinity: anti }));
  const cond = await podScheduledFalse('default', 'w3');
  assert.equal(cond.reason, 'Unschedulable');
  assert.equal(cond.message, "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.");
});

test('MostAllocated bin-packs onto one node', async (t) => {
  await cluster(t, { profile: 'MostAllocated' });
  for (const n of ['n1', 'n2', 'n3']) await createNode(n);
  const names = Array.from({ length: 6 }, (_, i) => `b${i}`);
  for (const n of names) await client.create(podsResource, 'default', pod('default', n, { cpu: '500m' }));
  const placed = await waitScheduled('default', names);
  assert.equal(new Set(Object.values(placed)).size, 1, JSON.stringify(placed));
});

test('a pod asking for more CPU than any node stays Pending with FailedScheduling, and lands on a big node added later', async (t) => {
  await cluster(t);
  for (const n of ['n1', 'n2', 'n3']) await createNode(n);
  await client.create(podsResource, 'default', pod('default', 'huge', { cpu: '16' }));
  const msg = await until('a FailedScheduling event', async () => {
    const evs = await client.list(eventsResource, 'default');
    const ev = evs.items.find((e) => (e as { reason?: string }).reason === 'FailedScheduling' && (e as { involvedObject?: { name?: string } }).involvedObject?.name === 'huge');
    return ev && { message: (ev as { message: string }).message, type: (ev as { type: string }).type };
  });
  assert.equal(msg.type, 'Warning');
  assert.ok(msg.message.startsWith('0/3 nodes are available: 3 Insufficient cpu.'), msg.message);
  assert.equal(msg.message, '0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.');
  const cond = await podScheduledFalse('default', 'huge');
  assert.equal(cond.reason, 'Unschedulable');
  assert.equal(cond.message, msg.message);
  const p = await client.get<KPod>(podsResource, 'default', 'huge');
  assert.equal((p.status as Pod['status'])?.phase ?? 'Pending', 'Pending');
  assert.equal(await nodeOf('default', 'huge'), undefined);
  // a node big enough arrives: the pod is retried at once (node add), not after minutes
  await createNode('big1', { cpu: '32', memory: '64Gi' });
  assert.equal(await until('huge to be bound', () => nodeOf('default', 'huge')), 'big1');
});
