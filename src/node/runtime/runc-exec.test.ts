// runcExec against a real busybox container (root + runc): output, exit codes, stdin, tty and resize.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { runcExec } from './runc-exec.js';
import { runcUnavailable, startBusyboxContainer, type TestContainer } from './runc-exec.fixture.js';
import { isStatusError } from '../../machinery/status.js';

const skip = runcUnavailable();
let c: TestContainer;
before(async () => { if (!skip) c = await startBusyboxContainer(); });
after(async () => { await c?.stop(); });

function collect(r: Readable | null): Promise<string> {
  if (!r) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (d: Buffer) => parts.push(d));
    r.on('end', () => resolve(Buffer.concat(parts).toString()));
    r.on('error', reject);
  });
}

/** read a tty stream until pred holds for what arrived so far */
function waitFor(r: Readable, pred: (s: string) => boolean, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => { r.off('data', on); reject(new Error(`timed out; got ${JSON.stringify(text)}`)); }, ms);
    const on = (d: Buffer): void => {
      text += d.toString();
      if (pred(text)) { clearTimeout(t); r.off('data', on); resolve(text); }
    };
    r.on('data', on);
  });
}

test('stdout, stderr and the exit code', { skip: skip ?? false }, async () => {
  const p = runcExec({ root: c.root, id: c.id, command: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 7'], tty: false, stdin: false });
  assert.equal(p.stdin, null);
  const [out, err, code] = await Promise.all([collect(p.stdout), collect(p.stderr), p.exited]);
  assert.equal(out, 'to-out\n');
  assert.equal(err, 'to-err\n');
  assert.equal(code, 7);
});

test('env, cwd and user on top of the container process', { skip: skip ?? false }, async () => {
  const p = runcExec({
    root: c.root, id: c.id, command: ['sh', '-c', 'echo "$FOO $PATH"; pwd; id -u; id -g'], tty: false, stdin: false,
    env: ['FOO=bar'], cwd: '/tmp', user: { uid: 65534, gid: 65534 },
  });
  const [out, , code] = await Promise.all([collect(p.stdout), collect(p.stderr), p.exited]);
  assert.equal(out, 'bar /bin\n/tmp\n65534\n65534\n');
  assert.equal(code, 0);
});

test('stdin piped to cat', { skip: skip ?? false }, async () => {
  const p = runcExec({ root: c.root, id: c.id, command: ['cat'], tty: false, stdin: true });
  const big = 'x'.repeat(300_000);
  p.stdin!.write('hello ');
  p.stdin!.end(`world\n${big}`);
  const [out, code] = await Promise.all([collect(p.stdout), p.exited, collect(p.stderr)]);
  assert.equal(out, `hello world\n${big}`);
  assert.equal(code, 0);
});

test('a process killed by a signal exits 128+N; kill() ends a running process', { skip: skip ?? false }, async () => {
  const p = runcExec({ root: c.root, id: c.id, command: ['sh', '-c', 'kill -TERM $$'], tty: false, stdin: false });
  const [, , code] = await Promise.all([collect(p.stdout), collect(p.stderr), p.exited]);
  assert.equal(code, 143);

  const q = runcExec({ root: c.root, id: c.id, command: ['sleep', '60'], tty: false, stdin: false });
  const t0 = Date.now();
  const done = Promise.all([collect(q.stdout), collect(q.stderr), q.exited]);
  q.kill();
  q.kill(); // idempotent
  const [, , code2] = await done;
  assert.equal(code2, 137);
  assert.ok(Date.now() - t0 < 10_000);
});

test('a command that cannot start rejects with runc\'s reason', { skip: skip ?? false }, async () => {
  const p = runcExec({ root: c.root, id: c.id, command: ['no-such-command'], tty: false, stdin: false });
  void collect(p.stdout);
  void collect(p.stderr);
  await assert.rejects(p.exited, (e: unknown) => {
    assert.ok(isStatusError(e, 'InternalError'));
    assert.match(e.message, /executable file not found in \$PATH/);
    return true;
  });
});

test('tty: a real terminal inside, resize changes its size, exit code', { skip: skip ?? false }, async () => {
  const p = runcExec({ root: c.root, id: c.id, command: ['sh'], tty: true, stdin: true, cols: 90, rows: 33 });
  assert.equal(p.stderr, null);
  assert.ok(p.resize);
  const out = p.stdout;
  const prompt = waitFor(out, (s) => s.includes('# '));
  await prompt;
  let seen = waitFor(out, (s) => /33 90\r*\n/.test(s));
  p.stdin!.write('tty; stty size\r');
  const first = await seen;
  assert.match(first, /\/dev\/pts\/\d+/);
  p.resize!(120, 40);
  seen = waitFor(out, (s) => /40 120\r*\n/.test(s));
  // the new size is applied asynchronously (SIGWINCH to runc); ask until the shell sees it
  const ask = setInterval(() => p.stdin!.write('stty size\r'), 200);
  try { await seen; } finally { clearInterval(ask); }
  const rest = collect(out);
  p.stdin!.write('exit 5\r');
  assert.equal(await p.exited, 5);
  await rest;
});
