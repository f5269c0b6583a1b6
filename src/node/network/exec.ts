// Small process helpers shared by the node's host-facing code (netns, CNI, preflight, host info):
// finding a binary the way a root shell would (PATH plus /usr/sbin and /sbin, which a non-login
// environment often lacks), and running a command with stdin, a timeout and captured output.
// Commands are always exec'd directly (no shell), so arguments need no quoting.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
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
