// metrics.k8s.io/v1beta1 end to end without containers: an in-process API server, a fake node agent
// (the real streaming server and tunnel client, with a backend whose resource metrics the test sets),
// and the real kubectl `top` reading it. Covers the object shapes and quantities, label and field
// selectors, 404 and 405 Statuses, discovery, nodes that are not connected or do not answer, and the
// per-node cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { request } from 'node:http';
import { startApiServer, type ApiServer } from './server.js';
import { MetricsApi, goDuration, usageOf, type AgentMetricsReport } from './metrics-api.js';
import { MemoryStore } from '../storage/memory/memory-store.js';
import { findResource } from '../api/resources.js';
import { errors } from '../machinery/status.js';
import type { KObject } from '../api/types.js';
import { createStreamingServer } from '../node/streaming/server.js';
import { TunnelClient } from '../node/streaming/tunnel-client.js';
import { KUBECTL } from '../../test/integration/cluster.js';

let api: ApiServer;
let tunnel: TunnelClient;
const ac = new AbortController();
let dir: string;
let served = 0;
const ts = '2026-12-01T10:00:15.250Z';
const report: AgentMetricsReport = {
  nodeName: 'n1', resolutionMs: 15000,
  node: { usageNanoCores: 1_250_000_000, workingSetBytes: 1536 * 2 ** 20, timestamp: ts, windowMs: 15_002 },
  pods: [
    { namespace: 'default', name: 'burn', uid: '', containers: [{ name: 'main', usageNanoCores: 987_654_321, workingSetBytes: 2 ** 20, timestamp: ts, windowMs: 15_000 }] },
    {
      namespace: 'default', name: 'web', uid: '', containers: [
        { name: 'app', usageNanoCores: 12_000_000, workingSetBytes: 10 * 2 ** 20, timestamp: ts, windowMs: 15_000 },
        { name: 'side', usageNanoCores: 123_456, workingSetBytes: 4096, timestamp: ts, windowMs: 15_000 },
      ],
    },
    { namespace: 'other', name: 'db', uid: '', containers: [{ name: 'db', usageNanoCores: 5_000_000, workingSetBytes: 3 * 2 ** 20, timestamp: ts, windowMs: 15_000 }] },
  ],
};

const no = () => Promise.reject(errors.badRequest('not in this test'));
const streaming = createStreamingServer({
  logSource: no, exec: no, attach: no, portForward: no,
  resourceMetrics: () => { served++; return report; },
});

const def = (plural: string) => findResource('', 'v1', plural)!;
const pod = (ns: string, name: string, node: string, labels: Record<string, string>): KObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels },
  spec: { nodeName: node, containers: [{ name: 'main', image: 'busybox' }] },
} as KObject);

before(async () => {
  api = await startApiServer({ store: new MemoryStore(), port: 0, host: '127.0.0.1', requireAuth: false });
  const ns = def('namespaces');
  await api.registry.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } } as KObject);
  for (const n of ['n1', 'n2']) {
    await api.registry.create(def('nodes'), undefined, {
      apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'kubernetes.io/hostname': n } },
      status: { capacity: { cpu: '4', memory: '8Gi' }, allocatable: { cpu: '4', memory: '8Gi' } },
    } as KObject);
  }
  await api.registry.create(def('pods'), 'default', pod('default', 'burn', 'n1', { app: 'burn' }));
  await api.registry.create(def('pods'), 'default', pod('default', 'web', 'n1', { app: 'web' }));
  await api.registry.create(def('pods'), 'other', pod('other', 'db', 'n1', { app: 'db' }));
  await api.registry.create(def('pods'), 'default', pod('default', 'elsewhere', 'n2', { app: 'web' })); // n2 has no agent
  tunnel = new TunnelClient({ server: api.url, nodeName: 'n1', handler: streaming, minBackoffMs: 50, maxBackoffMs: 200, log: () => {} });
  void tunnel.run(ac.signal);
  await tunnel.waitConnected();
  dir = mkdtempSync(join(tmpdir(), 'kyb-metrics-api-'));
  writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${api.url}"}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`);
});

after(async () => {
  ac.abort();
  await api?.close();
  streaming.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function get(path: string, method = 'GET'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}${path}`, { method }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

function kubectl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(KUBECTL, args, { env: { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), KUBECACHEDIR: join(dir, 'cache'), HOME: dir }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')}: ${stderr}${stdout}`)); else resolve(String(stdout));
    });
  });
}

const G = '/apis/metrics.k8s.io/v1beta1';

test('quantities and windows are printed as metrics-server prints them', () => {
  assert.deepEqual(usageOf({ usageNanoCores: 123_456, workingSetBytes: 1234 * 1024 }), { cpu: '123456n', memory: '1234Ki' });
  assert.deepEqual(usageOf({ usageNanoCores: 12_000_000, workingSetBytes: 1536 * 2 ** 20 }), { cpu: '12m', memory: '1536Mi' });
  assert.deepEqual(usageOf({ usageNanoCores: 2e9, workingSetBytes: 1000 }), { cpu: '2', memory: '1k' });
  assert.deepEqual([goDuration(15_000), goDuration(15_002), goDuration(1000), goDuration(500), goDuration(60_000), goDuration(90_500), goDuration(3_600_000)],
    ['15s', '15.002s', '1s', '500ms', '1m0s', '1m30.5s', '1h0m0s']);
});

test('discovery lists metrics.k8s.io with nodes and pods (get, list)', async () => {
  const groups = (await get('/apis')).body;
  assert.deepEqual(groups.groups.find((g: any) => g.name === 'metrics.k8s.io').versions, [{ groupVersion: 'metrics.k8s.io/v1beta1', version: 'v1beta1' }]);
  const list = (await get(G)).body;
  assert.deepEqual(list.resources.map((r: any) => [r.name, r.kind, r.namespaced, r.verbs]), [
    ['nodes', 'NodeMetrics', false, ['get', 'list']], ['pods', 'PodMetrics', true, ['get', 'list']],
  ]);
});

test('NodeMetrics: get and list, unreachable nodes left out, 404 for them', async () => {
  const one = await get(`${G}/nodes/n1`);
  assert.equal(one.status, 200);
  assert.equal(one.body.kind, 'NodeMetrics');
  assert.equal(one.body.apiVersion, 'metrics.k8s.io/v1beta1');
  assert.deepEqual(one.body.metadata.labels, { 'kubernetes.io/hostname': 'n1' });
  assert.match(one.body.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(one.body.timestamp, '2026-12-01T10:00:15Z');
  assert.equal(one.body.window, '15.002s');
  assert.deepEqual(one.body.usage, { cpu: '1250m', memory: '1536Mi' });
  const list = await get(`${G}/nodes`);
  assert.equal(list.body.kind, 'NodeMetricsList');
  assert.deepEqual(list.body.items.map((i: any) => i.metadata.name), ['n1']);
  assert.deepEqual((await get(`${G}/nodes?labelSelector=kubernetes.io/hostname%3Dn2`)).body.items, []);
  assert.deepEqual((await get(`${G}/nodes?fieldSelector=metadata.name%3Dn1`)).body.items.map((i: any) => i.metadata.name), ['n1']);
  const missing = await get(`${G}/nodes/n2`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.message, 'nodemetrics.metrics.k8s.io "n2" not found');
  assert.equal((await get(`${G}/nodes/nope`)).body.message, 'nodemetrics.metrics.k8s.io "nope" not found');
});

test('PodMetrics: get, list per namespace and across, selectors, 404', async () => {
  const web = (await get(`${G}/namespaces/default/pods/web`)).body;
  assert.equal(web.kind, 'PodMetrics');
  assert.deepEqual(web.metadata.labels, { app: 'web' });
  assert.equal(web.metadata.namespace, 'default');
  assert.equal(web.window, '15s');
  assert.deepEqual(web.containers, [
    { name: 'app', usage: { cpu: '12m', memory: '10Mi' } },
    { name: 'side', usage: { cpu: '123456n', memory: '4Ki' } },
  ]);
  const names = (b: any) => b.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`).sort();
  const def = (await get(`${G}/namespaces/default/pods`)).body;
  assert.equal(def.kind, 'PodMetricsList');
  assert.deepEqual(names(def), ['default/burn', 'default/web'], 'the pod on n2 (no agent) is left out');
  assert.deepEqual(names((await get(`${G}/pods`)).body), ['default/burn', 'default/web', 'other/db']);
  assert.deepEqual(names((await get(`${G}/pods?labelSelector=app%20in%20(web,db)`)).body), ['default/web', 'other/db']);
  assert.deepEqual(names((await get(`${G}/pods?fieldSelector=metadata.name%3Dburn`)).body), ['default/burn']);
  assert.deepEqual(names((await get(`${G}/pods?fieldSelector=metadata.namespace%3Dother`)).body), ['other/db']);
  assert.equal((await get(`${G}/pods?fieldSelector=spec.nodeName%3Dn1`)).status, 400);
  const nf = await get(`${G}/namespaces/default/pods/elsewhere`);
  assert.equal(nf.status, 404);
  assert.equal(nf.body.message, 'podmetrics.metrics.k8s.io "elsewhere" not found');
  assert.equal((await get(`${G}/namespaces/default/pods/nope`)).body.message, 'podmetrics.metrics.k8s.io "nope" not found');
});

test('watch and writes are 405', async () => {
  for (const [path, method] of [[`${G}/pods?watch=true`, 'GET'], [`${G}/namespaces/default/pods/web`, 'DELETE'], [`${G}/nodes`, 'POST'], [`${G}/nodes/n1`, 'PUT']] as const) {
    const r = await get(path, method);
    assert.equal(r.status, 405, `${method} ${path}`);
    assert.equal(r.body.reason, 'MethodNotAllowed');
  }
});

test('each node is asked at most once per cache period', async () => {
  await new Promise((r) => setTimeout(r, 2100)); // let the cache expire
  const before = served;
  await Promise.all([get(`${G}/pods`), get(`${G}/nodes`), get(`${G}/namespaces/default/pods/web`)]);
  assert.equal(served - before, 1);
});

test('a node that does not answer is skipped after the timeout', async () => {
  const silent = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  const m = new MetricsApi({ registry: api.registry, tunnels: { dial: () => silent }, timeoutMs: 200 });
  const t0 = Date.now();
  assert.equal(await m.report('n1'), undefined);
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(silent.destroyed);
  const none = new MetricsApi({ registry: api.registry, tunnels: { dial: () => { throw errors.serviceUnavailable('no tunnel'); } } });
  assert.equal(await none.report('n1'), undefined);
});

test('kubectl top pod / node read it', async () => {
  const pods = await kubectl(['top', 'pod']);
  assert.match(pods, /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\s*\n/);
  assert.match(pods, /\nburn\s+988m\s+1Mi\s*\n/);
  assert.match(pods, /\nweb\s+13m\s+10Mi\s*\n/);
  const sorted = (await kubectl(['top', 'pod', '-A', '--sort-by=cpu'])).trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 2).join('/'));
  assert.deepEqual(sorted, ['default/burn', 'default/web', 'other/db']);
  const containers = await kubectl(['top', 'pod', 'web', '--containers']);
  assert.match(containers, /POD\s+NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)/);
  assert.match(containers, /\nweb\s+app\s+12m\s+10Mi\s*\n/);
  assert.match(containers, /\nweb\s+side\s+1m\s+0Mi\s*\n/);
  const nodes = await kubectl(['top', 'node']);
  assert.match(nodes, /\nn1\s+1250m\s+31%\s+1536Mi\s+18%\s*\n/);
  const raw = JSON.parse(await kubectl(['get', '--raw', `${G}/nodes`]));
  assert.equal(raw.kind, 'NodeMetricsList');
  // the core resources keep their names: `pods` and `nodes` still mean v1
  assert.equal((await kubectl(['get', 'pods', '-o', 'name'])).trim(), 'pod/burn\npod/elsewhere\npod/web');
  assert.equal((await kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.apiVersion}'])), 'v1');
  assert.equal((await kubectl(['get', 'nodes', '-o', 'name'])).trim(), 'node/n1\nnode/n2');
  assert.match(await kubectl(['api-resources', '--api-group=metrics.k8s.io']), /\nnodes\s+metrics.k8s.io\/v1beta1\s+false\s+NodeMetrics\s*\npods\s+metrics.k8s.io\/v1beta1\s+true\s+PodMetrics/);
});
