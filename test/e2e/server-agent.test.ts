// `kyb server` runs a node agent for its own host (what `npm start` gives a new user): the node
// becomes Ready, an image archive dropped into <data-dir>/agent/images/import is imported at start
// (air-gapped hosts), and a pod runs as a real container. `kyb agent --cleanup` (cleanupAgent) then
// removes every container, network namespace, the bridge and the cgroups, with the server gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startCluster } from '../integration/cluster.js';
import { cleanupAgent } from '../../src/cli/agent.js';
import { buildBusyboxImage } from '../../src/node/images/index.js';

const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox') && existsSync('/usr/lib/cni/bridge') && (() => {
  try { execFileSync('runc', ['--version']); execFileSync('conmon', ['--version']); return true; } catch { return false; }
})();

test('kyb server runs its own node agent', { skip: !canRun && 'needs root, runc, conmon, CNI plugins, busybox' }, async () => {
  const suffix = randomBytes(3).toString('hex');
  const octet = 200 + ((parseInt(suffix, 16) + 25) % 50);
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  // the data dir is chosen before the server starts so the image archive can be dropped in first
  const pre = mkdtempSync(join(tmpdir(), 'kyb-srv-'));
  mkdirSync(join(pre, 'agent', 'images', 'import'), { recursive: true });
  await buildBusyboxImage({ out: join(pre, 'agent', 'images', 'import', 'busybox.tar'), ref: 'kyb.local/busybox:srv' });
  const node = `srv-${suffix}`;
  const flags = {
    runRoot: join(pre, 'run'), cgroupParent: `/kyb-srv-${suffix}`, bridge: `kybs${suffix}`,
  };
  const c = await startCluster(['--with-agent', '--data-dir', pre, '--node-name', node, '--cluster-cidr', `10.${octet}.0.0/16`,
    '--cluster-dns-upstream', 'none', '--agent-run-dir', flags.runRoot, '--cgroup-parent', flags.cgroupParent, '--pod-bridge', flags.bridge]);
  try {
    // the agent registers its Node once it has started (kubectl wait needs the object to exist)
    const deadline = Date.now() + 60_000;
    while ((await c.kubectl(['get', 'node', node], { allowFail: true })).code !== 0) {
      assert.ok(Date.now() < deadline, 'node registered within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    await c.kubectl(['wait', '--for=condition=Ready', `node/${node}`, '--timeout=90s']);
    const labels = JSON.parse((await c.kubectl(['get', 'node', node, '-o', 'json'])).stdout).metadata.labels;
    assert.equal(labels['node-role.kubernetes.io/control-plane'], 'true');
    await c.kubectl(['run', 'hello', '--image=kyb.local/busybox:srv', '--image-pull-policy=IfNotPresent', '--', '/bin/httpd', '-f', '-p', '8080', '-h', '/www']);
    await c.kubectl(['wait', '--for=condition=Ready', 'pod/hello', '--timeout=60s']);
    const pod = JSON.parse((await c.kubectl(['get', 'pod', 'hello', '-o', 'json'])).stdout);
    const res = await fetch(`http://${pod.status.podIP}:8080/`);
    assert.equal(res.status, 200);
    // cluster DNS is published as kube-dns at 10.43.0.10
    assert.match((await c.kubectl(['get', 'svc', '-n', 'kube-system', 'kube-dns'])).stdout, /kube-dns\s+ClusterIP\s+10\.43\.0\.10\s+<none>\s+53\/UDP,53\/TCP/);
  } finally {
    await c.server.stop();
    await cleanupAgent({ server: '', token: '', dataDir: join(pre, 'agent'), nodeName: node, ...flags });
    assert.deepEqual(readdirSync(join(pre, 'agent', 'containers')), []);
    await c.stop().catch(() => undefined);
    rmSync(pre, { recursive: true, force: true });
  }
  assert.ok(!execFileSync('ip', ['link', 'show']).toString().includes(flags.bridge), 'bridge removed');
  assert.ok(!existsSync(`/sys/fs/cgroup/memory${flags.cgroupParent}`), 'cgroups removed');
});
