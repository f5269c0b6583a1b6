// Small process helpers shared by the node's host-facing code (netns, CNI, preflight, host info):
// finding a binary the way a root shell would (PATH plus /usr/sbin and /sbin, which a non-login
// environment often lacks), and running a command with stdin, a timeout and captured output.
// Commands are always exec'd directly (no shell), so arguments need no quoting — except in
// runFast() (below), which hands hot-path commands to a small helper shell, quoting every word.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Directories searched after PATH: root tools (ip, iptables, runc) live in sbin on Debian. */
export const sbinDirs = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/** PATH for children that exec host tools themselves (CNI plugins call iptables, ip6tables, …). */
export function toolPath(path = process.env.PATH ?? ''): string {
  const dirs = [...path.split(':').filter(Boolean), ...sbinDirs];
  return [...new Set(dirs)].join(':');
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first executable named `name` in `dirs` (default: PATH, then the sbin directories), or
 * undefined. An absolute or relative path with a slash is checked as is.
 */
export function findBinary(name: string, dirs?: string[]): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? name : undefined;
  for (const d of dirs ?? toolPath().split(':')) {
    const p = join(d, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

export interface RunResult {
  /** exit code; null when killed by a signal (see `signal`) */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** true when the timeout killed it */
  timedOut: boolean;
  /** wall time in ms */
  ms: number;
}

export interface RunOptions {
  /** written to stdin, which is then closed; stdin is empty when unset */
  input?: string;
  /** SIGKILL after this long (default 30 s) */
  timeoutMs?: number;
  /** the child's whole environment (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** output beyond this many bytes per stream is dropped (default 4 MiB) */
  maxOutput?: number;
}

/**
 * runFast() only: the working directory, a file (e.g. a FIFO) opened for writing as fd 3, variables
 * added to the helper's environment (instead of `env`'s whole environment: no `env` process), and
 * no `timeout` process around the command (for one that forks and exits at once, like conmon; the
 * caller then has its own deadline).
 */
export interface FastRunOptions extends RunOptions { cwd?: string; fd3?: string; addEnv?: Record<string, string>; noTimeout?: boolean; nice?: number }

/** Runs file with args and resolves with its exit status and output; rejects only if it cannot start. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const max = opts.maxOutput ?? 4 << 20;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => { if (outLen < max) { out.push(b); outLen += b.length; } });
    child.stderr.on('data', (b: Buffer) => { if (errLen < max) { err.push(b); errLen += b.length; } });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    // 'close' (not 'exit'): all output has been read. A plugin that leaves a grandchild holding
    // the pipes open would delay this; the timeout still fires and kills the direct child only,
    // so the streams are destroyed too.
    const onTimeoutDestroy = (): void => { child.stdout.destroy(); child.stderr.destroy(); };
    child.on('exit', () => { if (timedOut) onTimeoutDestroy(); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code, signal, timedOut, ms: performance.now() - started,
        stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => { /* EPIPE when the child exits without reading stdin */ });
    child.stdin.end(opts.input ?? '');
  });
}

// ------------------------------------------------------------------------------- spawn helper
// Why: spawn() forks the calling process, and Node does that synchronously on its event loop; the
// cost grows with the process's memory (here ≈5 ms at 47 MB RSS, ≈11 ms at 200 MB, measured with
// /bin/true). The agent (100+ MB) starts ~6 short-lived tools per pod (unshare, CNI plugins, mount,
// runc start) and more to tear it down, so a quarter of its CPU went into fork() and steps that
// should overlap were serialized behind each other. runFast() hands such commands to one long-lived
// /bin/sh (≈1 MB) that forks them instead (≈0.7 ms each): a request is one line
//   { timeout -s KILL <s> [env -i K=V…] 'file' 'arg'… <in >out 2>err; echo "<id> $?"; } &
// with every word single-quoted, input and output in files of a private tmpfs directory, and the
// exit status read back from the shell's stdout (one short write per line, so concurrent jobs never
// interleave). The shell reaps finished jobs whenever it reads the next request. If the helper
// cannot be started or dies, commands fall back to run().

function shQuote(s: string): string { return `'${s.replace(/'/g, `'\\''`)}'`; }

class SpawnHelper {
  private sh?: ReturnType<typeof spawn>;
  private dir = '';
  private seq = 0;
  private buf = '';
  private readonly pending = new Map<number, (code: number | undefined) => void>();
  private broken = false;
  private readonly timeoutBin = findBinary('timeout');
  private readonly envBin = findBinary('env');
  private readonly niceBin = findBinary('nice');

  available(): boolean { return !this.broken && !!this.timeoutBin && !!this.envBin; }

  private start(): boolean {
    if (this.sh) return true;
    try {
      const base = [process.env.KYB_EXEC_DIR, '/dev/shm', tmpdir()].find((d) => d && existsSync(d))!;
      this.dir = mkdtempSync(join(base, 'kyb-exec-'));
      // its own process group: a Ctrl-C meant for the agent does not cut a mount or a CNI ADD short
      const sh = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
      sh.stdout!.setEncoding('utf8');
      sh.stdout!.on('data', (d: string) => this.onData(d));
      sh.stdin!.on('error', () => undefined);
      sh.on('error', () => this.fail());
      sh.on('exit', () => this.fail());
      // never keep the agent alive for it; the shell exits when its stdin closes with the agent
      sh.unref();
      (sh.stdin as unknown as { unref?(): void }).unref?.();
      (sh.stdout as unknown as { unref?(): void }).unref?.();
      this.sh = sh;
      const dir = this.dir;
      process.once('exit', () => { try { rmSync(dir, { recursive: true, force: true }); } catch { /* gone */ } });
      return true;
    } catch {
      this.broken = true;
      return false;
    }
  }

  /** keeps the event loop alive exactly while answers are awaited */
  private hold(): void {
    const out = this.sh?.stdout as unknown as { ref?(): void; unref?(): void } | undefined;
    if (this.pending.size) out?.ref?.(); else out?.unref?.();
  }

  private fail(): void {
    this.sh = undefined;
    for (const done of this.pending.values()) done(undefined);
    this.pending.clear();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const m = /^(\d+) (\d+)$/.exec(line);
      if (!m) continue;
      const done = this.pending.get(Number(m[1]));
      this.pending.delete(Number(m[1]));
      done?.(Number(m[2]));
    }
  }

  /** undefined when the helper cannot be used (the caller falls back to run()); rejects if it died meanwhile */
  async run(file: string, args: string[], opts: FastRunOptions): Promise<RunResult | undefined> {
    if (!this.available() || !this.start()) return undefined;
    const started = performance.now();
    const id = ++this.seq;
    const f = join(this.dir, String(id));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    if (opts.input) await writeFile(`${f}.in`, opts.input);
    const env = opts.env ? [this.envBin!, '-i', ...Object.entries(opts.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)] : [];
    const timeout = opts.noTimeout ? [] : [this.timeoutBin!, '-s', 'KILL', `${Math.max(0.001, timeoutMs / 1000)}`];
    // background work (the sandbox pool's refill) yields the CPU to pod starts
    const nice = opts.nice && this.niceBin ? [this.niceBin, '-n', String(opts.nice)] : [];
    const words = [...timeout, ...nice, ...env, file, ...args].map(shQuote).join(' ');
    const redirs = `<${opts.input ? shQuote(`${f}.in`) : '/dev/null'} >${shQuote(`${f}.out`)} 2>${shQuote(`${f}.err`)}${opts.fd3 ? ` 3>${shQuote(opts.fd3)}` : ''}`;
    const added = Object.entries(opts.addEnv ?? {});
    for (const [k] of added) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    const exports = added.map(([k, v]) => `export ${k}=${shQuote(v)} && `).join('');
    // a subshell when it changes directory or the environment; the exit status of a failed cd or redirection is reported too
    const cmd = opts.cwd || added.length ? `(${opts.cwd ? `cd ${shQuote(opts.cwd)} && ` : ''}${exports}exec ${words} ${redirs})` : `${words} ${redirs}`;
    const line = `{ ${cmd}; echo "${id} $?"; } &\n`;
    const code = await new Promise<number | undefined>((resolve) => {
      // a helper that stops answering must not hang the caller
      const guard = setTimeout(() => { if (this.pending.delete(id)) resolve(undefined); }, timeoutMs + 10_000);
      guard.unref();
      this.pending.set(id, (c) => { clearTimeout(guard); this.hold(); resolve(c); });
      this.hold();
      this.sh!.stdin!.write(line);
    });
    const max = opts.maxOutput ?? 4 << 20;
    const read = async (p: string) => { try { const b = await readFile(p); return b.subarray(0, max).toString('utf8'); } catch { return ''; } };
    const [stdout, stderr] = await Promise.all([read(`${f}.out`), read(`${f}.err`)]);
    await Promise.all([`${f}.in`, `${f}.out`, `${f}.err`].map((p) => rm(p, { force: true })));
    if (code === undefined) throw new Error(`${file}: the spawn helper shell stopped before the command finished`);
    const ms = performance.now() - started;
    // `timeout -s KILL` makes a command that ran out of time exit 137 (128 + SIGKILL)
    const timedOut = code === 137 && ms >= timeoutMs;
    return { code: timedOut ? null : code, signal: timedOut ? 'SIGKILL' : null, stdout, stderr, timedOut, ms };
  }
}

const helper = new SpawnHelper();

/**
 * run() for short-lived host tools on hot paths (pod start and stop): the same contract, but the
 * process is forked by a small helper shell instead of the (large) agent process. `file` must be a
 * path to an executable (as from findBinary); the exit status of a command killed by a signal is
 * 128 + the signal number, as a shell reports it. `nice` runs it at that niceness (helper only).
 */
export async function runFast(file: string, args: string[], opts: RunOptions & { nice?: number } = {}): Promise<RunResult> {
  if (file.includes('/') && !isExecutableFile(file)) throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
  if (!file.includes('/')) return run(file, args, opts);
  return (await helper.run(file, args, opts)) ?? run(file, args, opts);
}

/**
 * runFast() with a working directory and fd 3 opened (for writing) on a file, or undefined when the
 * helper cannot be used (the caller then spawns by itself).
 */
export async function runFastWithFd3(file: string, args: string[], opts: FastRunOptions): Promise<RunResult | undefined> {
  if (!isExecutableFile(file)) throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
  return helper.run(file, args, opts);
}

/** Whether runFast() forks through the helper shell (false: it falls back to spawning directly). */
export function spawnHelperAvailable(): boolean { return helper.available(); }
