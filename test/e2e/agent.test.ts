// End to end with real containers: a kyb server (memory store) with the node agent running pods
// through runc + conmon on a CNI bridge, driven by the real kubectl 1.32. Needs root, runc, conmon,
// the CNI plugins and busybox-static (.ci/run installs them). Everything the test creates (pods,
// containers, network namespaces, the bridge, cgroups, mounts) is removed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import { startCluster, KUBECTL, type TestCluster } from '../integration/cluster.js';
import { startAgent, type RunningAgent, type AgentRunConfig } from '../../src/cli/agent.js';
import { buildBusyboxImage, busyboxRootfs } from '../../src/node/images/busybox.js';
import { makeImage } from '../../src/node/images/testing/fixtures.js';
import { startRegistry } from './registry.js';

const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox') && existsSync('/usr/lib/cni/bridge') && (() => {
  try { execFileSync('runc', ['--version']); execFileSync('conmon', ['--version']); return true; } catch { return false; }
})();

const suffix = randomBytes(3).toString('hex');
const octet = 200 + (parseInt(suffix, 16) % 50);
let c: TestCluster;
let agent: RunningAgent;
let agentCfg: AgentRunConfig;
const IMAGE = 'kyb.local/busybox:e2e';

async function poll<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await f(); if (v !== undefined && v !== false) return v as T; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function podJson(name: string): Promise<any> {
  return JSON.parse((await c.kubectl(['get', 'pod', name, '-o', 'json'])).stdout);
}

function applyPod(name: string, spec: Record<string, unknown>): Promise<unknown> {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { terminationGracePeriodSeconds: 2, ...spec } };
  return c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
}

before(async () => {
  if (!canRun) return;
  c = await startCluster(['--cluster-cidr', `10.${octet}.0.0/16`]);
  agentCfg = {
    server: `https://127.0.0.1:${c.server.api.port}`, caPem: c.server.caPem, token: c.server.token,
    nodeName: `e2e-${suffix}`, dataDir: join(c.dir, 'agent'), runRoot: join(c.dir, 'run'), cgroupParent: `/kyb-e2e-${suffix}`,
    bridge: `kybe${suffix}`, proxyTableName: `ka${suffix}`, clusterDNS: ['10.43.0.10'], clusterDomain: 'cluster.local', backoffBaseMs: 3000, log: process.env.KYB_E2E_LOG ? (m: string) => process.stderr.write(`agent: ${m}\n`) : () => undefined,
  };
  const img = await buildBusyboxImage({ out: join(c.dir, 'busybox.tar'), ref: IMAGE, files: { '/www/index.html': 'hello from kyb e2e\n' } });
  agent = await startAgent(agentCfg);
  await agent.images.importArchive(img.path);
});

after(async () => {
  if (!canRun) return;
  let mountsLeft: string[] = [];
  let nsLeft: string[] = [];
  try {
    await agent?.cleanup();
    mountsLeft = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(c.dir));
    nsLeft = existsSync(join(agentCfg.runRoot!, 'pods')) ? readdirSync(join(agentCfg.runRoot!, 'pods')) : [];
  } finally { await c?.stop(); }
  assert.deepEqual(agent.agent.runtime.list(), [], 'no containers left');
  assert.ok(!existsSync(`/sys/fs/cgroup/memory${agentCfg.cgroupParent}`), 'pod cgroups removed');
  assert.ok(!execFileSync('ip', ['link', 'show']).toString().includes(`kybe${suffix}`), 'bridge removed');
  assert.deepEqual(mountsLeft, [], 'no mount left (rootfs, namespace files)');
  assert.deepEqual(nsLeft, [], 'no pod namespace files left');
});

test('the node registers and becomes Ready', { skip: !canRun && 'needs root, runc, conmon, CNI plugins, busybox' }, async () => {
  await c.kubectl(['wait', '--for=condition=Ready', `node/e2e-${suffix}`, '--timeout=60s']);
  const node = JSON.parse((await c.kubectl(['get', 'node', `e2e-${suffix}`, '-o', 'json'])).stdout);
  assert.match(node.spec.podCIDR, new RegExp(`^10\\.${octet}\\.\\d+\\.0/24$`));
  assert.equal(node.status.allocatable.pods, '110');
  assert.match(node.status.nodeInfo.containerRuntimeVersion, /^runc:\/\//);
  const wide = (await c.kubectl(['get', 'nodes', '-o', 'wide'])).stdout;
  assert.match(wide, new RegExp(`e2e-${suffix}\\s+Ready`));
});

test('a deployment of an HTTP server runs, with pod IPs reachable from the host', { skip: !canRun && 'needs root' }, async () => {
  await c.kubectl(['create', 'deployment', 'web', `--image=${IMAGE}`, '--replicas=2', '--port=8080', '--', '/bin/httpd', '-f', '-v', '-p', '8080', '-h', '/www']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=90s']);
  const pods = JSON.parse((await c.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout).items;
  assert.equal(pods.length, 2);
  for (const p of pods) {
    assert.equal(p.status.phase, 'Running');
    assert.match(p.status.podIP, new RegExp(`^10\\.${octet}\\.`));
    assert.match(p.status.containerStatuses[0].containerID, /^runc:\/\/[0-9a-f]{64}$/);
    const res = await fetch(`http://${p.status.podIP}:8080/`);
    assert.equal(await res.text(), 'hello from kyb e2e\n');
  }
});

test('logs, exec (plain, stdin, exit code, tty) and port-forward', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('talker', { containers: [{ name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'echo one; echo two >&2; /bin/httpd -p 127.0.0.1:8081 -h /www; exec /bin/httpd -f -p 8080 -h /www'] }] });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/talker', '--timeout=60s']);
  const logs = (await c.kubectl(['logs', 'talker'])).stdout;
  assert.equal(logs, 'one\ntwo\n');
  assert.equal((await c.kubectl(['logs', 'talker', '--tail=1'])).stdout, 'two\n');
  assert.match((await c.kubectl(['logs', 'talker', '--timestamps'])).stdout, /^\d{4}-\d\d-\d\dT\S+ one$/m);
  assert.equal((await c.kubectl(['exec', 'talker', '--', 'cat', '/etc/hostname'])).stdout, 'talker\n');
  const failed = await c.kubectl(['exec', 'talker', '--', 'sh', '-c', 'exit 3'], { allowFail: true });
  assert.equal(failed.code, 3);
  assert.equal((await c.kubectl(['exec', '-i', 'talker', '--', 'cat'], { input: 'piped through\n' })).stdout, 'piped through\n');
  // an interactive shell through a pseudo terminal (node-pty gives kubectl a tty)
  const pty = createRequire(import.meta.url)('node-pty') as typeof NodePty;
  const term = pty.spawn(KUBECTL, ['exec', '-it', 'talker', '--', 'sh'], { cols: 77, rows: 22, env: c.env as Record<string, string>, name: 'xterm' });
  let screen = '';
  term.onData((d) => { screen += d; });
  const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  await poll('shell prompt', async () => screen.includes('/ # ')).catch((e) => { throw new Error(`${(e as Error).message}; screen: ${JSON.stringify(screen)}`); });
  term.write('tty; stty size; exit 5\r');
  assert.equal(await exited, 5);
  assert.match(screen, /\/dev\/pts\/\d+/);
  assert.match(screen, /22 77/);
  // port-forward to random local ports: one server on the pod IP, one bound to the pod's 127.0.0.1 only
  const pf = spawn(KUBECTL, ['port-forward', 'pod/talker', ':8080', ':8081'], { env: c.env });
  try {
    const ports = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      pf.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const a = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(out);
        const b = /Forwarding from 127\.0\.0\.1:(\d+) -> 8081/.exec(out);
        if (a && b) resolve([Number(a[1]), Number(b[1])]);
      });
      pf.on('exit', (code) => reject(new Error(`port-forward exited ${code}`)));
      setTimeout(() => reject(new Error(`no port-forward: ${out}`)), 20_000);
    });
    for (const port of ports) {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await res.text(), 'hello from kyb e2e\n');
    }
    // the loopback server is not reachable on the pod IP: the forward went through the pod's namespace
    const ip = (await podJson('talker')).status.podIP;
    await assert.rejects(fetch(`http://${ip}:8081/`));
  } finally { pf.kill(); }
});

test('logs -f ends when the container exits; attach streams output', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('counter', { restartPolicy: 'Never', containers: [{ name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'sleep 1; for i in 1 2 3; do echo line $i; sleep 0.3; done'] }] });
  await poll('counter running', async () => (await podJson('counter')).status.containerStatuses?.[0]?.state?.running);
  const follow = await c.kubectl(['logs', '-f', 'counter']);
  assert.equal(follow.stdout, 'line 1\nline 2\nline 3\n');
  await applyPod('ticker', { containers: [{ name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'while :; do echo tick; sleep 0.2; done'] }] });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/ticker', '--timeout=60s']);
  const att = spawn(KUBECTL, ['attach', 'ticker'], { env: c.env });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      att.stdout.on('data', (d: Buffer) => { out += d.toString(); if (/tick\ntick\n/.test(out)) resolve(); });
      att.on('exit', (code) => reject(new Error(`attach exited ${code}: ${out}`)));
      setTimeout(() => reject(new Error(`no output from attach: ${out}`)), 20_000);
    });
  } finally { att.kill(); }
});

test('init containers, env and volumes from a ConfigMap, emptyDir, downward API, securityContext', { skip: !canRun && 'needs root' }, async () => {
  await c.kubectl(['create', 'configmap', 'settings', '--from-literal=greeting=hi there', '--from-literal=color=blue']);
  await applyPod('wired', {
    volumes: [{ name: 'work', emptyDir: {} }, { name: 'cfg', configMap: { name: 'settings' } },
      { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }],
    initContainers: [{ name: 'prepare', image: IMAGE, command: ['/bin/sh', '-c', 'echo prepared > /work/state'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
    containers: [{
      name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'sleep 3600'],
      env: [{ name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'settings', key: 'greeting' } } }, { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
      securityContext: { runAsUser: 65534, runAsGroup: 65534 },
      volumeMounts: [{ name: 'work', mountPath: '/work' }, { name: 'cfg', mountPath: '/etc/cfg', readOnly: true }, { name: 'info', mountPath: '/etc/info' }],
    }],
  });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/wired', '--timeout=60s']);
  const p = await podJson('wired');
  assert.equal(p.status.initContainerStatuses[0].state.terminated.reason, 'Completed');
  const run = async (cmd: string) => (await c.kubectl(['exec', 'wired', '--', '/bin/sh', '-c', cmd])).stdout;
  const out = await run('cat /work/state; echo "$GREETING|$POD|$CFG_color"; cat /etc/cfg/color; echo; id -u; cat /etc/info/labels; echo; grep nameserver /etc/resolv.conf');
  assert.match(out, /^prepared\nhi there\|wired\|blue\nblue\n65534\n/);
  assert.match(out, /nameserver 10\.43\.0\.10/);
});

test('containers of a pod share its IPC and UTS namespaces (hostname set once); hostIPC uses the host\'s', { skip: !canRun && 'needs root' }, async () => {
  // POSIX message queues live in the IPC namespace (each container mounts its own mqueue view of it)
  await applyPod('shared', {
    hostname: 'shared-host',
    containers: [
      { name: 'a', image: IMAGE, command: ['/bin/sh', '-c', ': > /dev/mqueue/from-a; sleep 3600'] },
      { name: 'b', image: IMAGE, command: ['/bin/sleep', '3600'] },
    ],
  });
  await applyPod('hostipc', { hostIPC: true, containers: [{ name: 'main', image: IMAGE, command: ['/bin/sleep', '3600'] }] });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/shared', 'pod/hostipc', '--timeout=60s']);
  const probe = async (pod: string, ctr: string) => (await c.kubectl(['exec', pod, '-c', ctr, '--', '/bin/sh', '-c', 'readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname; ls /dev/mqueue'])).stdout.split('\n');
  const [ipcA, utsA, hostA] = await probe('shared', 'a');
  const [ipcB, utsB, hostB, ...queues] = await probe('shared', 'b');
  assert.match(ipcA!, /^ipc:\[\d+\]$/);
  assert.equal(ipcB, ipcA, 'one IPC namespace for both containers');
  assert.equal(utsB, utsA, 'one UTS namespace for both containers');
  assert.deepEqual([hostA, hostB], ['shared-host', 'shared-host']);
  assert.ok(queues.includes('from-a'), `b sees a's message queue: ${queues.join(' ')}`);
  assert.notEqual(ipcA, readlinkSync('/proc/self/ns/ipc'), 'not the host\'s IPC namespace');
  assert.notEqual(utsA, readlinkSync('/proc/self/ns/uts'));
  const [ipcH] = await probe('hostipc', 'main');
  assert.equal(ipcH, readlinkSync('/proc/self/ns/ipc'), 'hostIPC: the host\'s IPC namespace');
  // the namespace files go with the pod
  const uid = (await podJson('shared')).metadata.uid as string;
  const nsDir = join(agentCfg.runRoot!, 'pods', uid);
  assert.ok(existsSync(join(nsDir, 'ipc')) && existsSync(join(nsDir, 'uts')));
  await c.kubectl(['delete', 'pod', 'shared', 'hostipc', '--wait=true', '--timeout=30s']);
  await poll('namespace files removed', async () => !existsSync(nsDir) && !existsSync(`/run/netns/kyb-${uid}`));
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(nsDir), 'nothing of the pod stays mounted');
});

test('postStart and preStop hooks run; deletion is graceful', { skip: !canRun && 'needs root' }, async () => {
  const hostDir = join(c.dir, 'hooks');
  await applyPod('hooked', {
    terminationGracePeriodSeconds: 10,
    volumes: [{ name: 'host', hostPath: { path: hostDir, type: 'DirectoryOrCreate' } }],
    containers: [{
      name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'trap "echo term > /host/sigterm; exit 0" TERM; while :; do sleep 1; done'],
      volumeMounts: [{ name: 'host', mountPath: '/host' }],
      lifecycle: { postStart: { exec: { command: ['/bin/sh', '-c', 'echo started > /host/poststart'] } }, preStop: { exec: { command: ['/bin/sh', '-c', 'echo stopping > /host/prestop'] } } },
    }],
  });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/hooked', '--timeout=60s']);
  await poll('postStart', async () => existsSync(join(hostDir, 'poststart')));
  await c.kubectl(['delete', 'pod', 'hooked', '--wait=true', '--timeout=30s']);
  assert.equal(readFileSync(join(hostDir, 'prestop'), 'utf8'), 'stopping\n');
  assert.equal(readFileSync(join(hostDir, 'sigterm'), 'utf8'), 'term\n');
});

test('a killed container is restarted with a growing back-off', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('crasher', { containers: [{ name: 'main', image: IMAGE, command: ['/bin/sleep', '3600'] }] });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/crasher', '--timeout=60s']);
  const killMain = async (restarts: number) => {
    const p = await podJson('crasher');
    const id = p.status.containerStatuses[0].containerID.replace('runc://', '');
    const state = JSON.parse(execFileSync('runc', ['--root', join(agentCfg.runRoot!, 'runc'), 'state', id]).toString());
    process.kill(state.pid, 'SIGKILL');
    return poll(`restart ${restarts}`, async () => {
      const q = await podJson('crasher');
      const s = q.status.containerStatuses[0];
      return s.restartCount === restarts && s.state.running ? s : undefined;
    });
  };
  const s1 = await killMain(1);
  assert.equal(s1.lastState.terminated.exitCode, 137);
  assert.equal(s1.lastState.terminated.reason, 'Error');
  // the second restart waits out the back-off: the pod shows CrashLoopBackOff meanwhile
  const p = await podJson('crasher');
  const id = p.status.containerStatuses[0].containerID.replace('runc://', '');
  const state = JSON.parse(execFileSync('runc', ['--root', join(agentCfg.runRoot!, 'runc'), 'state', id]).toString());
  process.kill(state.pid, 'SIGKILL');
  const waiting = await poll('CrashLoopBackOff', async () => {
    const s = (await podJson('crasher')).status.containerStatuses[0];
    return s.state.waiting?.reason === 'CrashLoopBackOff' ? s : undefined;
  });
  assert.match(waiting.state.waiting.message, /back-off \d+s restarting failed container=main pod=crasher_default/);
  await poll('restart 2', async () => { const s = (await podJson('crasher')).status.containerStatuses[0]; return s.restartCount === 2 && s.state.running; });
  const events = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=crasher'])).stdout;
  assert.match(events, /BackOff/);
});

test('liveness failure restarts; readiness failure keeps the pod unready', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('unlive', {
    containers: [{
      name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 3600'],
      livenessProbe: { exec: { command: ['cat', '/tmp/ok'] }, periodSeconds: 1, failureThreshold: 1 },
    }],
  });
  await applyPod('unready', {
    containers: [{ name: 'main', image: IMAGE, command: ['/bin/sleep', '3600'], readinessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 1 } }],
  });
  await poll('liveness restart', async () => (await podJson('unlive')).status.containerStatuses?.[0]?.restartCount >= 1);
  const ev = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=unlive'])).stdout;
  assert.match(ev, /Liveness probe failed/);
  const u = await poll('unready running', async () => { const p = await podJson('unready'); return p.status.phase === 'Running' ? p : undefined; });
  await new Promise((r) => setTimeout(r, 2500)); // several probe periods: it must stay unready
  const u2 = await podJson('unready');
  assert.equal(u2.status.conditions.find((x: any) => x.type === 'Ready').status, 'False');
  assert.equal(u2.status.containerStatuses[0].ready, false);
  void u;
});

test('exceeding the memory limit is reported as OOMKilled', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('hog', {
    restartPolicy: 'Never',
    containers: [{ name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo done'], resources: { limits: { memory: '16Mi' } } }],
  });
  const p = await poll('OOMKilled', async () => { const q = await podJson('hog'); return q.status.phase === 'Failed' ? q : undefined; });
  assert.equal(p.status.containerStatuses[0].state.terminated.reason, 'OOMKilled');
  assert.equal(p.status.containerStatuses[0].state.terminated.exitCode, 137);
});

test('a missing ConfigMap keeps the pod ContainerCreating with FailedMount; once it exists the pod runs with it', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('latecfg', {
    volumes: [{ name: 'cfg', configMap: { name: 'late-settings' } }],
    containers: [{ name: 'main', image: IMAGE, command: ['/bin/sh', '-c', 'cat /etc/cfg/mode; sleep 3600'], volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }] }],
  });
  let events = '';
  await poll('FailedMount event', async () => {
    events = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=latecfg'])).stdout;
    return /FailedMount.*configmap "late-settings" not found/.test(events);
  }, 30_000).catch((e: Error) => { throw new Error(`${e.message}; events: ${events}`); });
  const p = await podJson('latecfg');
  assert.equal(p.status.phase, 'Pending');
  assert.equal(p.status.containerStatuses?.[0]?.state?.waiting?.reason ?? 'ContainerCreating', 'ContainerCreating');
  await c.kubectl(['create', 'configmap', 'late-settings', '--from-literal=mode=late']);
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/latecfg', '--timeout=60s']);
  await poll('the container printed the ConfigMap', async () => (await c.kubectl(['logs', 'latecfg'])).stdout === 'late');
  assert.equal((await podJson('latecfg')).status.containerStatuses[0].restartCount, 0);
});

test('a missing image goes to ImagePullBackOff with events', { skip: !canRun && 'needs root' }, async () => {
  await applyPod('noimage', { containers: [{ name: 'main', image: 'kyb.local/does-not-exist:v1', imagePullPolicy: 'Never' }] });
  await poll('ErrImageNeverPull', async () => (await podJson('noimage')).status.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImageNeverPull');
  await applyPod('badpull', { containers: [{ name: 'main', image: '127.0.0.1:1/nothing:v1' }] });
  await poll('ImagePullBackOff', async () => (await podJson('badpull')).status.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff');
  const ev = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=badpull'])).stdout;
  assert.match(ev, /Failed to pull image "127\.0\.0\.1:1\/nothing:v1"/);
});

test('pull from a local registry with basic auth and an imagePullSecret', { skip: !canRun && 'needs root' }, async () => {
  const reg = await startRegistry({ auth: 'htpasswd', users: { puller: 's3cret' } });
  try {
    const img = makeImage({ layers: [await busyboxRootfs({ files: { '/www/index.html': 'from the registry\n' } })], cmd: ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'] });
    await reg.pushImage('e2e/web', 'v1', img);
    const image = `${reg.host}/e2e/web:v1`;
    await c.kubectl(['create', 'secret', 'docker-registry', 'regcred', `--docker-server=${reg.host}`, '--docker-username=puller', '--docker-password=s3cret']);
    await applyPod('nosecret', { containers: [{ name: 'main', image }] });
    await applyPod('pulled', { imagePullSecrets: [{ name: 'regcred' }], containers: [{ name: 'main', image }] });
    await c.kubectl(['wait', '--for=condition=Ready', 'pod/pulled', '--timeout=60s']);
    const p = await podJson('pulled');
    assert.equal(await (await fetch(`http://${p.status.podIP}:8080/`)).text(), 'from the registry\n');
    assert.equal(p.status.containerStatuses[0].imageID, `${reg.host}/e2e/web@${img.manifestDigest}`);
    await poll('no secret: pull refused', async () => /ErrImagePull|ImagePullBackOff/.test((await podJson('nosecret')).status.containerStatuses?.[0]?.state?.waiting?.reason ?? ''));
    const ev = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=nosecret'])).stdout;
    assert.match(ev, /Failed to pull image/);
  } finally {
    await c.kubectl(['delete', 'pod', 'nosecret', 'pulled', '--wait=false'], { allowFail: true });
    await reg.stop();
  }
});

test('a restarted agent finds its containers and does not restart them', { skip: !canRun && 'needs root' }, async () => {
  const before = JSON.parse((await c.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout).items
    .map((p: any) => [p.metadata.name, p.status.containerStatuses[0].containerID, p.status.containerStatuses[0].restartCount]).sort();
  await agent.stop();
  agent = await startAgent(agentCfg);
  // give the new agent a few resyncs, then nothing may have changed
  await poll('node heartbeat', async () => {
    const l = JSON.parse((await c.kubectl(['get', 'lease', '-n', 'kube-node-lease', `e2e-${suffix}`, '-o', 'json'])).stdout);
    return Date.now() - Date.parse(l.spec.renewTime) < 3000;
  });
  await new Promise((r) => setTimeout(r, 3000));
  const afterIds = JSON.parse((await c.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout).items
    .map((p: any) => [p.metadata.name, p.status.containerStatuses[0].containerID, p.status.containerStatuses[0].restartCount]).sort();
  assert.deepEqual(afterIds, before);
  for (const p of JSON.parse((await c.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout).items) {
    const res = await fetch(`http://${p.status.podIP}:8080/`);
    assert.equal(res.status, 200);
  }
});

test('deleting pods stops their containers and frees their network', { skip: !canRun && 'needs root' }, async () => {
  await c.kubectl(['delete', 'deployment', 'web', '--wait=true']);
  await c.kubectl(['delete', 'pods', '--all', '--wait=true', '--timeout=60s']);
  await poll('no containers', async () => agent.agent.runtime.list().length === 0);
  const left = readdirSync('/run/netns').filter((n) => n.startsWith('kyb-'));
  const uids = new Set(left.map((n) => n.slice(4)));
  assert.equal([...uids].filter((u) => agent.agent.pods.knownPodUIDs().has(u)).length, 0);
});
