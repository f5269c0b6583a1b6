// Real runc + conmon: a container's output lands in a CRI log, its exit code and an OOM kill are
// reported after it ends, and a container survives the Runtime object that started it (an agent
// restart). Needs root, runc, conmon and busybox-static (installed by .ci/run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Runtime, type ContainerMeta, removeCgroupParent } from './runtime.js';
import { buildOciSpec } from './oci-spec.js';
import { busyboxLayer, runtimeHarness } from './runc-exec.fixture.js';

const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox') && (() => {
  try { execFileSync('runc', ['--version']); execFileSync('conmon', ['--version']); return true; } catch { return false; }
})();


test('runc + conmon: logs, exit codes, OOM, survival across Runtime instances', { skip: !canRun && 'needs root, runc, conmon, busybox' }, async (t) => {
  const { dir, netns, cgroupParent, rt } = runtimeHarness(t, { dir: 'kyb-rt', netns: 'kybrt', cgroup: 'kyb-rt' });
  const layer = busyboxLayer(dir);
  const pod = { metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { containers: [] } };
  const mk = async (name: string, args: string[], limits?: Record<string, string>) => {
    const id = rt.newId();
    const meta: ContainerMeta = {
      id, podUID: 'u1', podNamespace: 'default', podName: 'p', containerName: name, attempt: 0, init: false,
      imageRef: 'test', imageId: 'sha256:x', logPath: join(dir, 'logs', `${name}.log`), cgroupsPath: `${cgroupParent}/podu1/${id}`,
      createdAt: new Date().toISOString(), specHash: 'h',
    };
    const spec = buildOciSpec({
      pod, container: { name, image: 'test', resources: { limits } }, rootfs: '', args, env: ['PATH=/bin'], cwd: '/',
      user: { uid: 0, gid: 0 }, netnsPath: `/run/netns/${netns}`, cgroupsPath: meta.cgroupsPath, binds: [],
    });
    await rt.create(meta, spec, [layer]);
    await rt.start(id);
    return id;
  };
  // exits seen so far, and waiters for the others (an exit may arrive before anyone waits for it)
  const seen = new Set<string>();
  const exited = new Map<string, () => void>();
  const waitExit = (id: string) => new Promise<void>((resolve) => { if (seen.has(id)) resolve(); else exited.set(id, resolve); });
  rt.watchExits((id) => { seen.add(id); exited.get(id)?.(); });

  const a = await mk('a', ['/bin/sh', '-c', 'echo hello; echo oops >&2; exit 3']);
  const aDone = waitExit(a);
  await aDone;
  const ia = await rt.info(a);
  assert.equal(ia?.state, 'exited');
  assert.equal(ia?.exit?.exitCode, 3);
  assert.equal(ia?.exit?.oomKilled, false);
  const log = readFileSync(join(dir, 'logs', 'a.log'), 'utf8');
  assert.match(log, /^\S+ stdout F hello$/m);
  assert.match(log, /^\S+ stderr F oops$/m);

  const b = await mk('b', ['/bin/sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'], { memory: '16Mi' });
  await waitExit(b);
  const ib = await rt.info(b);
  assert.equal(ib?.exit?.exitCode, 137);
  assert.equal(ib?.exit?.oomKilled, true);

  // a long-running container outlives the Runtime that made it; a new Runtime finds it running
  const c = await mk('c', ['/bin/sleep', '300']);
  rt.close();
  const rt2 = new Runtime({ runRoot: join(dir, 'run'), stateDir: join(dir, 'containers') });
  const ic = await rt2.info(c);
  assert.equal(ic?.state, 'running');
  assert.ok(ic?.pid && ic.pid > 0);
  const r = await rt2.exec(c, ['/bin/sh', '-c', 'echo in-container; exit 4'], 10_000);
  assert.equal(r.exitCode, 4);
  assert.match(r.output, /in-container/);
  const cDone = new Promise<void>((resolve) => { rt2.watchExits((id) => { if (id === c) resolve(); }); });
  await rt2.kill(c, 'SIGKILL');
  await cDone;
  assert.equal((await rt2.info(c))?.exit?.exitCode, 137);
  rt2.close();
});

test('rootfs copy fallback: the layers are copied (whiteouts and opaque directories applied), not mounted, and removed with the container', { skip: !canRun && 'needs root, runc, conmon, busybox' }, async (t) => {
  const { applyWhiteouts } = await import('../images/unpack.js');
  const { writeFileSync } = await import('node:fs');
  const { dir, netns, cgroupParent, rt } = runtimeHarness(t, { dir: 'kyb-rtcopy', netns: 'kybrc', cgroup: 'kyb-rtcopy' }, { rootfs: 'copy' });
  // layer 1: busybox, /data/{keep,gone}, /opq/old; layer 2 deletes /data/gone, makes /opq opaque, adds /opq/new
  const l1 = busyboxLayer(dir);
  for (const d of ['data', 'opq']) mkdirSync(join(l1, d));
  writeFileSync(join(l1, 'data/keep'), 'kept\n');
  writeFileSync(join(l1, 'data/gone'), 'deleted above\n');
  writeFileSync(join(l1, 'opq/old'), 'hidden above\n');
  const l2 = join(dir, 'layer2');
  for (const d of ['data', 'opq']) mkdirSync(join(l2, d), { recursive: true });
  writeFileSync(join(l2, 'data/.wh.gone'), '');
  writeFileSync(join(l2, 'opq/.wh..wh..opq'), '');
  writeFileSync(join(l2, 'opq/new'), 'new\n');
  assert.deepEqual(await applyWhiteouts(l2), { whiteouts: 1, opaque: 1 });
  const id = rt.newId();
  const meta: ContainerMeta = {
    id, podUID: 'u2', podNamespace: 'default', podName: 'p', containerName: 'copy', attempt: 0, init: false,
    imageRef: 'test', imageId: 'sha256:x', logPath: join(dir, 'logs', 'copy.log'), cgroupsPath: `${cgroupParent}/podu2/${id}`,
    createdAt: new Date().toISOString(), specHash: 'h',
  };
  const spec = buildOciSpec({
    pod: { metadata: { name: 'p', namespace: 'default', uid: 'u2' }, spec: { containers: [] } },
    container: { name: 'copy', image: 'test' }, rootfs: '', args: ['/bin/sh', '-c', 'ls /data /opq; cat /data/keep; echo written > /data/new; sleep 300'],
    env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 }, netnsPath: `/run/netns/${netns}`, cgroupsPath: meta.cgroupsPath, binds: [],
  });
  await rt.create(meta, spec, [l1, l2]);
  await rt.start(id);
  const rootfs = join(dir, 'containers', id, 'rootfs');
  const log = join(dir, 'logs', 'copy.log');
  // the script writes /data/new after printing 'kept': wait for both (deadline poll)
  for (let i = 0; i < 100 && !(existsSync(log) && readFileSync(log, 'utf8').includes('kept') && existsSync(join(rootfs, 'data/new')) && readFileSync(join(rootfs, 'data/new'), 'utf8') === 'written\n'); i++) await new Promise((r) => setTimeout(r, 50));
  const out = readFileSync(log, 'utf8').split('\n').map((l) => l.split(' ').slice(3).join(' ')).filter(Boolean);
  assert.deepEqual(out, ['/data:', 'keep', '/opq:', 'new', 'kept']);
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === rootfs), 'the rootfs is not a mount');
  assert.equal(readFileSync(join(rootfs, 'data/new'), 'utf8'), 'written\n', 'the container writes into its own copy');
  assert.ok(!existsSync(join(l1, 'data/new')), 'the image layer is untouched');
  await rt.remove(id);
  assert.ok(!existsSync(join(dir, 'containers', id)), 'the copy is gone with the container');
});
