// Services as a user meets them through the real kubectl 1.32: ClusterIP and NodePort allocation
// with upstream's errors on clashes and ranges, headless and ExternalName Services, `kubectl expose`,
// the `kubectl get svc` columns, the `kubernetes` Service at 10.43.0.1 pointing at the API server,
// concurrent creates, nothing leaked by failed writes, and allocations that survive a restart of a
// server on the SQLite store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { startCluster, fetchInsecure, KUBECTL, type TestCluster } from './cluster.js';
import { startServer, type RunningServer } from '../../src/cli/server.js';

const suffix = Math.random().toString(36).slice(2, 7);
const NS = `svc-${suffix}`;

let c: TestCluster;
before(async () => {
  c = await startCluster();
  await c.kubectl(['create', 'namespace', NS]);
});
after(async () => { await c?.stop(); });

async function k(...args: string[]): Promise<string> {
  return (await c.kubectl(args)).stdout;
}
/** kubectl that is expected to fail: its stderr */
async function kFails(...args: string[]): Promise<string> {
  const r = await c.kubectl(args, { allowFail: true });
  assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} succeeded: ${r.stdout}`);
  return r.stderr;
}
async function svcJson(name: string, ns = NS): Promise<any> {
  return JSON.parse(await k('get', 'svc', name, '-n', ns, '-o', 'json'));
}
/** the row of `kubectl get svc NAME` split into its columns */
async function row(name: string): Promise<string[]> {
  const out = await k('get', 'svc', name, '-n', NS);
  const [head, line] = out.trim().split('\n');
  assert.match(head, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/);
  return line.trim().split(/\s+/);
}
const inRange = (ip: string): boolean => /^10\.43\.\d{1,3}\.\d{1,3}$/.test(ip) && ip !== '10.43.0.0' && ip !== '10.43.0.1' && ip !== '10.43.255.255';

test('the kubernetes Service is at 10.43.0.1 and its endpoints point at the API server', async () => {
  const svc = await svcJson('kubernetes', 'default');
  assert.equal(svc.spec.clusterIP, '10.43.0.1');
  assert.deepEqual(svc.spec.clusterIPs, ['10.43.0.1']);
  assert.deepEqual(svc.spec.ports, [{ name: 'https', port: 443, protocol: 'TCP', targetPort: c.server.api.port }]);
  assert.equal(svc.spec.type, 'ClusterIP');
  assert.equal(svc.spec.selector, undefined);
  assert.deepEqual(svc.metadata.labels, { component: 'apiserver', provider: 'kubernetes' });
  const ep = JSON.parse(await k('get', 'endpoints', 'kubernetes', '-n', 'default', '-o', 'json'));
  assert.deepEqual(ep.subsets, [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port: c.server.api.port, protocol: 'TCP' }] }]);
  const slice = JSON.parse(await k('get', 'endpointslice', 'kubernetes', '-n', 'default', '-o', 'json'));
  assert.equal(slice.addressType, 'IPv4');
  assert.deepEqual(slice.endpoints.map((e: any) => e.addresses), [['127.0.0.1']]);
  assert.deepEqual(slice.ports, [{ name: 'https', port: c.server.api.port, protocol: 'TCP' }]);
  assert.match(await k('get', 'svc', 'kubernetes', '-n', 'default'), /kubernetes\s+ClusterIP\s+10\.43\.0\.1\s+<none>\s+443\/TCP\s+/);
  // it cannot be taken by another Service
  assert.match(await kFails('create', 'service', 'clusterip', 'taker', '-n', NS, '--tcp=443', '--clusterip=10.43.0.1'),
    /spec\.clusterIPs: Invalid value: \[\]string\{"10\.43\.0\.1"\}: failed to allocate IP 10\.43\.0\.1: provided IP is already allocated/);
});

test('kubectl create service clusterip: an address from 10.43.0.0/16, a requested one, clashes and ranges', async () => {
  await k('create', 'service', 'clusterip', 'web', '-n', NS, '--tcp=80:8080');
  const [name, type, ip, ext, ports] = await row('web');
  assert.deepEqual([name, type, ext, ports], ['web', 'ClusterIP', '<none>', '80/TCP']);
  assert.ok(inRange(ip), ip);
  const web = await svcJson('web');
  assert.deepEqual([web.spec.clusterIPs, web.spec.ipFamilies, web.spec.ipFamilyPolicy, web.spec.internalTrafficPolicy], [[ip], ['IPv4'], 'SingleStack', 'Cluster']);
  assert.deepEqual(web.spec.ports, [{ name: '80-8080', port: 80, protocol: 'TCP', targetPort: 8080 }]);

  await k('create', 'service', 'clusterip', 'fixed', '-n', NS, '--tcp=80', '--clusterip=10.43.0.50');
  assert.equal((await row('fixed'))[2], '10.43.0.50');
  assert.match(await kFails('create', 'service', 'clusterip', 'fixed2', '-n', NS, '--tcp=80', '--clusterip=10.43.0.50'),
    /Service "fixed2" is invalid: spec\.clusterIPs: Invalid value: \[\]string\{"10\.43\.0\.50"\}: failed to allocate IP 10\.43\.0\.50: provided IP is already allocated/);
  assert.match(await kFails('create', 'service', 'clusterip', 'far', '-n', NS, '--tcp=80', '--clusterip=1.2.3.4'),
    /spec\.clusterIPs: Invalid value: \[\]string\{"1\.2\.3\.4"\}: failed to allocate IP 1\.2\.3\.4: the provided IP \(1\.2\.3\.4\) is not in the valid range\. The range of valid IPs is 10\.43\.0\.0\/16/);
  // the cluster IP is immutable
  assert.match(await kFails('patch', 'svc', 'fixed', '-n', NS, '-p', '{"spec":{"clusterIP":"10.43.0.51"}}'),
    /spec\.clusterIPs\[0\]: Invalid value: \[\]string\{"10\.43\.0\.51"\}: may not change once set/);
  // a deleted Service's address is free again
  await k('delete', 'svc', 'fixed', '-n', NS);
  await k('create', 'service', 'clusterip', 'fixed2', '-n', NS, '--tcp=80', '--clusterip=10.43.0.50');
  assert.equal((await row('fixed2'))[2], '10.43.0.50');
});

test('kubectl create service nodeport: requested and allocated node ports, PORT(S) 80:30080/TCP, clashes', async () => {
  await k('create', 'service', 'nodeport', 'np', '-n', NS, '--tcp=80:8080', '--node-port=30080');
  const [, type, ip, ext, ports] = await row('np');
  assert.deepEqual([type, ext, ports], ['NodePort', '<none>', '80:30080/TCP']);
  assert.ok(inRange(ip));
  assert.equal((await svcJson('np')).spec.externalTrafficPolicy, 'Cluster');
  assert.match(await kFails('create', 'service', 'nodeport', 'np2', '-n', NS, '--tcp=80', '--node-port=30080'),
    /Service "np2" is invalid: spec\.ports\[0\]\.nodePort: Invalid value: 30080: provided port is already allocated/);
  assert.match(await kFails('create', 'service', 'nodeport', 'np2', '-n', NS, '--tcp=80', '--node-port=8080'),
    /spec\.ports\[0\]\.nodePort: Invalid value: 8080: provided port is not in the valid range\. The range of valid ports is 30000-32767/);
  await k('create', 'service', 'nodeport', 'auto', '-n', NS, '--tcp=80,443');
  const auto = (await svcJson('auto')).spec.ports.map((p: any) => p.nodePort);
  assert.equal(auto.length, 2);
  for (const p of auto) assert.ok(p >= 30000 && p <= 32767 && p !== 30080, String(p));
  assert.notEqual(auto[0], auto[1]);
  assert.match((await row('auto'))[4], new RegExp(`^80:${auto[0]}/TCP,443:${auto[1]}/TCP$`));
  // resubmitting the Service without the allocated values keeps them (kubectl replace)
  const spec = await svcJson('auto');
  for (const p of spec.spec.ports) delete p.nodePort;
  delete spec.spec.clusterIP; delete spec.spec.clusterIPs; delete spec.metadata.resourceVersion;
  await c.kubectl(['replace', '-f', '-'], { input: JSON.stringify(spec) });
  assert.deepEqual((await svcJson('auto')).spec.ports.map((p: any) => p.nodePort), auto);
  // NodePort → ClusterIP releases the node port; delete releases too
  await k('patch', 'svc', 'np', '-n', NS, '-p', '{"spec":{"type":"ClusterIP"}}');
  const cip = await svcJson('np');
  assert.deepEqual([cip.spec.type, cip.spec.ports[0].nodePort, cip.spec.externalTrafficPolicy, cip.spec.clusterIP], ['ClusterIP', undefined, undefined, ip]);
  await k('create', 'service', 'nodeport', 'np3', '-n', NS, '--tcp=80', '--node-port=30080');
  await k('delete', 'svc', 'np3', '-n', NS);
  await k('create', 'service', 'nodeport', 'np4', '-n', NS, '--tcp=80', '--node-port=30080');
  assert.equal((await row('np4'))[4], '80:30080/TCP');
});

test('headless, ExternalName and LoadBalancer Services', async () => {
  await k('create', 'service', 'clusterip', 'db', '-n', NS, '--clusterip=None', '--tcp=5432');
  const [, type, ip, ext, ports] = await row('db');
  assert.deepEqual([type, ip, ext, ports], ['ClusterIP', 'None', '<none>', '5432/TCP']);
  assert.deepEqual((await svcJson('db')).spec.clusterIPs, ['None']);

  await k('create', 'service', 'externalname', 'ext', '-n', NS, '--external-name=db.example.com');
  assert.deepEqual((await row('ext')).slice(1, 5), ['ExternalName', '<none>', 'db.example.com', '<none>']);
  const ext1 = (await svcJson('ext')).spec;
  assert.deepEqual([ext1.clusterIP, ext1.clusterIPs, ext1.ipFamilies], [undefined, undefined, undefined]);
  const badName = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'bad', namespace: NS }, spec: { type: 'ExternalName', externalName: 'Not_A_Name.' } });
  assert.match((await c.kubectl(['create', '-f', '-'], { input: badName, allowFail: true })).stderr,
    /The Service "bad" is invalid: spec\.externalName: Invalid value: "Not_A_Name": a lowercase RFC 1123 subdomain must consist of/);

  // ClusterIP → ExternalName releases the address
  await k('create', 'service', 'clusterip', 'moving', '-n', NS, '--tcp=80', '--clusterip=10.43.0.60');
  await k('patch', 'svc', 'moving', '-n', NS, '-p', '{"spec":{"type":"ExternalName","externalName":"moved.example.com"}}');
  const moved = (await svcJson('moving')).spec;
  assert.deepEqual([moved.type, moved.clusterIP, moved.clusterIPs], ['ExternalName', undefined, undefined]);
  await k('create', 'service', 'clusterip', 'reuse', '-n', NS, '--tcp=80', '--clusterip=10.43.0.60');

  await k('create', 'service', 'loadbalancer', 'lb', '-n', NS, '--tcp=80');
  const lb = (await svcJson('lb')).spec;
  assert.equal(lb.allocateLoadBalancerNodePorts, true);
  assert.ok(lb.ports[0].nodePort >= 30000);
  assert.equal((await row('lb'))[4], `80:${lb.ports[0].nodePort}/TCP`);
  // externalTrafficPolicy Local: a health check node port
  await k('patch', 'svc', 'lb', '-n', NS, '-p', '{"spec":{"externalTrafficPolicy":"Local"}}');
  const local = (await svcJson('lb')).spec;
  assert.ok(local.healthCheckNodePort >= 30000 && local.healthCheckNodePort !== local.ports[0].nodePort);
});

test('kubectl expose deployment; multi-port validation with upstream wording', async () => {
  await k('create', 'deployment', 'shop', '-n', NS, '--image=kyb.local/busybox:latest', '--port=8080');
  await k('expose', 'deployment', 'shop', '-n', NS, '--port=80', '--target-port=8080', '--type=NodePort');
  const svc = await svcJson('shop');
  assert.deepEqual(svc.spec.selector, { app: 'shop' });
  assert.equal(svc.spec.ports[0].targetPort, 8080);
  assert.ok(inRange(svc.spec.clusterIP));
  assert.ok(svc.spec.ports[0].nodePort >= 30000);
  assert.match((await row('shop')).slice(1).join(' '), new RegExp(`^NodePort ${svc.spec.clusterIP.replace(/\./g, '\\.')} <none> 80:${svc.spec.ports[0].nodePort}/TCP`));

  const two = JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'two', namespace: NS },
    spec: { type: 'NodePort', selector: { app: 'shop' }, ports: [{ port: 80, nodePort: 30111 }, { name: 'b', port: 80, targetPort: 'no_such_name' }] },
  });
  const err = (await c.kubectl(['create', '-f', '-'], { input: two, allowFail: true })).stderr;
  assert.equal(err, [
    'The Service "two" is invalid: ',
    '* spec.ports[0].name: Required value',
    '* spec.ports[1].targetPort: Invalid value: "no_such_name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    '* spec.ports[1].nodePort: Duplicate value: 30111',
    '* spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    '',
  ].join('\n'));
  // the failed create held node port 30111 while it was validated; it is free again
  await k('create', 'service', 'nodeport', 'after', '-n', NS, '--tcp=80', '--node-port=30111');

  const affinity = JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'sticky', namespace: NS },
    spec: { selector: { app: 'shop' }, ports: [{ port: 80 }], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } } },
  });
  assert.match((await c.kubectl(['create', '-f', '-'], { input: affinity, allowFail: true })).stderr,
    /spec\.sessionAffinityConfig\.clientIP\.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400/);
});

test('concurrent creates never get the same IP or node port', async () => {
  const { url } = c.server.api;
  const headers = { Authorization: `Bearer ${c.server.token}`, 'Content-Type': 'application/json' };
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => fetchInsecure(`${url}/api/v1/namespaces/${NS}/services`, {
    method: 'POST', headers,
    body: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: `burst-${i}` }, spec: { type: 'NodePort', selector: { app: 'burst' }, ports: [{ port: 80 }] } }),
  })));
  assert.deepEqual(results.map((r) => r.status), results.map(() => 201), results.map((r) => r.text).join('\n'));
  const ips = new Set(results.map((r) => r.body.spec.clusterIP));
  const ports = new Set(results.map((r) => r.body.spec.ports[0].nodePort));
  assert.equal(ips.size, 40);
  assert.equal(ports.size, 40);
  // and none clashes with what was there before
  const all = JSON.parse(await k('get', 'svc', '-A', '-o', 'json')).items;
  const seen = new Map<string, string>();
  for (const s of all) {
    for (const v of [...(s.spec.clusterIPs ?? []).filter((x: string) => x !== 'None'), ...(s.spec.ports ?? []).map((p: any) => p.nodePort).filter(Boolean)]) {
      assert.ok(!seen.has(String(v)), `${v} held by ${seen.get(String(v))} and ${s.metadata.name}`);
      seen.set(String(v), s.metadata.name);
    }
  }
});

// ---- a restart of a server on the SQLite store ---------------------------------------------------

function kubectlAt(server: RunningServer, dir: string, args: string[], allowFail = false): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(KUBECTL, args, { env: { ...process.env, KUBECONFIG: server.kubeconfigPath, KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      if (code !== 0 && !allowFail) reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr}`));
      else resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}

test('allocations survive a restart of a server on the SQLite store', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-svc-restart-'));
  let server: RunningServer | undefined;
  t.after(async () => { await server?.stop(); rmSync(dir, { recursive: true, force: true }); });
  // a small range so that the second server has to avoid every value the first one handed out
  const args = ['--data-dir', dir, '--https-listen-port', '0', '--bind-address', '127.0.0.1', '--disable-agent', '--disable', 'controllers', '--disable', 'scheduler',
    '--service-cidr', '10.99.0.0/28', '--service-node-port-range', '30000-30004'];
  server = await startServer(args);
  const run = (a: string[], allowFail = false) => kubectlAt(server!, dir, a, allowFail);
  const ip = async (name: string) => JSON.parse((await run(['get', 'svc', name, '-o', 'json'])).stdout).spec.clusterIP as string;
  const nodePort = async (name: string) => JSON.parse((await run(['get', 'svc', name, '-o', 'json'])).stdout).spec.ports[0].nodePort as number;
  const before: string[] = [];
  const beforePorts: number[] = [];
  for (let i = 0; i < 3; i++) { await run(['create', 'service', 'clusterip', `c${i}`, '--tcp=80']); before.push(await ip(`c${i}`)); }
  for (let i = 0; i < 2; i++) { await run(['create', 'service', 'nodeport', `n${i}`, '--tcp=80']); before.push(await ip(`n${i}`)); beforePorts.push(await nodePort(`n${i}`)); }
  assert.equal(await ip('kubernetes'), '10.99.0.1');
  await server.stop();
  server = undefined;

  server = await startServer(args);
  // the kubernetes Service was repaired, not duplicated
  assert.equal(await ip('kubernetes'), '10.99.0.1');
  assert.match((await run(['create', 'service', 'clusterip', 'dup', '--tcp=80', `--clusterip=${before[0]}`], true)).stderr, /provided IP is already allocated/);
  assert.match((await run(['create', 'service', 'nodeport', 'dup', '--tcp=80', `--node-port=${beforePorts[0]}`], true)).stderr, /provided port is already allocated/);
  // 14 usable addresses: 10.99.0.1 and the 5 kept ones are taken, so 8 more fit, all different
  const after: string[] = [];
  for (let i = 0; i < 8; i++) { await run(['create', 'service', 'clusterip', `d${i}`, '--tcp=80']); after.push(await ip(`d${i}`)); }
  assert.equal(new Set([...before, ...after, '10.99.0.1']).size, 14);
  assert.match((await run(['create', 'service', 'clusterip', 'full', '--tcp=80'], true)).stderr, /Internal error occurred: failed to allocate a serviceIP: range is full/);
  // 5 node ports: 2 kept, 3 left (NodePort Services need an address too, so free one first)
  await run(['delete', 'svc', 'd0', 'd1', 'd2']);
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) { await run(['create', 'service', 'nodeport', `m${i}`, '--tcp=80']); ports.push(await nodePort(`m${i}`)); }
  assert.deepEqual([...beforePorts, ...ports].sort(), [30000, 30001, 30002, 30003, 30004]);
});
