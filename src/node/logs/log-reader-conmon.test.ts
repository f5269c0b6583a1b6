// Following a log that the real conmon writes and rotates (`--log-size-max`: conmon writes a new file
// and renames it over the path, discarding the old content). The follower must see every line, in
// order, without gaps or repeats, and end once the container has exited. Needs root, runc, conmon and
// busybox-static (installed by .ci/run); skipped otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Runtime, removeCgroupParent, type ContainerMeta } from '../runtime/runtime.js';
import { buildOciSpec } from '../runtime/oci-spec.js';
import { streamLog } from './log-reader.js';

const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox') && (() => {
  try { execFileSync('runc', ['--version']); execFileSync('conmon', ['--version']); return true; } catch { return false; }
})();

test('follow keeps up with conmon rotating the log, and ends when the container exits', { skip: !canRun && 'needs root, runc, conmon, busybox' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-logrot-'));
  const suffix = randomBytes(3).toString('hex');
  const netns = `kyblog-${suffix}`;
  const cgroupParent = `/kyb-logrot-${suffix}`;
  execFileSync('ip', ['netns', 'add', netns]);
  const rt = new Runtime({ runRoot: join(dir, 'run'), stateDir: join(dir, 'containers'), logSizeMax: 4096 });
  t.after(async () => {
    for (const m of rt.list()) await rt.remove(m.id).catch(() => {});
    rt.close();
    execFileSync('ip', ['netns', 'del', netns]);
    removeCgroupParent(cgroupParent);
    rmSync(dir, { recursive: true, force: true });
  });
  // a one-layer busybox root filesystem
  const layer = join(dir, 'layer');
  mkdirSync(join(layer, 'bin'), { recursive: true });
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(layer, d), { recursive: true });
  copyFileSync('/bin/busybox', join(layer, 'bin/busybox'));
  for (const a of ['sh', 'sleep', 'echo', 'seq']) symlinkSync('busybox', join(layer, 'bin', a));

  const id = rt.newId();
  const logPath = join(dir, 'logs', 'app.log');
  const meta: ContainerMeta = {
    id, podUID: 'u1', podNamespace: 'default', podName: 'p', containerName: 'app', attempt: 0, init: false,
    imageRef: 'test', imageId: 'sha256:x', logPath, cgroupsPath: `${cgroupParent}/podu1/${id}`,
    createdAt: new Date().toISOString(), specHash: 'h',
  };
  // ~60 bytes per entry: 400 lines are about six rotations of a 4 KiB file; a pause now and then
  const script = 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); [ $((i % 40)) -eq 0 ] && sleep 0.05; done; echo done';
  const spec = buildOciSpec({
    pod: { metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { containers: [] } },
    container: { name: 'app', image: 'test' }, rootfs: '', args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/',
    user: { uid: 0, gid: 0 }, netnsPath: `/run/netns/${netns}`, cgroupsPath: meta.cgroupsPath, binds: [],
  });
  let exited!: () => void;
  const exit = new Promise<void>((resolve) => { exited = resolve; });
  rt.watchExits((x) => { if (x === id) exited(); });
  await rt.create(meta, spec, [layer]);

  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => { text += d.toString(); });
  const following = streamLog({ path: logPath, exited: exit }, { follow: true }, out);
  await rt.start(id);
  await following;

  const lines = text.split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines, [...Array.from({ length: 400 }, (_, i) => `line ${i}`), 'done']);
  assert.ok(statSync(logPath).size <= 4096, 'conmon kept the file under --log-size-max');
});
