// Runs a process inside a running runc container: what `kubectl exec` ends up as on the node.
//
// `runc exec` stays in the foreground as the parent of the new process, so its exit status is the
// process's (128+N after signal N). Flags rather than `--process FILE` are used on purpose: runc then
// starts from the container's own process spec (env, cwd, user, capabilities, rlimits) and only
// overrides what is given, which is what Kubernetes exec means.
//
//  * non-tty: plain pipes. runc hands them straight to the process (no copying in between), so stdout
//    ends when the process (and anything it left running with the same stdout) closes it.
//  * tty: `runc exec -t` in the foreground needs a terminal as its own stdio; it then makes a pty
//    inside the container, puts ours in raw mode, copies between them and applies our window size on
//    SIGWINCH. Node has no pty, so we use the npm package node-pty (native, built with node-gyp):
//    resize() sets our pty's size, the kernel sends runc SIGWINCH, runc resizes the container's
//    terminal (`stty size` inside shows it). stderr is merged into stdout, as on any terminal.
//  * exit: `exited` resolves with the real exit code after the output has ended. When runc itself
//    could not start the process (it exits 255 and logs an error, e.g. `executable file not found in
//    $PATH`) it rejects with an InternalError StatusError carrying runc's message instead.
//  * kill(): SIGKILL to the process by the pid runc wrote to --pid-file (killing runc itself would
//    leave the process running inside the container); runc then exits with 137.
import { spawn as spawnChild } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { IPty } from 'node-pty';
import { errors } from '../../machinery/status.js';
import type { ExecProcess } from '../streaming/backend.js';

export interface RuncExecOptions {
  /** runc binary (default 'runc') */
  runc?: string;
  /** runc --root (state directory) */
  root: string;
  /** container id */
  id: string;
  command: string[];
  tty: boolean;
  stdin: boolean;
  /** extra `KEY=value` entries on top of the container's environment */
  env?: string[];
  cwd?: string;
  user?: { uid: number; gid: number };
  /** initial terminal size for tty (default 80x24; a client normally sends its size at once) */
  cols?: number;
  rows?: number;
}

type PtyModule = typeof import('node-pty');
let ptyModule: PtyModule | null = null;
function loadPty(): PtyModule {
  // loaded on first use so that a host where the native module failed to build still does non-tty exec
  if (!ptyModule) ptyModule = createRequire(import.meta.url)('node-pty') as PtyModule;
  return ptyModule;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (osConstants.signals as Record<string, number>)[sig] ?? 0 : 0;
}

/** Start `command` in container `id`. Never throws: failures arrive through `exited`. */
export function runcExec(o: RuncExecOptions): ExecProcess {
  const runc = o.runc ?? 'runc';
  const dir = mkdtempSync(join(tmpdir(), 'kyb-exec-'));
  const pidFile = join(dir, 'pid');
  const logFile = join(dir, 'log.json');
  const env = [...(o.env ?? [])];
  if (o.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  const args = ['--root', o.root, '--log', logFile, '--log-format', 'json', 'exec', '--pid-file', pidFile];
  if (o.cwd) args.push('--cwd', o.cwd);
  for (const e of env) args.push('--env', e);
  if (o.user) args.push('--user', `${o.user.uid}:${o.user.gid}`);
  if (o.tty) args.push('-t');
  args.push(o.id, ...o.command);

  let done = false;
  let killTimer: NodeJS.Timeout | null = null;
  const cleanup = (): void => {
    done = true;
    if (killTimer) clearTimeout(killTimer);
    rmSync(dir, { recursive: true, force: true });
  };
  /** the exit code, or runc's own failure as a StatusError */
  const settle = (code: number): number => {
    if (code === 255) {
      const msg = runcError(logFile);
      if (msg) {
        cleanup();
        throw errors.internal(`error executing command in container: ${msg}`);
      }
    }
    cleanup();
    return code;
  };
  const containerPid = (): number | null => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : null;
    } catch {
      return null;
    }
  };
  /** kill the process inside; until runc has written the pid, retry for a while, then kill runc */
  const makeKill = (killRunc: () => void) => {
    let tries = 0;
    const attempt = (): void => {
      killTimer = null;
      if (done) return;
      const pid = containerPid();
      if (pid) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        return;
      }
      if (++tries > 40) { killRunc(); return; }
      killTimer = setTimeout(attempt, 50);
    };
    return (): void => { if (!done && !killTimer) attempt(); };
  };

  if (!o.tty) {
    const child = spawnChild(runc, args, { stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => { /* EPIPE when the process does not read its stdin */ });
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', (e) => { cleanup(); reject(errors.internal(`error executing command in container: ${e.message}`)); });
      // 'close': exited *and* stdout/stderr ended (i.e. drained by their consumer)
      child.once('close', (code, sig) => {
        try { resolve(settle(code ?? 128 + signalNumber(sig))); } catch (e) { reject(e); }
      });
    });
    exited.catch(() => { /* the caller decides whether it cares */ });
    return {
      stdin: child.stdin ?? null,
      stdout: child.stdout!,
      stderr: child.stderr!,
      exited,
      kill: makeKill(() => { child.kill('SIGKILL'); }),
    };
  }

  // tty: runc's stdio is the slave side of a pty that node-pty made for us
  const stdout = new PassThrough();
  let pty: IPty;
  try {
    pty = loadPty().spawn(runc, args, {
      name: 'xterm',
      cols: o.cols ?? 80,
      rows: o.rows ?? 24,
      cwd: '/',
      env: process.env as Record<string, string>,
      encoding: null,
    });
  } catch (e) {
    cleanup();
    stdout.end();
    const exited = Promise.reject(errors.internal(`error executing command in container: cannot allocate a terminal: ${(e as Error).message}`));
    exited.catch(() => { /* surfaced to whoever awaits it */ });
    return { stdin: null, stdout, stderr: null, exited, kill: () => {} };
  }
  let exitedFlag = false;
  (pty.onData as unknown as (cb: (d: Buffer) => void) => void)((d) => {
    if (!stdout.write(d)) {
      pty.pause();
      stdout.once('drain', () => { if (!exitedFlag) pty.resume(); });
    }
  });
  const exited = new Promise<number>((resolve, reject) => {
    // node-pty reports the exit only after the pty has been read to its end
    pty.onExit(({ exitCode, signal }) => {
      exitedFlag = true;
      stdout.end();
      const code = signal ? 128 + signal : exitCode;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        try { resolve(settle(code)); } catch (e) { reject(e); }
      };
      // resolve once the consumer has taken the output, as for pipes
      if (stdout.readableEnded) finish();
      else { stdout.once('end', finish); stdout.once('close', finish); }
    });
  });
  exited.catch(() => { /* as above */ });
  const stdin = o.stdin
    ? new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (!exitedFlag) pty.write(chunk);
        cb();
      },
      // a terminal has no end-of-file of its own; the process sees ^D if its line discipline wants it
    })
    : null;
  return {
    stdin,
    stdout,
    stderr: null,
    resize(cols: number, rows: number) {
      if (exitedFlag || !(cols > 0) || !(rows > 0)) return;
      try { pty.resize(Math.floor(cols), Math.floor(rows)); } catch { /* exited meanwhile */ }
    },
    exited,
    kill: makeKill(() => { try { pty.kill('SIGKILL'); } catch { /* gone */ } }),
  };
}

/** runc's own error message from its JSON log (level error), if it wrote one. */
function runcError(logFile: string): string | null {
  let text: string;
  try { text = readFileSync(logFile, 'utf8'); } catch { return null; }
  let msg: string | null = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if (e.level === 'error' && e.msg) msg = e.msg;
    } catch { /* not JSON */ }
  }
  return msg;
}
