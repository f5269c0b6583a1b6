// Test fixture (used by the runc-exec and streaming tests): a running busybox container under a
// private `runc --root`, built from the host's /bin/busybox with `runc spec` and a few patches
// (terminal false, args sleep 300, read-only root). It keeps runc's default namespaces, so it has its
// own network namespace; loopback is brought up with nsenter so a server inside can listen on
// 127.0.0.1. stop() kills and deletes the container and removes every file it made.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Runtime, removeCgroupParent, type RuntimeOptions } from './runtime.js';

const run = promisify(execFile);

export interface TestContainer {
  root: string;
  id: string;
  bundle: string;
  /** host pid of the container's init */
  pid: number;
  stop(): Promise<void>;
}

/** Why the runc tests cannot run here, or null when they can. */
export function runcUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/bin/busybox')) return 'needs /bin/busybox (busybox-static)';
  if (spawnSync('runc', ['--version']).status !== 0) return 'needs runc';
  return null;
}

export async function startBusyboxContainer(opts: { files?: Record<string, string> } = {}): Promise<TestContainer> {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-runc-test-'));
  const root = join(dir, 'state');
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  const id = `kyb-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(root);
  for (const d of ['tmp', 'www', 'proc', 'dev', 'sys', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  for (const [p, text] of Object.entries(opts.files ?? {})) writeFileSync(join(rootfs, p), text);

  let started = false;
  const stop = async (): Promise<void> => {
    if (started) {
      await run('runc', ['--root', root, 'kill', id, 'KILL']).catch(() => {});
      await run('runc', ['--root', root, 'delete', '-f', id]).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('runc', ['spec'], { cwd: bundle });
    const cfgPath = join(bundle, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.process.terminal = false;
    cfg.process.args = ['/bin/sleep', '300'];
    cfg.process.env = ['PATH=/bin', 'HOME=/root'];
    cfg.root.readonly = false;
    cfg.hostname = 'busybox-test';
    writeFileSync(cfgPath, JSON.stringify(cfg));
    // stdio to /dev/null: with pipes, the container would hold them open until it exits
    await new Promise<void>((resolve, reject) => {
      const c = spawn('runc', ['--root', root, 'run', '-d', '--bundle', bundle, id], { stdio: 'ignore' });
      c.once('error', reject);
      c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runc run -d exited ${code}`))));
    });
    started = true;
    const state = JSON.parse((await run('runc', ['--root', root, 'state', id])).stdout) as { pid: number; status: string };
    if (state.status !== 'running') throw new Error(`container ${id} is ${state.status}`);
    await run('nsenter', ['-t', String(state.pid), '-n', 'ip', 'link', 'set', 'lo', 'up']);
    return { root, id, bundle, pid: state.pid, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A one-layer busybox root filesystem under dir/layer (the host's /bin/busybox and its applet links). */
export function busyboxLayer(dir: string): string {
  const l = join(dir, 'layer');
  mkdirSync(join(l, 'bin'), { recursive: true });
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(l, d), { recursive: true });
  copyFileSync('/bin/busybox', join(l, 'bin/busybox'));
  spawnSync('chmod', ['755', join(l, 'bin/busybox')]);
  for (const a of spawnSync('/bin/busybox', ['--list']).stdout.toString().trim().split('\n')) {
    if (a !== 'busybox') symlinkSync('busybox', join(l, 'bin', a));
  }
  return l;
}

/**
 * A Runtime for a test over a fresh temp dir, a network namespace and a cgroup parent of its own
 * (names from prefix and a random suffix); t.after removes every container, the namespace, the
 * cgroups and the dir.
 */
export function runtimeHarness(t: { after(fn: () => Promise<void>): void }, prefix: { dir: string; netns: string; cgroup: string }, opts: Partial<RuntimeOptions> = {}): { dir: string; netns: string; cgroupParent: string; rt: Runtime } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix.dir}-`));
  const suffix = randomBytes(3).toString('hex');
  const netns = `${prefix.netns}-${suffix}`;
  const cgroupParent = `/${prefix.cgroup}-${suffix}`;
  execFileSync('ip', ['netns', 'add', netns]);
  const rt = new Runtime({ runRoot: join(dir, 'run'), stateDir: join(dir, 'containers'), ...opts });
  t.after(async () => {
    for (const m of rt.list()) await rt.remove(m.id);
    rt.close();
    execFileSync('ip', ['netns', 'del', netns]);
    removeCgroupParent(cgroupParent);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, netns, cgroupParent, rt };
}
