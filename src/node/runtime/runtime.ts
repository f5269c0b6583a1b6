// Containers through runc, each watched by its own conmon (runtime-notes §5e, §8.2).
//
// Why conmon: Node cannot be a subreaper, so if the agent were the parent of a container's init its
// exit code and stdio would die with the agent. conmon double-forks, becomes the container's
// subreaper, writes CRI-format logs (`-l k8s-file:`) and, when the container exits, its exit code to
// `<runRoot>/exits/<id>`. So containers, logs and exit codes survive an agent restart; the agent finds
// its containers again from the metadata it keeps on disk (`<stateDir>/<id>/meta.json`) and runc's state.
//
// create:  overlay mount of the image layers (+ a per-container upper dir) at <stateDir>/<id>/rootfs
//          (where the mount fails, or with rootfs: 'copy', a copy of the layers there instead),
//          config.json, conmon (sync pipe → pid of `runc create`)
// start:   what `runc start` does, without a runc process: read runc's exec FIFO to EOF and remove
//          it (startByExecFifo); `runc start` itself only when that cannot be done
// exit:    fs.watch on the exit dir → finalize(): exit code, OOM kill count from the memory cgroup (read
//          before `runc delete`, which removes the cgroup), `exit.json`, `runc delete`, unmount
// Short-lived tools (mount, umount, runc start/state/kill/delete) are forked by the spawn helper
// (network/exec.ts runFast), not by the agent process, whose fork() is slow; so is conmon, its sync
// pipe then a FIFO in the bundle (spawned directly, with a pipe, where the helper cannot be used),
// made ahead with the root filesystem when the pod manager prepares one, and no `env`/`timeout`
// process in front of conmon.
// remove:  finalize if needed, then the metadata and the container's files (the log stays until the pod
//          is cleaned up, for `kubectl logs --previous`).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, createReadStream, existsSync, mkdirSync, openSync, rmdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync, renameSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import type { OciSpec } from './oci-spec.js';
import { findBinary, runFast, runFastWithFd3, spawnHelperAvailable } from '../network/exec.js';
import { copyLayers } from '../images/layer-copy.js';
import { conmonStdioArgs } from './attach.js';

/** Container IDs are 64 hex digits (newId). */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

export interface RuntimeOptions {
  runc?: string;
  conmon?: string;
  /** runc's state root (tmpfs-backed in production: /run/kybernetes/runc); exits/ and sockets/ live beside it */
  runRoot: string;
  /** per-container metadata, bundles and rootfs mounts */
  stateDir: string;
  /** conmon --log-size-max in bytes; default 10 MiB */
  logSizeMax?: number;
  /**
   * How a container's root filesystem is made: 'overlay' (default) mounts the image layers with
   * overlayfs and falls back to a copy when the mount fails; 'copy' always copies the layers into a
   * directory of the container's own (slower, more disk; for hosts without overlayfs, and tests).
   */
  rootfs?: 'overlay' | 'copy';
}

export interface ContainerMeta {
  id: string;
  podUID: string;
  podNamespace: string;
  podName: string;
  containerName: string;
  /** 0 for the first instance of this container in this pod, then +1 per restart */
  attempt: number;
  init: boolean;
  imageRef: string;
  imageId: string;
  logPath: string;
  cgroupsPath: string;
  createdAt: string;
  startedAt?: string;
  /** a hash of the container spec it was made from; a change means the container must be replaced */
  specHash: string;
  /** the container spec's stdin / stdinOnce / tty: conmon's -i / --leave-stdin-open / -t (kubectl attach) */
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
}

export interface ExitInfo { exitCode: number; finishedAt: string; oomKilled: boolean }

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerInfo { meta: ContainerMeta; state: ContainerState; pid?: number; exit?: ExitInfo }

/** Runs a host tool (through the spawn helper: the agent process is not forked); rejects unless it exits 0. */
async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  const r = await runFast(findBinary(cmd) ?? cmd, args, { timeoutMs, maxOutput: 16 * 1024 * 1024 });
  if (r.code !== 0) {
    const msg = r.stderr.trim() || r.stdout.trim() || (r.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${r.code ?? r.signal}`);
    throw Object.assign(new Error(`${cmd} ${args.slice(0, 4).join(' ')}: ${msg}`), { stderr: r.stderr });
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Which cgroup hierarchy layout the host has. */
export function cgroupMode(): 'v1' | 'hybrid' | 'v2' {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'v2';
  return existsSync('/sys/fs/cgroup/unified') ? 'hybrid' : 'v1';
}

/** The memory cgroup's OOM kill counter of a container cgroup (v1 memory.oom_control, v2 memory.events). */
export function oomKillCount(cgroupsPath: string): number {
  const files = cgroupMode() === 'v2'
    ? [join('/sys/fs/cgroup', cgroupsPath, 'memory.events')]
    : [join('/sys/fs/cgroup/memory', cgroupsPath, 'memory.oom_control')];
  for (const f of files) {
    try {
      const m = /(?:^|\n)oom_kill (\d+)/.exec(readFileSync(f, 'utf8'));
      if (m) return Number(m[1]);
    } catch { /* cgroup gone */ }
  }
  return 0;
}

export class Runtime {
  readonly runc: string;
  readonly conmon: string;
  readonly runRoot: string;
  readonly runcRoot: string;
  readonly exitDir: string;
  private readonly sockDir: string;
  private readonly stateDir: string;
  private readonly logSizeMax: number;
  private rootfsMode: 'overlay' | 'copy';
  private watcher?: FSWatcher;
  private readonly finalizing = new Map<string, Promise<ExitInfo | undefined>>();
  /** root filesystems made ahead of create() (prepareRootfs) */
  private readonly prepared = new Map<string, { layers: string; done: Promise<void> }>();

  constructor(opts: RuntimeOptions) {
    // conmon wants an absolute path for the runtime
    this.runc = findBinary(opts.runc ?? 'runc') ?? opts.runc ?? 'runc';
    this.conmon = findBinary(opts.conmon ?? 'conmon') ?? opts.conmon ?? 'conmon';
    this.runRoot = opts.runRoot;
    this.runcRoot = join(opts.runRoot, 'runc');
    this.exitDir = join(opts.runRoot, 'exits');
    this.sockDir = join(opts.runRoot, 'sockets');
    this.stateDir = opts.stateDir;
    this.logSizeMax = opts.logSizeMax ?? 10 * 1024 * 1024;
    this.rootfsMode = opts.rootfs ?? 'overlay';
    for (const d of [this.runcRoot, this.exitDir, this.sockDir, this.stateDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  private dir(id: string): string { return join(this.stateDir, id); }

  /** Calls onExit(id) when a container's exit file appears (and once for every exit file already there). */
  watchExits(onExit: (id: string) => void): () => void {
    this.watcher?.close();
    // conmon writes `<id>.XXXXXX` and renames it to `<id>`: only the final names count
    this.watcher = watch(this.exitDir, (_ev, name) => { if (name && CONTAINER_ID.test(String(name))) onExit(String(name)); });
    for (const name of readdirSync(this.exitDir)) if (CONTAINER_ID.test(name)) onExit(name);
    return () => { this.watcher?.close(); this.watcher = undefined; };
  }

  newId(): string { return randomBytes(32).toString('hex'); }

  /** Every container this runtime knows (from its metadata directory). */
  list(): ContainerMeta[] {
    const out: ContainerMeta[] = [];
    let names: string[] = [];
    try { names = readdirSync(this.stateDir); } catch { return out; }
    for (const id of names) {
      try { out.push(JSON.parse(readFileSync(join(this.dir(id), 'meta.json'), 'utf8')) as ContainerMeta); } catch { /* half-made: removed by cleanup */ }
    }
    return out;
  }

  meta(id: string): ContainerMeta | undefined {
    try { return JSON.parse(readFileSync(join(this.dir(id), 'meta.json'), 'utf8')) as ContainerMeta; } catch { return undefined; }
  }

  private writeJson(path: string, v: unknown): void {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(v));
    renameSync(tmp, path);
  }

  /**
   * Creates a container (state `created`): rootfs overlay over layerDirs (lowest first), config.json
   * from spec (its root.path is replaced), and a conmon that runs `runc create`. Returns the init pid.
   */
  async create(meta: ContainerMeta, spec: OciSpec, layerDirs: string[]): Promise<number> {
    const d = this.dir(meta.id);
    const rootfs = join(d, 'rootfs');
    const prepared = this.prepared.get(meta.id);
    this.prepared.delete(meta.id);
    mkdirSync(join(meta.logPath, '..'), { recursive: true });
    mkdirSync(d, { recursive: true });
    this.writeJson(join(d, 'meta.json'), meta);
    try {
      if (prepared && prepared.layers === layerDirs.join(':')) await prepared.done;
      else {
        if (prepared) { await prepared.done.catch(() => undefined); await this.unmount(meta.id); }
        await this.makeRootfs(d, layerDirs);
      }
      const full: OciSpec = { ...spec, root: { ...spec.root, path: rootfs } };
      writeFileSync(join(d, 'config.json'), JSON.stringify(full));
      return await this.startConmon(meta, d);
    } catch (e) {
      await this.remove(meta.id).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Makes the root filesystem of a container that is about to be created (create() with the same id
   * and layers then skips that step), so that the pod manager can do it while other pod start steps
   * run. Failures surface in create(). A prepared container that is never created must be
   * removed with remove(id); removeOrphans() finds those an agent crash left behind.
   */
  prepareRootfs(id: string, layerDirs: string[]): void {
    if (!CONTAINER_ID.test(id)) throw new Error(`invalid container id ${JSON.stringify(id)}`);
    // conmon's sync FIFO too (one process less when create() starts conmon)
    mkdirSync(this.dir(id), { recursive: true });
    const fifo = this.makeSyncFifo(this.dir(id));
    const done = Promise.all([this.makeRootfs(this.dir(id), layerDirs), fifo]).then(() => undefined);
    done.catch(() => undefined); // create() reports it
    this.prepared.set(id, { layers: layerDirs.join(':'), done });
  }

  /** <dir>/rootfs: an overlay mount of the layers, or (see RuntimeOptions.rootfs) a copy of them. */
  private async makeRootfs(d: string, layerDirs: string[]): Promise<void> {
    const rootfs = join(d, 'rootfs');
    mkdirSync(join(d, 'upper'), { recursive: true });
    mkdirSync(join(d, 'work'), { recursive: true });
    mkdirSync(rootfs, { recursive: true });
    if (this.rootfsMode === 'overlay') {
      try {
        const lower = [...layerDirs].reverse().join(':');
        await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(d, 'upper')},workdir=${join(d, 'work')}`, rootfs]);
        return;
      } catch (e) {
        // no overlayfs in this kernel: every later container goes straight to the copy
        if (/unknown filesystem type/i.test((e as Error).message)) this.rootfsMode = 'copy';
        process.stderr.write(`kyb runtime: overlay mount for ${rootfs} failed, copying the image layers instead: ${(e as Error).message}\n`);
      }
    }
    await copyLayers(layerDirs, rootfs);
    writeFileSync(join(d, 'rootfs-copied'), '');
  }

  private async startConmon(meta: ContainerMeta, bundle: string): Promise<number> {
    const args = [
      '--api-version', '1', '-c', meta.id, '-u', meta.id, '-r', this.runc, '-b', bundle,
      '-p', join(bundle, 'pidfile'), '-n', `${meta.podNamespace}_${meta.podName}_${meta.containerName}_${meta.attempt}`,
      '--exit-dir', this.exitDir, '-l', `k8s-file:${meta.logPath}`, '--log-size-max', String(this.logSizeMax),
      '--socket-dir-path', this.sockDir, '--conmon-pidfile', join(bundle, 'conmon.pid'),
      '--runtime-arg', '--root', '--runtime-arg', this.runcRoot, '--log-level', 'error',
      ...conmonStdioArgs(meta), // stdin pipe / tty for kubectl attach (attach.ts)
    ];
    // through the spawn helper (the agent is not forked): the sync pipe is a FIFO in the bundle
    if (this.conmon.includes('/') && spawnHelperAvailable()) {
      const fifo = join(bundle, 'sync.fifo');
      if (isFifo(fifo) || await this.makeSyncFifo(bundle)) return this.startConmonViaHelper(args, bundle, fifo);
    }
    return this.startConmonDirect(args, bundle);
  }

  /** <bundle>/sync.fifo for conmon's sync pipe (made ahead by prepareRootfs); false when it cannot be made */
  private async makeSyncFifo(bundle: string): Promise<boolean> {
    const mkfifo = findBinary('mkfifo');
    if (!mkfifo || !spawnHelperAvailable()) return false;
    const mk = await runFast(mkfifo, ['-m', '600', join(bundle, 'sync.fifo')], { timeoutMs: 10_000 }).catch(() => undefined);
    return mk?.code === 0;
  }

  /** conmon forked by the spawn helper, its sync pipe (fd 3) a FIFO: the first line is `{"data": <pid>}` or an error. */
  private startConmonViaHelper(args: string[], bundle: string, fifo: string): Promise<number> {
    return new Promise((resolve, reject) => {
      let done = false;
      const sync = createReadStream(fifo);
      // a reader still waiting in open() (nobody opened the FIFO for writing) is released by a writer that closes at once
      const release = () => { try { closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)); } catch { /* no reader waiting */ } };
      const finish = (err: Error | null, pid?: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) release();
        sync.destroy();
        rmSync(fifo, { force: true });
        if (err) reject(err); else resolve(pid!);
      };
      const timer = setTimeout(() => finish(new Error('conmon: no answer from runc create within 60s')), 60_000);
      const buffered = readConmonSync(sync, finish);
      sync.on('end', () => finish(new Error(`conmon closed its sync pipe without an answer${buffered() ? `: ${buffered().trim()}` : ''}`)));
      sync.on('error', (e) => finish(e));
      // (no `env` and no `timeout` process in front of it: the first conmon process exits after forking, and the timer above is the deadline)
      runFastWithFd3(this.conmon, args, { addEnv: { _OCI_SYNCPIPE: '3' }, cwd: bundle, fd3: fifo, timeoutMs: 60_000, noTimeout: true }).then((r) => {
        if (!r) { finish(new Error('conmon: the spawn helper is gone')); return; }
        // the first conmon process exits after forking; an early non-zero exit is a failure
        if (r.code !== 0) setTimeout(() => finish(new Error(`conmon exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`)), 50);
      }, (e: Error) => finish(e));
    });
  }

  private startConmonDirect(args: string[], bundle: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.conmon, args, {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true, cwd: bundle,
        env: { ...process.env, _OCI_SYNCPIPE: '3' },
      });
      let stderr = '';
      let done = false;
      const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
      const finish = (err: Error | null, pid?: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sync.destroy();
        child.stderr?.destroy();
        child.unref();
        if (err) reject(err); else resolve(pid!);
      };
      const timer = setTimeout(() => finish(new Error(`conmon: no answer from runc create within 60s ${stderr.trim()}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      readConmonSync(sync, finish);
      sync.on('error', () => undefined);
      child.on('error', (e) => finish(e));
      child.on('exit', (code) => {
        // the first conmon process exits after forking; an early non-zero exit is a failure
        if (code && code !== 0) setTimeout(() => finish(new Error(`conmon exited with ${code}: ${stderr.trim()}`)), 50);
      });
    });
  }

  async start(id: string): Promise<void> {
    if (!(await this.startByExecFifo(id))) await run(this.runc, ['--root', this.runcRoot, 'start', id]);
    const meta = this.meta(id);
    if (meta) { meta.startedAt = new Date().toISOString(); this.writeJson(join(this.dir(id), 'meta.json'), meta); }
  }

  /**
   * What `runc start` does for a created container, without starting a runc process (10–50 ms on
   * the pod start path here): runc's init waits, before it execs the container's process, until
   * someone opens `<runc root>/<id>/exec.fifo` for reading; it then writes one byte and the write
   * end closes with its exec. runc start reads that to EOF and removes the FIFO (from then on runc
   * reports the container as running); this does the same. Resolves false (the caller then runs
   * `runc start`, which also gives runc's own error) when there is no FIFO, nothing was written
   * (the init died), or nothing happened within 10 s.
   */
  private async startByExecFifo(id: string): Promise<boolean> {
    const fifo = join(this.runcRoot, id, 'exec.fifo');
    let fd: number;
    try {
      if (!statSync(fifo).isFIFO()) return false;
      // non-blocking: open() does not wait for a writer; the pipe handle waits for data / EOF on the event loop
      fd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch { return false; }
    let initPid = 0;
    try { initPid = Number.parseInt(readFileSync(join(this.dir(id), 'pidfile'), 'utf8').trim(), 10) || 0; } catch { /* unknown */ }
    const got = await new Promise<boolean>((resolve) => {
      const sock = new Socket({ fd, readable: true, writable: false });
      let n = 0;
      let settled = false;
      const finish = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearInterval(watchInit);
        clearTimeout(timer);
        sock.destroy();
        resolve(ok);
      };
      // as runc start does: if the init is gone without ever opening its end, nobody will write
      const watchInit = setInterval(() => {
        if (!initPid) return;
        let gone = false;
        try { gone = / Z /.test(readFileSync(`/proc/${initPid}/stat`, 'utf8').replace(/^.*\)/, '')); } catch { gone = true; }
        if (gone) finish(n > 0);
      }, 100);
      const timer = setTimeout(() => finish(false), 10_000);
      sock.on('data', (b: Buffer) => { n += b.length; });
      sock.on('end', () => finish(n > 0));
      sock.on('error', () => finish(false));
    });
    if (!got) return false;
    rmSync(fifo, { force: true });
    return true;
  }

  /** runc's view: created | running | stopped (| paused), or undefined when runc does not know it. */
  async runcState(id: string): Promise<{ status: string; pid: number } | undefined> {
    try {
      const { stdout } = await run(this.runc, ['--root', this.runcRoot, 'state', id], 10_000);
      return JSON.parse(stdout) as { status: string; pid: number };
    } catch { return undefined; }
  }

  private exitFile(id: string): ExitInfo | undefined {
    try {
      const f = join(this.dir(id), 'exit.json');
      return JSON.parse(readFileSync(f, 'utf8')) as ExitInfo;
    } catch { return undefined; }
  }

  /**
   * Records how a container ended (once): exit code from conmon's exit file, OOM from the cgroup,
   * then `runc delete` and unmount. Safe to call repeatedly and concurrently.
   */
  finalize(id: string): Promise<ExitInfo | undefined> {
    const known = this.exitFile(id);
    if (known) return Promise.resolve(known);
    let p = this.finalizing.get(id);
    if (!p) {
      p = this.doFinalize(id).finally(() => this.finalizing.delete(id));
      this.finalizing.set(id, p);
    }
    return p;
  }

  private async doFinalize(id: string): Promise<ExitInfo | undefined> {
    const meta = this.meta(id);
    const ef = join(this.exitDir, id);
    if (!meta) { if (CONTAINER_ID.test(id)) rmSync(ef, { force: true }); return undefined; }
    let code: number | undefined;
    let finishedAt = new Date().toISOString();
    try {
      let txt = readFileSync(ef, 'utf8').trim();
      // the file can be seen before conmon has written its content
      for (let i = 0; txt === '' && i < 40; i++) { await new Promise((r) => setTimeout(r, 25)); txt = readFileSync(ef, 'utf8').trim(); }
      code = Number.parseInt(txt, 10);
      finishedAt = statSync(ef).mtime.toISOString();
    } catch {
      const st = await this.runcState(id);
      if (st && (st.status === 'running' || st.status === 'created' || st.status === 'paused')) return undefined; // still alive
      // stopped, but conmon (the subreaper) may not have written the exit file yet: wait for it
      if (this.conmonAlive(id)) return undefined;
      try { code = Number.parseInt(readFileSync(ef, 'utf8').trim(), 10); finishedAt = statSync(ef).mtime.toISOString(); } catch { /* none */ }
      code = code ?? 255; // runc lost it and conmon wrote nothing (e.g. host reboot): unknown exit
    }
    if (code === undefined || Number.isNaN(code)) code = 255;
    const oomKilled = oomKillCount(meta.cgroupsPath) > 0;
    const info: ExitInfo = { exitCode: code, finishedAt, oomKilled };
    this.writeJson(join(this.dir(id), 'exit.json'), info);
    await run(this.runc, ['--root', this.runcRoot, 'delete', '-f', id], 15_000).catch(() => undefined);
    await this.unmount(id);
    rmSync(ef, { force: true });
    return info;
  }

  /** Whether the container's conmon still runs (it writes the exit file just before it exits). */
  private conmonAlive(id: string): boolean {
    try {
      const pid = Number.parseInt(readFileSync(join(this.dir(id), 'conmon.pid'), 'utf8').trim(), 10);
      if (!pid) return false;
      process.kill(pid, 0);
      // a zombie or a reused pid is not our conmon
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id);
    } catch { return false; }
  }

  private async unmount(id: string): Promise<void> {
    const rootfs = join(this.dir(id), 'rootfs');
    if (isMounted(rootfs)) await run('umount', ['-l', rootfs]).catch(() => undefined);
    // a copied rootfs is a plain directory: removed with the rest
    for (const sub of ['upper', 'work', 'rootfs', 'rootfs-copied']) rmSync(join(this.dir(id), sub), { recursive: true, force: true });
  }

  async info(id: string): Promise<ContainerInfo | undefined> {
    const meta = this.meta(id);
    if (!meta) return undefined;
    const exit = this.exitFile(id);
    if (exit) return { meta, state: 'exited', exit };
    // fast path (no runc spawn): started, no exit file yet, and its init process is alive in its cgroup
    if (meta.startedAt && !existsSync(join(this.exitDir, id))) {
      try {
        const pid = Number.parseInt(readFileSync(join(this.dir(id), 'pidfile'), 'utf8').trim(), 10);
        if (pid > 0 && readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id)) return { meta, state: 'running', pid };
      } catch { /* gone: ask runc */ }
    }
    const st = await this.runcState(id);
    if (!st || st.status === 'stopped') {
      const e = await this.finalize(id);
      return e ? { meta, state: 'exited', exit: e } : { meta, state: 'unknown' };
    }
    return { meta, state: st.status === 'created' ? 'created' : 'running', pid: st.pid };
  }

  /** Sends a signal to the container's init (no error if it has already exited). */
  async kill(id: string, signal: 'SIGTERM' | 'SIGKILL' | string = 'SIGTERM'): Promise<void> {
    await run(this.runc, ['--root', this.runcRoot, 'kill', id, signal], 10_000).catch(() => undefined);
  }

  /** Removes a container entirely (killing it first if it still runs). The log file is kept. */
  async remove(id: string): Promise<void> {
    const prepared = this.prepared.get(id);
    if (prepared) { this.prepared.delete(id); await prepared.done.catch(() => undefined); }
    if (!this.meta(id)) {
      // prepared only (or half-made): nothing runc knows about
      await this.unmount(id);
      rmSync(join(this.exitDir, id), { force: true });
      rmSync(this.dir(id), { recursive: true, force: true });
      return;
    }
    const st = await this.runcState(id);
    if (st && st.status !== 'stopped') {
      await this.kill(id, 'SIGKILL');
      await run(this.runc, ['--root', this.runcRoot, 'delete', '-f', id], 15_000).catch(() => undefined);
    } else if (st) {
      await run(this.runc, ['--root', this.runcRoot, 'delete', '-f', id], 15_000).catch(() => undefined);
    }
    await this.unmount(id);
    rmSync(join(this.exitDir, id), { force: true });
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Removes container directories without metadata (root filesystems prepared by an agent that then stopped). */
  async removeOrphans(): Promise<void> {
    let names: string[] = [];
    try { names = readdirSync(this.stateDir); } catch { return; }
    for (const id of names) {
      if (!CONTAINER_ID.test(id) || this.prepared.has(id) || existsSync(join(this.dir(id), 'meta.json'))) continue;
      await this.unmount(id);
      rmSync(this.dir(id), { recursive: true, force: true });
    }
  }

  /** Runs a command in a running container, collecting its output (for exec probes and hooks). */
  exec(id: string, command: string[], timeoutMs: number): Promise<{ exitCode: number; output: string; timedOut: boolean }> {
    return new Promise((resolve) => {
      const child = spawn(this.runc, ['--root', this.runcRoot, 'exec', id, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let timedOut = false;
      const cap = (d: Buffer) => { if (out.length < 10240) out += d.toString(); };
      child.stdout.on('data', cap);
      child.stderr.on('data', cap);
      const t = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
      child.on('error', (e) => { clearTimeout(t); resolve({ exitCode: 126, output: e.message, timedOut: false }); });
      child.on('close', (code) => { clearTimeout(t); resolve({ exitCode: code ?? 137, output: out, timedOut }); });
    });
  }

  close(): void { this.watcher?.close(); }
}

function isFifo(path: string): boolean {
  try { return statSync(path).isFIFO(); } catch { return false; }
}

function isMounted(path: string): boolean {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[4] === path);
  } catch { return false; }
}

/**
 * conmon's answer on its sync pipe: one JSON line, `{"data": <pid>}` or `{"data": <negative>, "message": …}`.
 * conmon keeps the pipe open, so the first line decides; never wait for EOF. Returns what is buffered.
 */
function readConmonSync(sync: NodeJS.ReadableStream, finish: (err: Error | null, pid?: number) => void): () => string {
  let buf = '';
  sync.on('data', (d: Buffer | string) => {
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    try {
      const msg = JSON.parse(buf.slice(0, nl)) as { data: number; message?: string };
      if (msg.data > 0) finish(null, msg.data);
      else finish(new Error((msg.message ?? `runc create failed (${msg.data})`).trim()));
    } catch (e) { finish(e as Error); }
  });
  return () => buf;
}

/** The pod-level cgroup path segment for a pod UID (dashes are fine in cgroupfs names). */
export function podCgroupPath(parent: string, podUID: string, containerId: string): string {
  return `${parent.replace(/\/$/, '')}/pod${podUID}/${containerId}`;
}

/** Removes a pod's (now empty) cgroup directories in every hierarchy. */
export function removePodCgroups(parent: string, podUID: string): void {
  const rel = `${parent.replace(/^\//, '').replace(/\/$/, '')}/pod${podUID}`;
  const roots = cgroupMode() === 'v2' ? ['/sys/fs/cgroup'] : readdirSafe('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  for (const r of roots) {
    const p = join(r, rel);
    if (!existsSync(p)) continue;
    for (const child of readdirSafe(p)) {
      try { if (statSync(join(p, child)).isDirectory()) rmdirQuiet(join(p, child)); } catch { /* gone */ }
    }
    rmdirQuiet(p);
  }
}

/** Removes the agent's top-level cgroup parent (after every pod's is gone). */
export function removeCgroupParent(parent: string): void {
  const rel = parent.replace(/^\//, '').replace(/\/$/, '');
  if (!rel) return;
  const roots = cgroupMode() === 'v2' ? ['/sys/fs/cgroup'] : readdirSafe('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  for (const r of roots) {
    const p = join(r, rel);
    if (!existsSync(p)) continue;
    for (const pod of readdirSafe(p)) {
      const pp = join(p, pod);
      try { if (!statSync(pp).isDirectory()) continue; } catch { continue; }
      for (const c of readdirSafe(pp)) { try { if (statSync(join(pp, c)).isDirectory()) rmdirQuiet(join(pp, c)); } catch { /* gone */ } }
      rmdirQuiet(pp);
    }
    rmdirQuiet(p);
  }
}

function readdirSafe(p: string): string[] { try { return readdirSync(p); } catch { return []; } }
/** cgroupfs directories are removed with rmdir(2) (their files cannot be unlinked). */
function rmdirQuiet(p: string): void { try { rmdirSync(p); } catch { /* busy or gone */ } }
