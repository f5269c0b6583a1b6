// `kubectl attach` to a container's main process, through the attach socket of the container's conmon.
//
// What conmon 2.1 offers (read from its source, src/conn_sock.c, src/ctr_stdio.c, src/ctrl.c):
//  * `<bundle>/attach` (also reachable as `<socket-dir-path>/<id>/attach`, a symlink to the bundle dir
//    that conmon makes so the path stays under the 108-byte sun_path limit): a SOCK_SEQPACKET listening
//    socket. Every packet conmon sends a client is one byte naming the stream (2 = stdout, 3 = stderr)
//    and then the bytes the container wrote; a tty has only stdout. Each packet a client sends goes to
//    the container's stdin as it is; conmon reads at most 32767 bytes per packet, so input is sent in
//    smaller pieces. When the client shuts down its sending side (or goes away), conmon closes the
//    container's stdin unless it was started with --leave-stdin-open (Kubernetes' stdinOnce: false).
//    When the container exits, conmon sends what is left of its output and then closes every client.
//    Output only goes to clients attached at the time: what came before is in the log only.
//  * `<bundle>/ctl`: a FIFO conmon reads lines `<type> <height> <width>\n` from; type 1 resizes the
//    container's terminal (TIOCSWINSZ on the pty), type 2 reopens the log files.
//  * the container only has a stdin pipe with conmon's --stdin (-i), and a pty with -t (conmon then
//    makes the console socket and passes --console-socket to runc; config.json must ask for a terminal).
//    conmonStdioArgs() turns a container's stdin/stdinOnce/tty into these flags.
//
// Node's `net` cannot open SOCK_SEQPACKET sockets, so a tiny python3 child process bridges: it connects
// (through /proc/self/fd/<dir fd>/attach, so no path length limit applies), reports "ok" or the error
// on its fd 3, then writes each packet's data to its fd 1 (stdout) or fd 2 (stderr; stdout too for a
// tty) and, when stdin is wanted, copies its fd 0 to the socket in packets of at most 16 KiB, shutting
// the socket's sending side down at end of input. It ends when conmon closes the socket (container
// exited) or when it is killed (the client let go). python3 is on the hosts (.ci/run installs it);
// where it is missing attachBridge() says so and the caller falls back to reading the log.
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { findBinary } from '../network/exec.js';
import type { ExecProcess } from '../streaming/backend.js';

/** conmon's flags for a container's stdio: -t for a tty, -i for stdin, --leave-stdin-open unless stdinOnce. */
export function conmonStdioArgs(c: { id: string; stdin?: boolean; stdinOnce?: boolean; tty?: boolean }): string[] {
  const args: string[] = [];
  if (c.tty) args.push('-t');
  if (c.stdin) {
    args.push('-i');
    if (!c.stdinOnce) args.push('--leave-stdin-open');
  }
  return args;
}

/** The line for conmon's ctl FIFO that sets the terminal to cols x rows. */
export function resizeMessage(cols: number, rows: number): string {
  return `1 ${Math.floor(rows)} ${Math.floor(cols)}\n`;
}

/** The bridge program (python3 -I -S -c: isolated from the environment, no site packages: starts faster); argv: <dir> <flags: 'i' stdin, 't' tty>. */
export const BRIDGE_SCRIPT = `
import os, socket, sys, threading
d, flags = sys.argv[1], sys.argv[2]
st = os.fdopen(3, 'wb', buffering=0)
try:
    dfd = os.open(d, os.O_PATH | os.O_DIRECTORY)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect('/proc/self/fd/%d/attach' % dfd)
    os.close(dfd)
except OSError as e:
    st.write(('err %s\\n' % e).encode())
    sys.exit(2)
st.write(b'ok\\n')
st.close()
def pump():
    try:
        while True:
            b = os.read(0, 16384)
            if not b:
                break
            s.send(b)
    except OSError:
        pass
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
if 'i' in flags:
    threading.Thread(target=pump, daemon=True).start()
tty = 't' in flags
try:
    while True:
        p = s.recv(65536)
        if not p:
            break
        v = memoryview(p)[1:]
        fd = 2 if p[0] == 3 and not tty else 1
        while v:
            v = v[os.write(fd, v):]
except OSError:
    pass
`;

let pythonPath: string | null | undefined;
/** The python3 the bridge runs with, or undefined when the host has none. */
export function attachBridge(python?: string): string | undefined {
  if (python) return findBinary(python) ?? (python.includes('/') ? python : undefined);
  if (pythonPath === undefined) pythonPath = findBinary('python3') ?? null;
  return pythonPath ?? undefined;
}

export interface ConmonAttachOptions {
  /** the container's bundle directory, or conmon's `<socket-dir-path>/<id>` symlink to it (holds `attach` and `ctl`) */
  dir: string;
  /** connect the caller's input to the container's stdin */
  stdin: boolean;
  /** the container has a terminal: one output stream, and resize() */
  tty: boolean;
  /** python3 binary (default: python3 on the PATH or in the usual directories) */
  python?: string;
  /** how long the bridge may take to connect (default 10 s) */
  timeoutMs?: number;
}

/**
 * Attaches to a container through conmon's attach socket. Resolves once connected (output from then
 * on arrives on stdout/stderr); rejects when there is no python3 or the socket cannot be reached (no
 * such container, conmon gone). `exited` resolves with 0 when the bridge has ended and its output has
 * been read (the container exited, or kill()); destroying stdout (the client let go) also ends it.
 */
export function conmonAttach(o: ConmonAttachOptions): Promise<ExecProcess> {
  const python = attachBridge(o.python);
  if (!python) return Promise.reject(new Error('attach: python3 is not installed'));
  return new Promise((resolve, reject) => {
    const flags = `${o.stdin ? 'i' : ''}${o.tty ? 't' : ''}-`;
    const child = spawn(python, ['-I', '-S', '-c', BRIDGE_SCRIPT, o.dir, flags], {
      stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    let settled = false;
    let status = '';
    const status$ = child.stdio[3] as Readable;
    const fail = (msg: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      status$.destroy();
      reject(new Error(`attach: ${msg}`));
    };
    const timer = setTimeout(() => fail(`no connection to ${join(o.dir, 'attach')} within ${o.timeoutMs ?? 10_000} ms`), o.timeoutMs ?? 10_000);
    child.once('error', (e) => fail(e.message));
    const exited = new Promise<number>((res) => child.once('close', () => res(0)));
    status$.setEncoding('utf8');
    status$.on('data', (d: string) => {
      status += d;
      const nl = status.indexOf('\n');
      if (nl < 0 || settled) return;
      const line = status.slice(0, nl);
      if (!line.startsWith('ok')) { fail(line.replace(/^err /, '')); return; }
      settled = true;
      clearTimeout(timer);
      status$.destroy();
      child.stdin?.on('error', () => { /* the container's stdin was closed */ });
      const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
      // the client let go of the output: nothing more to bridge (a moment first for input still in the pipe)
      const letGo = (): void => { setTimeout(kill, 250).unref(); };
      child.stdout!.once('close', letGo);
      child.stderr!.once('close', letGo);
      const stderr = o.tty ? null : child.stderr!;
      if (o.tty) child.stderr!.resume(); // nothing arrives there with a tty
      resolve({
        stdin: child.stdin ?? null,
        stdout: child.stdout!,
        stderr,
        ...(o.tty ? { resize: (cols: number, rows: number) => writeCtl(o.dir, resizeMessage(cols, rows)) } : {}),
        exited,
        kill,
      });
    });
    status$.on('error', () => undefined);
    status$.on('end', () => fail(`the bridge ended before connecting${status ? `: ${status.trim()}` : ''}`));
  });
}

/** Writes one control line to conmon's ctl FIFO (nothing happens when conmon is gone). */
function writeCtl(dir: string, line: string): void {
  if (!/^\d+ \d+ \d+\n$/.test(line)) return;
  let fd: number | undefined;
  try {
    fd = openSync(join(dir, 'ctl'), fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    writeSync(fd, line);
  } catch { /* no reader: conmon has exited */ } finally {
    if (fd !== undefined) try { closeSync(fd); } catch { /* closed */ }
  }
}
