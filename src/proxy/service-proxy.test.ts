// ServiceProxy against the client library's fake API server, with a fake command runner that
// records the nft / iptables scripts instead of running them (no root needed): the first write is
// a full sync once both informers have synced, later changes become deltas, a failed write is
// followed by a full sync, the backend choice, what is not proxied, and cleanup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { get as httpGet } from 'node:http';
import type { KObject } from '../api/types.js';
import { RestClient } from '../client/index.js';
import { FakeApiServer } from '../client/testing/fake-apiserver.js';
import type { RunResult, Runner } from './exec.js';
import { ENDPOINT_SLICES, SERVICES, ServiceProxy, type ServiceProxyOptions, type SyncReport } from './service-proxy.js';

interface Call { file: string; args: string[]; input?: string }

function fakeRunner(opts: { nft?: boolean } = {}): { run: Runner; calls: Call[]; failNext: (n?: number) => void; scripts: () => string[] } {
  const calls: Call[] = [];
  let failures = 0;
  const ok = (stdout = ''): RunResult => ({ stdout, stderr: '', code: 0 });
  const run: Runner = async (file, args, input) => {
    calls.push({ file, args, input });
    const cmd = `${file} ${args.join(' ')}`;
    if (cmd === 'nft list tables') return opts.nft === false ? { stdout: '', stderr: 'no nf_tables', code: 1 } : ok();
    if (cmd === 'nft list tables ip') return ok('table ip t1\n');
    if (cmd === 'nft -j list sets ip') return ok('{"nftables":[]}');
    if ((cmd === 'nft -f -' || cmd === 'iptables-restore --noflush') && failures > 0) { failures--; return { stdout: '', stderr: 'Error: injected', code: 1 }; }
    return ok();
  };
  return {
    run, calls,
    failNext: (n = 1) => { failures += n; },
    scripts: () => calls.filter((c) => c.args.includes('-f') || c.file === 'iptables-restore').map((c) => c.input ?? ''),
  };
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function service(name: string, spec: Record<string, unknown> = {}, labels?: Record<string, string>): KObject {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name, ...(labels ? { labels } : {}) },
    spec: { type: 'ClusterIP', clusterIP: '10.43.0.5', sessionAffinity: 'None', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec },
  };
}

function slice(name: string, svc: string, ips: string[], nodeOf: Record<string, string> = {}): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { namespace: 'ns', name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, ...(nodeOf[ip] ? { nodeName: nodeOf[ip] } : {}) })),
  };
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
  });
}

function httpStatus(port: number): Promise<{ status: number; body: any; weight: unknown }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), weight: res.headers['x-load-balancing-endpoint-weight'] }));
    }).on('error', reject);
  });
}

async function harness(t: { after(fn: () => Promise<void> | void): void }, runner = fakeRunner(), extra: Partial<ServiceProxyOptions> = {}) {
  const server = await FakeApiServer.start();
  const client = new RestClient({ server: server.url });
  const dir = mkdtempSync(join(tmpdir(), 'kyb-proxy-unit-'));
  const sysctl = join(dir, 'route_localnet');
  writeFileSync(sysctl, '0\n');
  const reports: SyncReport[] = [];
  const logs: string[] = [];
  const opts: ServiceProxyOptions = {
    client, nodeName: 'n1', nodeIPs: ['192.0.2.2'], clusterCIDR: '10.42.0.0/16', tableName: 't1',
    stateDir: join(dir, 'state'), routeLocalnetPath: sysctl, run: runner.run,
    onSync: (r) => reports.push(r), log: (m) => logs.push(m), ...extra,
  };
  const proxy = new ServiceProxy(opts);
  const ac = new AbortController();
  let running: Promise<void> | undefined;
  t.after(async () => {
    ac.abort();
    await running;
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { server, proxy, runner, reports, logs, sysctl, dir, opts, start: () => { running = proxy.run(ac.signal); return running; } };
}

test('one full sync after both informers synced, then deltas for changed Services only', async (t) => {
  const h = await harness(t);
  h.server.put(SERVICES, service('web'));
  h.server.put(SERVICES, service('other', { clusterIP: '10.43.0.6' }));
  h.server.put(ENDPOINT_SLICES, slice('web-1', 'web', ['10.42.0.2']));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs === 1, 'full sync');
  assert.equal(h.proxy.backendName, 'nftables');
  const [full] = h.runner.scripts();
  assert.match(full, /^add table ip t1\ndelete table ip t1\n/);
  assert.match(full, /dnat to 10\.42\.0\.2:8080/);
  assert.match(full, /add element ip t1 no-endpoint-services \{ 10\.43\.0\.6 \. tcp \. 80 \}/, 'other has no endpoints');
  assert.equal(readFileSync(h.sysctl, 'utf8').trim(), '1', 'route_localnet set');
  assert.deepEqual(h.reports.map((r) => [r.kind, r.servicePorts]), [['full', 2]]);

  const stored = h.server.put(ENDPOINT_SLICES, slice('web-1', 'web', ['10.42.0.2', '10.42.0.3']));
  await until(() => h.proxy.programmedResourceVersion('endpointslices', 'ns', 'web-1') === stored.metadata?.resourceVersion, 'slice programmed');
  const delta = h.runner.scripts().at(-1)!;
  assert.doesNotMatch(delta, /delete table/);
  assert.match(delta, /add chain ip t1 ep-ns\/web\/tcp\/http\/10\.42\.0\.3\/8080/);
  assert.doesNotMatch(delta, /ns\/other/, 'only the changed Service');
  assert.deepEqual(h.reports.at(-1)!.kind, 'delta');

  // deleting the Service removes its rules; an unchanged resync of a Service writes nothing
  const writes = h.runner.scripts().length;
  h.server.put(SERVICES, { ...service('other', { clusterIP: '10.43.0.6' }), metadata: { namespace: 'ns', name: 'other', annotations: { a: 'b' } } });
  await until(() => h.reports.length === 3, 'a sync for the annotation change');
  assert.equal(h.runner.scripts().length, writes, 'nothing to write');
  h.server.remove(SERVICES, 'ns', 'web');
  await until(() => h.proxy.programmedResourceVersion('services', 'ns', 'web') === undefined, 'web removed');
  assert.match(h.runner.scripts().at(-1)!, /delete chain ip t1 svc-ns\/web\/tcp\/http/);
});

test('a failed write is retried as a full sync', async (t) => {
  const h = await harness(t);
  h.server.put(SERVICES, service('web'));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs === 1, 'full sync');
  h.runner.failNext();
  const stored = h.server.put(ENDPOINT_SLICES, slice('web-1', 'web', ['10.42.0.2']));
  await until(() => h.proxy.stats.failures === 1, 'the failure');
  assert.ok(h.reports.at(-1)!.error);
  assert.match(h.logs.join('\n'), /delta sync failed .*injected/);
  await until(() => h.proxy.stats.fullSyncs === 2, 'the repairing full sync');
  assert.equal(h.proxy.programmedResourceVersion('endpointslices', 'ns', 'web-1'), stored.metadata?.resourceVersion);
  assert.match(h.runner.scripts().at(-1)!, /delete table ip t1[\s\S]*dnat to 10\.42\.0\.2:8080/);
});

test('not proxied: another proxy\'s Services, headless, ExternalName, no cluster IP yet', async (t) => {
  const h = await harness(t);
  h.server.put(SERVICES, service('mine', { clusterIP: '10.43.0.9' }));
  h.server.put(SERVICES, service('theirs', { clusterIP: '10.43.0.10' }, { 'service.kubernetes.io/service-proxy-name': 'other' }));
  h.server.put(SERVICES, service('headless', { clusterIP: 'None' }));
  h.server.put(SERVICES, service('ext', { type: 'ExternalName', externalName: 'x.example', clusterIP: undefined }));
  h.server.put(SERVICES, service('pending', { clusterIP: undefined }));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs === 1, 'full sync');
  const full = h.runner.scripts()[0];
  assert.match(full, /10\.43\.0\.9/);
  assert.doesNotMatch(full, /theirs|headless|ns\/ext|pending|10\.43\.0\.10/);
});

test('iptables when nft does not work; periodic full resyncs; minimum interval between syncs', async (t) => {
  const runner = fakeRunner({ nft: false });
  const h = await harness(t, runner, { syncPeriodMs: 150, minSyncIntervalMs: 100 });
  h.server.put(SERVICES, service('web'));
  h.server.put(ENDPOINT_SLICES, slice('web-1', 'web', ['10.42.0.2']));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs >= 3, 'periodic full syncs', 3000);
  assert.equal(h.proxy.backendName, 'iptables');
  assert.ok(runner.calls.some((c) => c.file === 'iptables-save'));
  assert.match(runner.scripts()[0], /^\*nat\n:T1-SERVICES - \[0:0\]/);
  assert.match(runner.scripts()[0], /-j DNAT --to-destination 10\.42\.0\.2:8080/);
  // a burst of changes within the minimum interval is written in few deltas
  const before = h.proxy.stats.deltaSyncs + h.proxy.stats.fullSyncs;
  for (let i = 3; i < 13; i++) h.server.put(ENDPOINT_SLICES, slice('web-1', 'web', ['10.42.0.2', `10.42.0.${i}`]));
  const last = h.server.getObject(ENDPOINT_SLICES, 'ns', 'web-1')!.metadata!.resourceVersion;
  await until(() => h.proxy.programmedResourceVersion('endpointslices', 'ns', 'web-1') === last, 'burst programmed');
  assert.ok(h.proxy.stats.deltaSyncs + h.proxy.stats.fullSyncs - before <= 4, 'batched');
});

test('cleanup removes the table and chains, and restores route_localnet', async (t) => {
  const h = await harness(t);
  h.server.put(SERVICES, service('web'));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs === 1, 'full sync');
  assert.equal(readFileSync(h.sysctl, 'utf8').trim(), '1');
  await ServiceProxy.cleanup({ tableName: 't1', stateDir: h.opts.stateDir, routeLocalnetPath: h.sysctl, run: h.runner.run });
  const cmds = h.runner.calls.map((c) => `${c.file} ${c.args.join(' ')}`);
  assert.ok(cmds.includes('nft delete table ip t1'));
  assert.ok(cmds.includes('iptables-save -t nat') && cmds.includes('iptables-save -t filter'));
  assert.equal(readFileSync(h.sysctl, 'utf8').trim(), '0');
});

test('options are checked', () => {
  const base = { client: {} as never, nodeName: 'n', nodeIPs: [], clusterCIDR: '10.42.0.0/16' };
  assert.throws(() => new ServiceProxy({ ...base, tableName: 'bad-name' }), /tableName/);
  assert.throws(() => new ServiceProxy({ ...base, clusterCIDR: '10.42.0.0' }), /clusterCIDR/);
});

test('traffic policies use this node\'s endpoints; the health check port reports them', async (t) => {
  const hc = await freePort();
  const h = await harness(t, fakeRunner(), { healthCheckBindAddress: '127.0.0.1' });
  h.server.put(SERVICES, service('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: hc, ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] }));
  h.server.put(SERVICES, service('internal', { clusterIP: '10.43.0.7', internalTrafficPolicy: 'Local' }));
  h.server.put(ENDPOINT_SLICES, slice('lb-1', 'lb', ['10.42.0.2', '10.42.1.2'], { '10.42.0.2': 'n1', '10.42.1.2': 'n2' }));
  h.server.put(ENDPOINT_SLICES, slice('internal-1', 'internal', ['10.42.1.3'], { '10.42.1.3': 'n2' }));
  void h.start();
  await until(() => h.proxy.stats.fullSyncs === 1, 'full sync');
  const full = h.runner.scripts()[0];
  assert.match(full, /add rule ip t1 svl-ns\/lb\/tcp\/http goto ep-ns\/lb\/tcp\/http\/10\.42\.0\.2\/8080/, 'n1 is this node');
  assert.doesNotMatch(full, /svl-ns\/lb\/tcp\/http [^\n]*10\.42\.1\.2/);
  assert.match(full, /add element ip t1 no-local-endpoint-services \{ 10\.43\.0\.7 \. tcp \. 80 \}/, 'internal has no endpoint on n1');
  assert.deepEqual(h.proxy.healthCheckPorts(), [hc]);
  let r = await pollStatus(hc, 200);
  assert.deepEqual(r.body, { service: { namespace: 'ns', name: 'lb' }, localEndpoints: 1, serviceProxyHealthy: true });
  assert.equal(r.weight, '1');
  // the local endpoint moves away: 503
  const stored = h.server.put(ENDPOINT_SLICES, slice('lb-1', 'lb', ['10.42.1.2'], { '10.42.1.2': 'n2' }));
  await until(() => h.proxy.programmedResourceVersion('endpointslices', 'ns', 'lb-1') === stored.metadata?.resourceVersion, 'slice programmed');
  assert.match(h.runner.scripts().at(-1)!, /add element ip t1 no-local-endpoint-nodeports \{ tcp \. 30080 \}/);
  r = await httpStatus(hc);
  assert.deepEqual([r.status, r.body.localEndpoints], [503, 0]);
  // back to Cluster: the health check goes away
  h.server.put(SERVICES, service('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] }));
  await until(() => h.proxy.healthCheckPorts().length === 0, 'health check closed');
});

async function pollStatus(port: number, want: number): Promise<{ status: number; body: any; weight: unknown }> {
  const end = Date.now() + 5000;
  for (;;) {
    try { const r = await httpStatus(port); if (r.status === want || Date.now() > end) return r; } catch (e) { if (Date.now() > end) throw e; }
    await new Promise((res) => setTimeout(res, 20));
  }
}
