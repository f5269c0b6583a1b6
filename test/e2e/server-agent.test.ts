// `kyb server` with its own node agent, service proxy and cluster DNS (what `npm start` gives a new
// user), driven by the real kubectl: the node becomes Ready; image archives dropped into
// <data-dir>/agent/images/import are imported at start (air-gapped hosts); Services get stable
// addresses (ClusterIP, NodePort on 127.0.0.1, LoadBalancer), DNS names, spread traffic over ready
// pods, and a rolling update under steady load loses no request. `kyb agent --cleanup`
// (cleanupAgent) then removes every container, network namespace, the bridge, cgroups and rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import type { TestCluster } from '../integration/cluster.js';
import { canRunContainers, poll, startAgentCluster, type AgentCluster } from './agent-cluster.js';

const canRun = canRunContainers();
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox';

let k: AgentCluster;
let c: TestCluster;
let node = '';

/** One HTTP GET on a new connection (retried once: this checks reachability and spread, not loss); the body. */
function get(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return getOnce(host, port, timeoutMs).catch(() => getOnce(host, port, timeoutMs));
}

function getOnce(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const json = async (args: string[]) => JSON.parse((await c.kubectl([...args, '-o', 'json'])).stdout);

before(async () => {
  if (!canRun) return;
  k = await startAgentCluster({
    name: 'srv', octets: [200, 25],
    images: [{ ref: 'kyb.local/web:v1' }, { ref: 'kyb.local/web:v2', files: { '/www/version': 'v2\n' } }],
  });
  c = k.c;
  node = k.node;
});

after(async () => { if (canRun) await k?.stop(); });

test('the server runs its own node agent: node Ready, control-plane labels, kube-dns', { skip }, async () => {
  // the agent registers its Node once it has started (kubectl wait needs the object to exist)
  await poll('node registered', async () => (await c.kubectl(['get', 'node', node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${node}`, '--timeout=90s']);
  const n = await json(['get', 'node', node]);
  assert.equal(n.metadata.labels['node-role.kubernetes.io/control-plane'], 'true');
  assert.match((await c.kubectl(['get', 'svc', '-n', 'kube-system', 'kube-dns'])).stdout, /kube-dns\s+ClusterIP\s+10\.43\.0\.10\s+<none>\s+53\/UDP,53\/TCP/);
  assert.match((await c.kubectl(['get', 'svc', 'kubernetes'])).stdout, /kubernetes\s+ClusterIP\s+10\.43\.0\.1\s+<none>\s+443\/TCP/);
});

const webSpec = (image: string) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
  spec: {
    replicas: 3, selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 10,
        containers: [{
          name: 'web', image, imagePullPolicy: 'IfNotPresent',
          command: ['/bin/sh', '-c', 'hostname > /www/index.html; exec httpd -f -p 8080 -h /www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          // keep serving while the endpoint is withdrawn everywhere, as upstream recommends
          lifecycle: { preStop: { exec: { command: ['/bin/sleep', '2'] } } },
        }],
      },
    },
  },
});

test('Services: ClusterIP spreads over 3 replicas, NodePort on 127.0.0.1, LoadBalancer, DNS from a pod', { skip }, async () => {
  await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(webSpec('kyb.local/web:v1')) });
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s']);
  await c.kubectl(['expose', 'deployment', 'web', '--port=80', '--target-port=http', '--type=NodePort']);
  const svc = await json(['get', 'svc', 'web']);
  const vip = svc.spec.clusterIP as string;
  const nodePort = svc.spec.ports[0].nodePort as number;
  const pods = (await json(['get', 'pods', '-l', 'app=web'])).items.map((p: any) => p.metadata.name as string).sort();
  await poll('3 endpoints', async () => ((await json(['get', 'endpoints', 'web'])).subsets?.[0]?.addresses?.length === 3));
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) { const h = (await get(vip, 80)).trim(); seen.set(h, (seen.get(h) ?? 0) + 1); }
  assert.deepEqual([...seen.keys()].sort(), pods, `every replica serves some: ${JSON.stringify([...seen])}`);
  assert.ok(pods.includes((await get('127.0.0.1', nodePort)).trim()), 'NodePort on 127.0.0.1');
  // LoadBalancer: the node's address in status, answering on the node
  await c.kubectl(['expose', 'deployment', 'web', '--name=web-lb', '--port=8081', '--target-port=http', '--type=LoadBalancer']);
  const lbIP = await poll('LoadBalancer ingress', async () => (await json(['get', 'svc', 'web-lb'])).status?.loadBalancer?.ingress?.[0]?.ip as string | undefined);
  assert.ok(pods.includes((await poll('LB answers', async () => get(lbIP, 8081))).trim()));
  assert.match((await c.kubectl(['get', 'endpoints', 'web'])).stdout, /web\s+(\d+\.\d+\.\d+\.\d+:8080,?){3}/);
  assert.match((await c.kubectl(['describe', 'svc', 'web'])).stdout, /Endpoints:\s+(\d+\.\d+\.\d+\.\d+:8080,?){3}\n/);
  // a pod finds the Service by name through cluster DNS (10.43.0.10 via the proxy) and reaches its ClusterIP
  await c.kubectl(['run', 'client', '--image=kyb.local/web:v1', '--image-pull-policy=IfNotPresent', '--', '/bin/sleep', '3600']);
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/client', '--timeout=60s']);
  // Service environment variables, as upstream
  const env = (await c.kubectl(['exec', 'client', '--', '/bin/sh', '-c', 'echo $WEB_SERVICE_HOST $WEB_SERVICE_PORT $WEB_PORT $KUBERNETES_SERVICE_HOST'])).stdout.trim();
  assert.equal(env, `${vip} 80 tcp://${vip}:80 10.43.0.1`);
  const ns = await poll('DNS answer', async () => {
    const r = await c.kubectl(['exec', 'client', '--', 'nslookup', 'web.default.svc.cluster.local'], { allowFail: true });
    return r.code === 0 && r.stdout.includes(vip) ? r.stdout : undefined;
  });
  assert.match(ns, /Server:\s+10\.43\.0\.10/);
  const viaVip = (await c.kubectl(['exec', 'client', '--', '/bin/sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${vip} 80`])).stdout;
  assert.ok(pods.some((p: string) => viaVip.includes(p)), viaVip);
  // scaling down removes endpoints; traffic then reaches only the remaining pods
  await c.kubectl(['scale', 'deployment/web', '--replicas=2']);
  await poll('2 endpoints', async () => ((await json(['get', 'endpoints', 'web'])).subsets?.[0]?.addresses?.length === 2));
  const left = (await json(['get', 'endpoints', 'web'])).subsets[0].addresses.map((a: any) => a.targetRef.name).sort();
  for (let i = 0; i < 20; i++) assert.ok(left.includes((await get(vip, 80)).trim()));
});

test('a rolling update under steady load loses no request', { skip }, async () => {
  await c.kubectl(['scale', 'deployment/web', '--replicas=3']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=120s']);
  const vip = (await json(['get', 'svc', 'web'])).spec.clusterIP as string;
  // the load generator is a second process: new connection per request, 4 at a time
  const gen = spawn(process.execPath, ['-e', `
    const http = require('node:http');
    let ok = 0, failed = 0, stop = false; const errors = {};
    const one = () => new Promise((res) => { const r = http.get({ host: '${vip}', port: 80, path: '/', agent: false, timeout: 5000 }, (s) => { s.resume(); s.on('end', () => { if (s.statusCode === 200) ok++; else { failed++; errors['HTTP ' + s.statusCode] = (errors['HTTP ' + s.statusCode] || 0) + 1; } res(); }); });
      r.on('timeout', () => r.destroy(new Error('timeout'))); r.on('error', (e) => { failed++; errors[e.message] = (errors[e.message] || 0) + 1; res(); }); });
    const loop = async () => { while (!stop) await one(); };
    process.on('SIGTERM', () => { stop = true; });
    Promise.all([loop(), loop(), loop(), loop()]).then(() => { process.stdout.write(JSON.stringify({ ok, failed, errors })); });
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  gen.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const finished = new Promise<void>((resolve) => gen.on('exit', () => resolve()));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    await c.kubectl(['set', 'image', 'deployment/web', 'web=kyb.local/web:v2']);
    await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=180s']);
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    gen.kill('SIGTERM');
    await finished;
  }
  const r = JSON.parse(out) as { ok: number; failed: number; errors: Record<string, number> };
  process.stderr.write(`rolling update under load: ${r.ok} requests served, ${r.failed} failed\n`);
  assert.ok(r.ok > 100, `served ${r.ok}`);
  assert.equal(r.failed, 0, `failed requests: ${JSON.stringify(r.errors)}`);
  const pods = (await json(['get', 'pods', '-l', 'app=web'])).items;
  assert.ok(pods.filter((p: any) => !p.metadata.deletionTimestamp).every((p: any) => p.spec.containers[0].image === 'kyb.local/web:v2'));
});
