// conmonAttach (the python3 bridge to conmon's SOCK_SEQPACKET attach socket) and conmon's stdio flags.
//  * against a fake conmon (a python3 SEQPACKET server playing conmon's side of the protocol: stream
//    byte + data out, raw packets in, the ctl FIFO): stdout and stderr apart (merged for a tty), input
//    in packets conmon can take, end of input as a shutdown, resize as a ctl line, a client letting go,
//    and a directory without a socket;
//  * with real runc + conmon (root, busybox): a container started with -i reads what is attached to its
//    stdin; stdinOnce (no --leave-stdin-open) closes its stdin when the client's input ends; without
//    stdinOnce a second client can still write; a tty container gets its size from resize().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { attachBridge, conmonAttach, conmonStdioArgs, resizeMessage } from './attach.js';
import { Runtime, removeCgroupParent, type ContainerMeta } from './runtime.js';
import { buildOciSpec } from './oci-spec.js';
import { busyboxLayer, runtimeHarness } from './runc-exec.fixture.js';

const hasPython = !!attachBridge();

/** A fake conmon: listens on <dir>/attach and reads <dir>/ctl; see the header. Prints "ready". */
const FAKE_CONMON = `
import os, socket, sys, select
d, mode = sys.argv[1], sys.argv[2]
ctlp = os.path.join(d, 'ctl')
os.mkfifo(ctlp)
ctl = os.open(ctlp, os.O_RDONLY | os.O_NONBLOCK)
dummy = os.open(ctlp, os.O_WRONLY)
l = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
l.bind(os.path.join(d, 'attach'))
l.listen(1)
print('ready', flush=True)
c, _ = l.accept()
def send(b):
    try:
        c.send(b)
    except OSError:
        pass
send(b'\\x02hello-out\\n')
send(b'\\x03hello-err\\n')
if mode == 'close':
    c.close(); sys.exit(0)
total = 0
biggest = 0
while True:
    r, _, _ = select.select([c, ctl], [], [], 20)
    if not r:
        break
    if ctl in r:
        send(b'\\x02ctl:' + os.read(ctl, 200))
        break
    try:
        p = c.recv(65536)
    except OSError:
        p = b''
    if not p:
        if mode == 'count':
            send(b'\\x02eof total=%d biggest=%d\\n' % (total, biggest))
        else:
            send(b'\\x02eof\\n')
        break
    total += len(p)
    biggest = max(biggest, len(p))
    if mode != 'count':
        send(b'\\x02got:' + p)
c.close()
`;

function text(s: Readable | null): Promise<string> {
  if (!s) return Promise.resolve('');
  return new Promise((resolve) => {
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
  });
}

async function fakeConmon(t: { after(fn: () => void): void }, mode: string): Promise<{ dir: string; server: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-attach-'));
  const server = spawn('python3', ['-c', FAKE_CONMON, dir, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { server.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (c) => reject(new Error(`fake conmon exited ${c}`)));
  });
  return { dir, server };
}

test('conmon stdio flags from stdin, stdinOnce and tty', () => {
  assert.deepEqual(conmonStdioArgs({ id: 'x' }), []);
  assert.deepEqual(conmonStdioArgs({ id: 'x', stdin: true }), ['-i', '--leave-stdin-open']);
  assert.deepEqual(conmonStdioArgs({ id: 'x', stdin: true, stdinOnce: true }), ['-i']);
  assert.deepEqual(conmonStdioArgs({ id: 'x', stdin: true, stdinOnce: true, tty: true }), ['-t', '-i']);
  assert.deepEqual(conmonStdioArgs({ id: 'x', tty: true }), ['-t']);
  assert.equal(resizeMessage(120.4, 40), '1 40 120\n');
});

test('bridge: stdout and stderr apart, input as packets, end of input, then the end', { skip: !hasPython && 'needs python3' }, async (t) => {
  const { dir } = await fakeConmon(t, 'echo');
  const p = await conmonAttach({ dir, stdin: true, tty: false });
  assert.equal(p.resize, undefined);
  const out = text(p.stdout);
  const err = text(p.stderr);
  p.stdin!.write('one\n');
  p.stdin!.end('two\n');
  await p.exited;
  const o = await out;
  assert.match(o, /^hello-out\ngot:/);
  assert.match(o, /eof\n$/);
  assert.equal(o.replace(/got:/g, '').replace('hello-out\n', '').replace('eof\n', ''), 'one\ntwo\n');
  assert.equal(await err, 'hello-err\n');
});

test('bridge: large input arrives whole, in packets conmon can read (< 32 KiB)', { skip: !hasPython && 'needs python3' }, async (t) => {
  const { dir } = await fakeConmon(t, 'count');
  const p = await conmonAttach({ dir, stdin: true, tty: false });
  const out = text(p.stdout);
  p.stdin!.end(Buffer.alloc(300_000, 'x'));
  await p.exited;
  const m = /eof total=(\d+) biggest=(\d+)/.exec(await out);
  assert.ok(m, await out);
  assert.equal(Number(m[1]), 300_000);
  assert.ok(Number(m[2]) <= 32767, `packet of ${m[2]} bytes`);
});

test('bridge: a tty has one output stream and resize() writes the ctl FIFO', { skip: !hasPython && 'needs python3' }, async (t) => {
  const { dir } = await fakeConmon(t, 'echo');
  const p = await conmonAttach({ dir, stdin: true, tty: true });
  assert.equal(p.stderr, null);
  const out = text(p.stdout);
  await new Promise((r) => setTimeout(r, 50)); // the greeting first, for a stable order
  p.resize!(132, 43);
  await p.exited;
  assert.equal(await out, 'hello-out\nhello-err\nctl:1 43 132\n');
});

test('bridge: output only; a client letting go ends the bridge', { skip: !hasPython && 'needs python3' }, async (t) => {
  const { dir, server } = await fakeConmon(t, 'echo');
  const p = await conmonAttach({ dir, stdin: false, tty: false });
  assert.equal(p.stdin, null);
  await new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
  const serverDone = new Promise((r) => server.once('exit', r));
  p.stdout.destroy();
  p.stderr!.destroy();
  await p.exited;
  await serverDone; // it saw the connection close
});

test('bridge: container gone (conmon closes at once) and no socket at all', { skip: !hasPython && 'needs python3' }, async (t) => {
  const { dir } = await fakeConmon(t, 'close');
  const p = await conmonAttach({ dir, stdin: false, tty: false });
  assert.equal(await text(p.stdout), 'hello-out\n');
  await p.exited;
  const empty = mkdtempSync(join(tmpdir(), 'kyb-attach-none-'));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  await assert.rejects(conmonAttach({ dir: empty, stdin: true, tty: false }), /attach: .*(No such file|ENOENT|Errno 2)/);
  await assert.rejects(conmonAttach({ dir: empty, stdin: true, tty: false, python: '/nonexistent/python3' }), /attach: /);
});

// ------------------------------------------------------------------------------------ real conmon

const canRun = hasPython && process.getuid?.() === 0 && existsSync('/bin/busybox')
  && ['runc', 'conmon'].every((c) => spawnSync(c, ['--version']).status === 0);


test('real conmon: stdin, stdinOnce, leave-stdin-open, tty size', { skip: !canRun && 'needs root, python3, runc, conmon, busybox' }, async (t) => {
  const { dir, netns, cgroupParent, rt } = runtimeHarness(t, { dir: 'kyb-attach-rt', netns: 'kybat', cgroup: 'kyb-attach' });
  const layer = busyboxLayer(dir);
  const pod = { metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { containers: [] } };
  const exits = new Map<string, () => void>();
  const seen = new Set<string>();
  rt.watchExits((id) => { seen.add(id); exits.get(id)?.(); });
  const waitExit = (id: string) => new Promise<void>((r) => { if (seen.has(id)) r(); else exits.set(id, r); });
  const mk = async (name: string, args: string[], io: { stdin?: boolean; stdinOnce?: boolean; tty?: boolean }) => {
    const id = rt.newId();
    // the stdio flags ride on the metadata (ContainerMeta gains them with the pod manager's change)
    const meta = {
      id, podUID: 'u1', podNamespace: 'default', podName: 'p', containerName: name, attempt: 0, init: false,
      imageRef: 'test', imageId: 'sha256:x', logPath: join(dir, 'logs', `${name}.log`), cgroupsPath: `${cgroupParent}/podu1/${id}`,
      createdAt: new Date().toISOString(), specHash: 'h', ...io,
    };
    const spec = buildOciSpec({
      pod, container: { name, image: 'test' }, rootfs: '', args, env: ['PATH=/bin'], cwd: '/',
      user: { uid: 0, gid: 0 }, netnsPath: `/run/netns/${netns}`, cgroupsPath: meta.cgroupsPath, binds: [], tty: io.tty === true,
    });
    await rt.create(meta as ContainerMeta, spec, [layer]);
    await rt.start(id);
    return { id, dir: join(dir, 'run', 'sockets', id) };
  };
  const loop = ['/bin/sh', '-c', 'while read l; do echo got:$l; echo err:$l >&2; done; echo stdin-closed'];

  // stdinOnce: the first client's end of input is the container's
  const once = await mk('once', loop, { stdin: true, stdinOnce: true });
  const a = await conmonAttach({ dir: once.dir, stdin: true, tty: false });
  const [ao, ae] = [text(a.stdout), text(a.stderr)];
  a.stdin!.end('a\nb\n');
  await a.exited;
  assert.equal(await ao, 'got:a\ngot:b\nstdin-closed\n');
  assert.equal(await ae, 'err:a\nerr:b\n');
  await waitExit(once.id);
  assert.equal((await rt.info(once.id))?.exit?.exitCode, 0);

  // stdinOnce false: stdin stays open for the next client
  const open = await mk('open', loop, { stdin: true });
  const b1 = await conmonAttach({ dir: open.dir, stdin: true, tty: false });
  const b1o = text(b1.stdout);
  b1.stdin!.write('first\n');
  await new Promise<void>((resolve) => b1.stdout.on('data', (d: Buffer | string) => { if (String(d).includes('got:first')) resolve(); }));
  b1.stdin!.end();
  b1.kill();
  await b1.exited;
  assert.match(await b1o, /got:first/);
  const b2 = await conmonAttach({ dir: open.dir, stdin: true, tty: false });
  const b2o = text(b2.stdout);
  b2.stdin!.write('second\n');
  await new Promise<void>((resolve) => b2.stdout.on('data', (d: Buffer | string) => { if (String(d).includes('got:second')) resolve(); }));
  b2.kill();
  await b2.exited;
  assert.match(await b2o, /got:second/);
  assert.equal((await rt.info(open.id))?.state, 'running', 'stdin left open: still reading');

  // a tty: one stream, its size from resize()
  const tty = await mk('tty', ['/bin/sh', '-c', 'read x; stty size; read y; echo bye'], { stdin: true, stdinOnce: true, tty: true });
  const c = await conmonAttach({ dir: tty.dir, stdin: true, tty: true });
  const co = text(c.stdout);
  c.resize!(101, 33);
  await new Promise((r) => setTimeout(r, 100)); // conmon applies the ctl line in its own loop
  c.stdin!.write('go\n');
  c.stdin!.write('on\n');
  await c.exited;
  const out = await co;
  assert.match(out, /33 101\r\n/);
  assert.match(out, /bye\r\n/);
});
