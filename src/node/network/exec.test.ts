// runFast(): the helper-shell path keeps run()'s contract — stdin, a whole environment, stdout and
// stderr apart, exit codes, timeouts — for arguments that need quoting, and many at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBinary, run, runFast } from './exec.js';

const sh = findBinary('sh')!;

test('runFast: input, env, output, exit code, awkward arguments; same as run()', async () => {
  const args = ['-c', 'cat; printf "%s|" "$1" "$2"; echo "$FOO" >&2; exit 3', 'argv0', "it's a \"quote\" $HOME `x`", 'two\nlines  spaced'];
  const opts = { input: 'from stdin\n', env: { FOO: 'bar baz', PATH: '/usr/bin:/bin' } };
  const fast = await runFast(sh, args, opts);
  const slow = await run(sh, args, opts);
  assert.equal(fast.code, 3);
  assert.equal(fast.stdout, "from stdin\nit's a \"quote\" $HOME `x`|two\nlines  spaced|");
  assert.equal(fast.stderr, 'bar baz\n');
  assert.deepEqual({ ...fast, ms: 0 }, { ...slow, ms: 0 });
});

test('runFast: a command that runs too long is killed and reported as timed out', async () => {
  const r = await runFast(findBinary('sleep')!, ['5'], { timeoutMs: 200 });
  assert.equal(r.timedOut, true);
  assert.ok(r.ms < 3000);
});

test('runFast: many commands at once each get their own result; a missing file rejects', async () => {
  const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => runFast(sh, ['-c', `echo ${i}; exit ${i % 4}`])));
  rs.forEach((r, i) => { assert.equal(r.stdout, `${i}\n`); assert.equal(r.code, i % 4); });
  await assert.rejects(runFast('/nonexistent/tool', []), /ENOENT/);
});
