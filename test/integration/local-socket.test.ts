// `kyb server` serves its API on a Unix socket in the data dir too (<data-dir>/api.sock, mode 0600),
// for its own components (scheduler, controllers) in the worker thread: plain HTTP without TLS and
// the loopback TCP stack, the same credentials. Checked: the socket's mode, 401 without the token,
// the same answers as over HTTPS with it, the components connected through it (the scheduler binds a
// pod), and the socket removed at stop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, existsSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
let sock: string;
before(async () => {
  c = await startCluster();
  sock = join(c.dir, 'api.sock');
});
after(async () => { if (c) await c.stop(); });

function get(path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ socketPath: sock, path, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

test('the API answers on <data-dir>/api.sock (mode 0600) with the same credentials as over HTTPS', async () => {
  const st = statSync(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  const anon = await get('/api/v1/namespaces');
  assert.equal(anon.status, 401);
  assert.equal(JSON.parse(anon.body).reason, 'Unauthorized');
  const ok = await get('/api/v1/namespaces/default', c.server.token);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).metadata.name, 'default');
  const v = await get('/version', c.server.token);
  assert.equal(JSON.parse(v.body).minor, '32');
});

test('the components reach the API through the socket: the scheduler binds a pod while connected there', async () => {
  await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'sock-node' }, status: { allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, capacity: { cpu: '4', memory: '8Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] } }) });
  await c.kubectl(['run', 'sock-pod', '--image=busybox', '--restart=Never']);
  const deadline = Date.now() + 30_000;
  let node = '';
  while (Date.now() < deadline) {
    node = (await c.kubectl(['get', 'pod', 'sock-pod', '-o', 'jsonpath={.spec.nodeName}'])).stdout;
    if (node) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(node, 'sock-node');
  // accepted connections carry the listening socket's path in /proc/net/unix: the listener plus the
  // components' keep-alive and watch connections
  const lines = readFileSync('/proc/net/unix', 'utf8').split('\n').filter((l) => l.endsWith(` ${sock}`));
  assert.ok(lines.length > 2, `expected connections on ${sock}, found ${lines.length - 1}`);
});

test('the socket is removed when the server stops (the data dir stays)', async () => {
  await c.server.stop();
  assert.equal(existsSync(join(c.dir, 'kubeconfig.yaml')), true);
  assert.equal(existsSync(sock), false);
  rmSync(c.dir, { recursive: true, force: true });
  c = undefined as unknown as TestCluster;
});
