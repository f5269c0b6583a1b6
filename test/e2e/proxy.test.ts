// End to end for the Service proxy (src/proxy), once per backend (nftables, iptables): a real kyb
// cluster (in-process API server, no node agent), three network-namespace "pods" on a bridge of
// our own (10.<200-250>.x.0/24), each serving its own name with busybox httpd on :8080, and
// Services + EndpointSlices written through the API. The host then reaches them by ClusterIP,
// NodePort (127.0.0.1 and the bridge address), LoadBalancer ingress IP, and a pod reaches itself
// through its Service (hairpin), and UDP. Also: serving-terminating fallback, rejection without endpoints,
// ClientIP affinity (across a full resync), endpoint removal, traffic policies Local (endpoints with
// this proxy's node name only; an "outside" client in a fourth namespace, off the pod network, keeps
// its source address under externalTrafficPolicy Local; the health check node port), and a cleanup
// that leaves no table, chain, hook or sysctl change behind.
//
// Needs root, ip, nft and/or iptables, busybox-static. Everything stays on this host: Service
// addresses are in a random 10.43.<100-249>.0/24 routed to our bridge (so nothing can leave
// through the default route if a rule missed), the LoadBalancer address is an unused one in the
// bridge subnet. The pods' network is the lower half (/25) of a random 10.<200-250>.x.0/24; the
// outside client sits on a veth of its own at .130/30 of the same /24, routed through the host. All names carry a random suffix; everything is removed in `after`, even on failure.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { get as httpGet } from 'node:http';
import { createSocket } from 'node:dgram';
import { startCluster, type TestCluster } from '../integration/cluster.js';
import { RestClient } from '../../src/client/index.js';
import { isStatusError } from '../../src/machinery/status.js';
import { ServiceProxy, RouteLocalnet, DEFAULT_STATE_DIR, type SyncReport } from '../../src/proxy/index.js';
import type { KObject } from '../../src/api/types.js';

const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;
const canRun = isRoot && existsSync('/bin/busybox') && has('ip', ['-V']);
const haveNft = canRun && has('nft', ['list', 'tables']);
const haveIpt = canRun && has('iptables-save', ['-t', 'nat']) && has('iptables-restore', ['--version']);

const suffix = randomBytes(3).toString('hex');
const o2 = 200 + randomInt(51);
const o3 = randomInt(256);
const net = `10.${o2}.${o3}`;
const CIDR = `${net}.0/25`;
const GW = `${net}.1`;
const LB_IP = `${net}.200`;
const BRIDGE = `kybp${suffix}`;
const pods = ['a', 'b', 'c'].map((n, i) => ({ name: `pod-${n}`, ns: `kybp-${suffix}-${n}`, veth: `kp${suffix}${n}`, ip: `${net}.${i + 2}` }));
const [A, B, C] = pods;
/** a client off the pod network, behind the host (its own veth pair, not the bridge) */
const X = { ns: `kybp-${suffix}-x`, veth: `kp${suffix}x`, hostIP: `${net}.129`, ip: `${net}.130` };
let svcNet = ''; // 10.43.R, chosen in before()
const SERVICES = { group: '', version: 'v1', plural: 'services' };
const SLICES = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };
const NAMESPACES = { group: '', version: 'v1', plural: 'namespaces' };

let cluster: TestCluster | undefined;
let client: RestClient;
let wwwDir = '';
const servers: ChildProcess[] = [];
let routeAdded = false;
// (another proxy already running, e.g. a parallel test file, may have set it: then it is not ours to check)
const othersAtStart = (await new RouteLocalnet(DEFAULT_STATE_DIR).others('')).length;
const localnetBefore = existsSync('/proc/sys/net/ipv4/conf/all/route_localnet') ? readFileSync('/proc/sys/net/ipv4/conf/all/route_localnet', 'utf8').trim() : '';

function sh(cmd: string, args: string[]): string { return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString(); }
function shQuiet(cmd: string, args: string[]): void { spawnSync(cmd, args, { stdio: 'ignore' }); }

async function poll<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await f(); if (v !== undefined && v !== false) return v as T; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One HTTP GET on a fresh connection; resolves with the trimmed body. */
function fetchBody(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body.trim()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** One HTTP GET: status and body. */
function fetchStatus(host: string, port: number, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host, port, path: '/healthz', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** n sequential GETs; counts per body. */
async function spread(host: string, port: number, n: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) { const b = await fetchBody(host, port); m.set(b, (m.get(b) ?? 0) + 1); }
  return m;
}

/** Connects and reports how it ended: 'connected', or the error code, with the time it took. */
function tryConnect(host: string, port: number, timeoutMs = 3000): Promise<{ outcome: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: timeoutMs });
    s.on('connect', () => { s.destroy(); resolve({ outcome: 'connected', ms: Date.now() - t0 }); });
    s.on('timeout', () => { s.destroy(); resolve({ outcome: 'timeout', ms: Date.now() - t0 }); });
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ outcome: e.code ?? e.message, ms: Date.now() - t0 }));
  });
}

/** An HTTP GET from inside a pod's namespace (busybox nc: busybox-static's wget crashes on this host). */
function podGet(from: typeof A, host: string, port: number): string {
  const out = execFileSync('ip', ['netns', 'exec', from.ns, '/bin/busybox', 'nc', '-w', '3', host, String(port)], { input: 'GET / HTTP/1.0\r\n\r\n', timeout: 10_000 }).toString();
  const i = out.indexOf('\r\n\r\n');
  return i < 0 ? '' : out.slice(i + 4).trim();
}

/** An HTTP GET from the outside client's namespace: the body, or throws when nothing answers. */
function outsideGet(host: string, port: number, path = '/', waitSeconds = 3): string {
  const out = execFileSync('ip', ['netns', 'exec', X.ns, '/bin/busybox', 'nc', '-w', String(waitSeconds), host, String(port)], { input: `GET ${path} HTTP/1.0\r\n\r\n`, timeout: 10_000, stdio: ['pipe', 'pipe', 'ignore'] }).toString();
  // busybox httpd passes a CGI script's header block through as written (\n line ends)
  const m = /\r?\n\r?\n/.exec(out);
  if (!out.startsWith('HTTP/') || !m) throw new Error(`no HTTP answer from ${host}:${port}`);
  return out.slice(m.index + m[0].length).trim();
}

/** One UDP datagram to host:port on a connected socket; the reply, or the error code (ECONNREFUSED: ICMP port unreachable). */
function udpAsk(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const done = (v: string): void => { clearTimeout(t); sock.close(); resolve(v); };
    const t = setTimeout(() => done('timeout'), timeoutMs);
    sock.on('message', (m) => done(m.toString()));
    sock.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    sock.connect(port, host, () => sock.send('hello'));
  });
}

interface Ep { pod: typeof A; ready?: boolean; serving?: boolean; terminating?: boolean; node?: string }

function sliceBody(ns: string, name: string, service: string, eps: Ep[], rv?: string): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service }, ...(rv ? { resourceVersion: rv } : {}) },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: eps.map((e) => ({
      addresses: [e.pod.ip], targetRef: { kind: 'Pod', name: e.pod.name, namespace: ns }, ...(e.node ? { nodeName: e.node } : {}),
      conditions: { ready: e.ready ?? true, ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) },
    })),
  };
}

before(async () => {
  if (!canRun || (!haveNft && !haveIpt)) return;
  // pods: a bridge, three namespaces with a veth each, httpd in each
  sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${GW}/25`, 'dev', BRIDGE]);
  sh('ip', ['link', 'set', BRIDGE, 'up']);
  wwwDir = mkdtempSync(join(tmpdir(), 'kyb-proxy-e2e-'));
  for (const p of pods) {
    sh('ip', ['netns', 'add', p.ns]);
    sh('ip', ['link', 'add', p.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
    sh('ip', ['link', 'set', p.veth, 'master', BRIDGE, 'up']);
    sh('ip', ['link', 'set', p.veth, 'type', 'bridge_slave', 'hairpin', 'on']); // a pod reaching itself through a Service
    sh('ip', ['-n', p.ns, 'addr', 'add', `${p.ip}/25`, 'dev', 'eth0']);
    sh('ip', ['-n', p.ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', p.ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', p.ns, 'route', 'add', 'default', 'via', GW]);
    const dir = join(wwwDir, p.name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'index.html'), `${p.name}\n`);
    // /cgi-bin/ip answers with the client address the pod sees (busybox httpd's REMOTE_ADDR, which
    // it writes as [::ffff:a.b.c.d] on its dual-stack socket)
    mkdirSync(join(dir, 'cgi-bin'));
    writeFileSync(join(dir, 'cgi-bin', 'ip'), '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR" | sed -e "s/^\\[::ffff://" -e "s/]$//"\n', { mode: 0o755 });
    servers.push(spawn('ip', ['netns', 'exec', p.ns, '/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', dir], { stdio: 'ignore' }));
  }
  // the outside client: its own namespace and veth pair, routed through the host
  sh('ip', ['netns', 'add', X.ns]);
  sh('ip', ['link', 'add', X.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', X.ns]);
  sh('ip', ['addr', 'add', `${X.hostIP}/30`, 'dev', X.veth]);
  sh('ip', ['link', 'set', X.veth, 'up']);
  sh('ip', ['-n', X.ns, 'addr', 'add', `${X.ip}/30`, 'dev', 'eth0']);
  sh('ip', ['-n', X.ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', X.ns, 'route', 'add', 'default', 'via', X.hostIP]);
  // a UDP responder in pod C (for the UDP Service test)
  const udpScript = "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pod-c-udp',r.port,r.address));s.bind(5353,()=>process.stdout.write('ready\\n'))";
  const udp = spawn('ip', ['netns', 'exec', C.ns, process.execPath, '-e', udpScript], { stdio: ['ignore', 'pipe', 'ignore'] });
  servers.push(udp);
  await new Promise<void>((resolve, reject) => {
    udp.stdout!.once('data', () => resolve());
    udp.once('exit', (code) => reject(new Error(`UDP responder exited (${code})`)));
  });
  // a Service range of our own, routed to our bridge
  for (let i = 0; i < 20 && !routeAdded; i++) {
    const r = 100 + randomInt(150);
    if (spawnSync('ip', ['route', 'add', `10.43.${r}.0/24`, 'dev', BRIDGE], { stdio: 'ignore' }).status === 0) { svcNet = `10.43.${r}`; routeAdded = true; }
  }
  assert.ok(routeAdded, 'could not add a route for a Service range');
  for (const p of pods) await poll(`httpd in ${p.ns}`, async () => (await fetchBody(p.ip, 8080)) === p.name);
  cluster = await startCluster();
  client = RestClient.fromKubeconfig(cluster.kubeconfig);
});

after(async () => {
  if (!canRun || (!haveNft && !haveIpt)) return;
  for (const s of servers) s.kill('SIGKILL');
  for (const p of pods) shQuiet('ip', ['netns', 'del', p.ns]);
  shQuiet('ip', ['netns', 'del', X.ns]); // takes the veth pair with it
  if (routeAdded) shQuiet('ip', ['route', 'del', `${svcNet}.0/24`, 'dev', BRIDGE]);
  shQuiet('ip', ['link', 'del', BRIDGE]);
  if (wwwDir) rmSync(wwwDir, { recursive: true, force: true });
  client?.close();
  await cluster?.stop();
  assert.ok(!sh('ip', ['link', 'show']).includes(BRIDGE), 'bridge removed');
  const netns = sh('ip', ['netns', 'list']);
  for (const p of [...pods, X]) assert.ok(!netns.includes(p.ns), `netns ${p.ns} removed`);
  assert.ok(!sh('ip', ['link', 'show']).includes(X.veth), 'outside veth removed');
});

for (const backend of ['nftables', 'iptables'] as const) {
  const available = backend === 'nftables' ? haveNft : haveIpt;
  const skip = !canRun ? 'needs root, ip and busybox-static' : !available ? `needs ${backend}` : false;
  describe(`service proxy with ${backend}`, { skip }, () => {
    const tableName = `kyb${backend[0]}${suffix}`;
    const ns = `proxy-${backend}`;
    const ip = (n: number): string => `${svcNet}.${n + (backend === 'nftables' ? 0 : 100)}`;
    const nodePort = (n: number): number => 30000 + ((parseInt(suffix, 16) + n * 7 + (backend === 'nftables' ? 0 : 3)) % 2700);
    let proxy: ServiceProxy;
    let stopProxy: AbortController;
    let running: Promise<void>;
    const logs: string[] = [];
    const reports: SyncReport[] = [];

    async function createService(name: string, spec: Record<string, unknown>): Promise<KObject> {
      const svc = await client.create(SERVICES, ns, { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec } });
      return svc;
    }

    async function waitProgrammed(resource: 'services' | 'endpointslices', name: string, rv: string | undefined): Promise<void> {
      await poll(`${resource} ${ns}/${name}@${rv} programmed`, () => proxy.programmedResourceVersion(resource, ns, name) === rv);
    }

    /** Creates or replaces the slice and waits until the proxy has programmed it. */
    async function setSlice(service: string, eps: Ep[]): Promise<void> {
      const name = `${service}-slice`;
      let rv: string | undefined;
      try { rv = (await client.get(SLICES, ns, name)).metadata?.resourceVersion; } catch (e) { if (!isStatusError(e) || e.code !== 404) throw e; }
      const out = rv ? await client.update(SLICES, ns, sliceBody(ns, name, service, eps, rv)) : await client.create(SLICES, ns, sliceBody(ns, name, service, eps));
      await waitProgrammed('endpointslices', name, out.metadata?.resourceVersion);
    }

    before(async () => {
      await client.create(NAMESPACES, null, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      proxy = new ServiceProxy({
        client, nodeName: `proxy-e2e-${suffix}`, nodeIPs: [GW], clusterCIDR: CIDR, backend, tableName,
        syncPeriodMs: 120_000, log: (m) => logs.push(m), onSync: (r) => reports.push(r),
      });
      stopProxy = new AbortController();
      running = proxy.run(stopProxy.signal);
      await poll('first full sync', () => proxy.stats.fullSyncs >= 1);
      assert.equal(proxy.backendName, backend);
    });

    after(async () => {
      stopProxy?.abort();
      await running;
      await ServiceProxy.cleanup({ tableName });
      if (process.env.KYB_E2E_LOG) for (const l of logs) process.stderr.write(`proxy: ${l}\n`);
    });

    test('ClusterIP spreads new connections over both ready endpoints', async () => {
      await createService('web', { type: 'NodePort', clusterIP: ip(10), ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: nodePort(1) }] });
      await setSlice('web', [{ pod: A }, { pod: B }]);
      const seen = await spread(ip(10), 80, 40);
      assert.deepEqual([...seen.keys()].sort(), ['pod-a', 'pod-b'], `both endpoints serve: ${JSON.stringify([...seen])}`);
    });

    test('NodePort answers on 127.0.0.1 and on the bridge address', async () => {
      assert.equal(readFileSync('/proc/sys/net/ipv4/conf/all/route_localnet', 'utf8').trim(), '1');
      for (const host of ['127.0.0.1', GW]) {
        const seen = await spread(host, nodePort(1), 10);
        assert.ok([...seen.keys()].every((b) => b === 'pod-a' || b === 'pod-b'), `${host}: ${JSON.stringify([...seen])}`);
      }
    });

    test('a pod reaches its own Service (hairpin) and another pod through it', async () => {
      await createService('solo', { clusterIP: ip(11) });
      await setSlice('solo', [{ pod: A }]);
      for (const from of [A, B]) {
        assert.equal(podGet(from, ip(11), 80), 'pod-a', `from ${from.name}`);
      }
    });

    test('LoadBalancer ingress IP and its node port reach the endpoints', async () => {
      // a class of our own keeps any in-tree load-balancer controller away from the status we write
      const svc = await createService('lb', { type: 'LoadBalancer', loadBalancerClass: 'example.com/proxy-e2e', clusterIP: ip(12), ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: nodePort(2) }] });
      await setSlice('lb', [{ pod: C }]);
      const withStatus = await client.updateStatus(SERVICES, ns, { ...svc, status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } });
      await waitProgrammed('services', 'lb', withStatus.metadata?.resourceVersion);
      assert.equal(await fetchBody(LB_IP, 80), 'pod-c');
      assert.equal(await fetchBody('127.0.0.1', nodePort(2)), 'pod-c');
      assert.equal(await fetchBody(ip(12), 80), 'pod-c');
    });

    test('with no ready endpoint, traffic falls back to serving-terminating ones', async () => {
      await createService('term', { clusterIP: ip(13) });
      await setSlice('term', [
        { pod: A, ready: false, serving: true, terminating: true },
        { pod: B, ready: false, serving: false, terminating: true },
      ]);
      assert.deepEqual([...(await spread(ip(13), 80, 12)).keys()], ['pod-a']);
      // once something is ready again, only the ready endpoint gets traffic
      await setSlice('term', [
        { pod: A, ready: false, serving: true, terminating: true },
        { pod: C, ready: true },
      ]);
      assert.deepEqual([...(await spread(ip(13), 80, 12)).keys()], ['pod-c']);
    });

    test('a Service without endpoints refuses connections at once', async () => {
      const svc = await createService('empty', { type: 'NodePort', clusterIP: ip(14), ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: nodePort(3) }] });
      await waitProgrammed('services', 'empty', svc.metadata?.resourceVersion);
      for (const [host, port] of [[ip(14), 80], [GW, nodePort(3)]] as const) {
        const r = await tryConnect(host, port);
        assert.equal(r.outcome, 'ECONNREFUSED', `${host}:${port}`);
        assert.ok(r.ms < 1000, `${host}:${port} refused after ${r.ms} ms`);
      }
      // endpoints appear: the same address now serves
      await setSlice('empty', [{ pod: B }]);
      assert.equal(await fetchBody(ip(14), 80), 'pod-b');
      assert.equal(await fetchBody(GW, nodePort(3)), 'pod-b');
    });

    test('UDP: a Service port reaches the endpoint; without endpoints, port unreachable', async () => {
      const svc = await client.create<KObject>(SERVICES, ns, {
        apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns', namespace: ns },
        spec: { clusterIP: ip(16), ports: [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }] },
      });
      await waitProgrammed('services', 'dns', svc.metadata?.resourceVersion);
      assert.equal(await udpAsk(ip(16), 53), 'ECONNREFUSED');
      const out = await client.create<KObject>(SLICES, ns, {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: { name: 'dns-slice', namespace: ns, labels: { 'kubernetes.io/service-name': 'dns' } },
        addressType: 'IPv4', ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
        endpoints: [{ addresses: [C.ip], conditions: { ready: true } }],
      });
      await waitProgrammed('endpointslices', 'dns-slice', out.metadata?.resourceVersion);
      assert.equal(await udpAsk(ip(16), 53), 'pod-c-udp');
    });

    test('sessionAffinity ClientIP keeps a client on one endpoint, across a full resync', async () => {
      await createService('sticky', { clusterIP: ip(15), sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } } });
      await setSlice('sticky', [{ pod: A }, { pod: B }, { pod: C }]);
      const first = await spread(ip(15), 80, 20);
      assert.equal(first.size, 1, `one endpoint: ${JSON.stringify([...first])}`);
      const full = proxy.stats.fullSyncs;
      proxy.requestFullSync();
      await poll('a full resync', () => proxy.stats.fullSyncs > full);
      const again = await spread(ip(15), 80, 10);
      assert.deepEqual([...again.keys()], [...first.keys()]);
    });

    test('an endpoint removed from the slice gets no more traffic', async () => {
      await setSlice('web', [{ pod: B }]);
      assert.deepEqual([...(await spread(ip(10), 80, 20)).keys()], ['pod-b']);
      await setSlice('web', [{ pod: A }, { pod: B }]);
      assert.equal((await spread(ip(10), 80, 40)).size, 2);
    });

    test('a deleted Service stops answering', async () => {
      await client.delete(SERVICES, ns, 'solo');
      await poll('solo unprogrammed', () => proxy.programmedResourceVersion('services', ns, 'solo') === undefined);
      const r = await tryConnect(ip(11), 80, 1000);
      assert.notEqual(r.outcome, 'connected');
    });

    test('traffic policies Local: endpoints on another node are not used; Cluster uses them', async () => {
      const me = `proxy-e2e-${suffix}`; // the proxy's node name
      const eps: Ep[] = [{ pod: A, node: me }, { pod: B, node: 'another-node' }];
      const keys = async (host: string, port: number, n: number): Promise<string[]> => [...(await spread(host, port, n)).keys()].sort();
      // internalTrafficPolicy: Local only to A, Cluster to both
      await createService('itp-local', { clusterIP: ip(20), internalTrafficPolicy: 'Local' });
      await setSlice('itp-local', eps);
      await createService('itp-cluster', { clusterIP: ip(21), internalTrafficPolicy: 'Cluster' });
      await setSlice('itp-cluster', eps);
      assert.deepEqual(await keys(ip(20), 80, 20), ['pod-a']);
      assert.deepEqual(await keys(ip(21), 80, 30), ['pod-a', 'pod-b']);
      // no local endpoint: dropped (no refusal, unlike a Service without any endpoint)
      await setSlice('itp-local', [{ pod: B, node: 'another-node' }]);
      const dropped = await tryConnect(ip(20), 80, 1500);
      assert.ok(dropped.outcome !== 'connected' && dropped.outcome !== 'ECONNREFUSED', `dropped: ${JSON.stringify(dropped)}`);

      // externalTrafficPolicy Local on a LoadBalancer (node port + ingress IP), seen from the outside client
      const lb = await createService('etp-local', {
        type: 'LoadBalancer', loadBalancerClass: 'example.com/proxy-e2e', clusterIP: ip(22), externalTrafficPolicy: 'Local', healthCheckNodePort: nodePort(6),
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: nodePort(5) }],
      });
      assert.equal((lb.spec as { healthCheckNodePort?: number }).healthCheckNodePort, nodePort(6));
      await setSlice('etp-local', eps);
      const outside = (path: string, n: number): string[] => [...new Set(Array.from({ length: n }, () => outsideGet(GW, nodePort(5), path)))].sort();
      assert.deepEqual(outside('/', 12), ['pod-a'], 'only the local endpoint');
      assert.deepEqual(outside('/cgi-bin/ip', 3), [X.ip], 'the client address is kept');
      // the same client through a Cluster-policy node port is masqueraded and spread
      assert.deepEqual([...new Set(Array.from({ length: 6 }, () => outsideGet(GW, nodePort(1), '/cgi-bin/ip')))], [GW]);
      // ClusterIP traffic and this host's own connections (short-circuit) still use every endpoint
      assert.deepEqual(await keys(ip(22), 80, 30), ['pod-a', 'pod-b']);
      assert.deepEqual(await keys('127.0.0.1', nodePort(5), 30), ['pod-a', 'pod-b']);
      // the health check: 200 with one local endpoint
      const hc = await poll('health check', async () => { const r = await fetchStatus(GW, nodePort(6)); return r.status === 200 ? r : undefined; });
      assert.equal(JSON.parse(hc.body).localEndpoints, 1);
      // without a local endpoint: external traffic is dropped, the health check says 503, this host still gets through
      await setSlice('etp-local', [{ pod: B, node: 'another-node' }]);
      assert.throws(() => outsideGet(GW, nodePort(5), '/', 1), /no HTTP answer|Command failed/);
      assert.equal((await fetchStatus(GW, nodePort(6))).status, 503);
      assert.deepEqual(await keys('127.0.0.1', nodePort(5), 5), ['pod-b']);
      await client.delete(SERVICES, ns, 'etp-local');
      await poll('health check closed', () => !proxy.healthCheckPorts().includes(nodePort(6)));
    });

    test('deltas were used, and no write failed', () => {
      assert.ok(reports.some((r) => r.kind === 'delta' && r.changed > 0), 'delta syncs happened');
      assert.deepEqual(reports.filter((r) => r.error).map((r) => String(r.error)), []);
      assert.equal(proxy.stats.failures, 0);
    });

    test('cleanup removes every table, chain, hook and the route_localnet change', async () => {
      stopProxy.abort();
      await running;
      await ServiceProxy.cleanup({ tableName });
      if (haveNft) assert.ok(!sh('nft', ['list', 'tables']).split('\n').includes(`table ip ${tableName}`), 'nft table removed');
      if (haveIpt) {
        const P = `${tableName.toUpperCase()}-`;
        for (const t of ['nat', 'filter']) assert.deepEqual(sh('iptables-save', ['-t', t]).split('\n').filter((l) => l.includes(P)), [], `${t}: no ${P} chains or hooks`);
      }
      // another proxy on this host (a parallel test, a running kyb) keeps the sysctl at 1 on purpose
      const others = await new RouteLocalnet(DEFAULT_STATE_DIR).others('');
      if (others.length === 0 && othersAtStart === 0) assert.equal(readFileSync('/proc/sys/net/ipv4/conf/all/route_localnet', 'utf8').trim(), localnetBefore);
      // with the rules gone, the ClusterIP no longer answers
      assert.notEqual((await tryConnect(ip(10), 80, 1000)).outcome, 'connected');
    });
  });
}
