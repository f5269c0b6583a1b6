// Reading CRI log files as `kubectl logs` shows them: partial lines joined, tail, since, timestamps,
// limitBytes, and following through appends, conmon-style rotation (rename over the path), truncation,
// and the container's exit.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { streamLog, tailStart, type LogOptions } from './log-reader.js';
import { formatCriLine } from './cri-log.js';
import type { LogSource } from '../streaming/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'kyb-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newPath = () => join(dir, `c${n++}.log`);

const T0 = Date.UTC(2026, 10, 22, 7, 37, 20);
/** an entry at T0 + s seconds (with a nanosecond fraction) */
const at = (s: number, stream: 'stdout' | 'stderr', text: string, full = true) =>
  formatCriLine(`${new Date(T0 + s * 1000).toISOString().slice(0, 19)}.123456789+00:00`, stream, text, full);

const SAMPLE = [
  at(0, 'stdout', 'one'),
  at(1, 'stderr', 'two'),
  at(2, 'stdout', 'thr', false), at(2, 'stdout', 'ee'),
  at(3, 'stdout', ''),
  at(4, 'stdout', 'five'),
  at(5, 'stdout', 'six-', false),
].join('');

function source(path: string, exited: Promise<void> = Promise.resolve()): LogSource { return { path, exited }; }

async function read(path: string, opts: LogOptions, exited?: Promise<void>): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await streamLog(source(path, exited), opts, out);
  return Buffer.concat(chunks).toString();
}

/** a follower whose output can be awaited piece by piece */
function follow(path: string, opts: LogOptions = {}) {
  let exit!: () => void;
  const exited = new Promise<void>((r) => { exit = r; });
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString(); });
  const ac = new AbortController();
  const done = streamLog(source(path, exited), { follow: true, pollIntervalMs: 50, ...opts }, out, ac.signal);
  return {
    get text() { return text; },
    exit, abort: () => ac.abort(), done,
    async waitFor(s: string, ms = 5000) {
      const end = Date.now() + ms;
      while (!text.includes(s)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(s)}; got ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

test('the whole log: stdout and stderr interleaved, partial entries joined, an unfinished last line as is', async () => {
  const p = newPath();
  writeFileSync(p, SAMPLE);
  assert.equal(await read(p, {}), 'one\ntwo\nthree\n\nfive\nsix-');
});

test('timestamps prefix each line (not each partial entry) in UTC RFC3339Nano', async () => {
  const p = newPath();
  writeFileSync(p, SAMPLE);
  const lines = (await read(p, { timestamps: true })).split('\n');
  assert.equal(lines[0], '2026-11-22T07:37:20.123456789Z one');
  assert.equal(lines[2], '2026-11-22T07:37:22.123456789Z three');
  assert.equal(lines[5], '2026-11-22T07:37:25.123456789Z six-');
});

test('tailLines counts logical lines; 0 gives nothing; more than there are gives all', async () => {
  const p = newPath();
  writeFileSync(p, SAMPLE);
  assert.equal(await read(p, { tailLines: 1 }), 'six-');
  assert.equal(await read(p, { tailLines: 3 }), '\nfive\nsix-');
  assert.equal(await read(p, { tailLines: 4 }), 'three\n\nfive\nsix-');
  assert.equal(await read(p, { tailLines: 0 }), '');
  assert.equal(await read(p, { tailLines: 100 }), 'one\ntwo\nthree\n\nfive\nsix-');
  // without the unfinished line, and across chunk boundaries of the backward scan
  const q = newPath();
  writeFileSync(q, Array.from({ length: 5000 }, (_, i) => at(i, 'stdout', `line ${i} ${'x'.repeat(i % 50)}`)).join(''));
  assert.equal(await read(q, { tailLines: 2 }), `line 4998 ${'x'.repeat(48)}\nline 4999 ${'x'.repeat(49)}\n`);
  const got = (await read(q, { tailLines: 3000 })).split('\n');
  assert.equal(got.length, 3001);
  assert.match(got[0], /^line 2000 /);
  const fh = await open(q);
  try { assert.equal(await tailStart(fh, (await fh.stat()).size, 5000), 0); } finally { await fh.close(); }
});

test('since drops lines before the time (a joined line goes by its first entry); combines with tail', async () => {
  const p = newPath();
  writeFileSync(p, SAMPLE);
  assert.equal(await read(p, { since: new Date(T0 + 2000) }), 'three\n\nfive\nsix-');
  assert.equal(await read(p, { since: new Date(T0 + 2500) }), '\nfive\nsix-');
  assert.equal(await read(p, { since: new Date(T0 + 60_000) }), '');
  assert.equal(await read(p, { since: new Date(T0 + 1000), tailLines: 5 }), 'two\nthree\n\nfive\nsix-');
});

test('limitBytes stops after that many bytes, timestamps included', async () => {
  const p = newPath();
  writeFileSync(p, SAMPLE);
  assert.equal(await read(p, { limitBytes: 6 }), 'one\ntw');
  assert.equal(await read(p, { limitBytes: 35, timestamps: true }), '2026-11-22T07:37:20.123456789Z one\n');
});

test('a missing file is an empty log; a follower waits for it to appear', async () => {
  const p = newPath();
  assert.equal(await read(p, {}), '');
  const f = follow(p);
  writeFileSync(p, at(0, 'stdout', 'late start'));
  await f.waitFor('late start\n');
  f.exit();
  await f.done;
});

test('follow: appended lines arrive as written; the stream ends when the container exits and the file is drained', async () => {
  const p = newPath();
  writeFileSync(p, at(0, 'stdout', 'before'));
  const f = follow(p, { tailLines: 1 });
  await f.waitFor('before\n');
  appendFileSync(p, at(1, 'stdout', 'after-1'));
  await f.waitFor('after-1\n');
  appendFileSync(p, at(2, 'stdout', 'half ', false));
  await f.waitFor('half ');
  appendFileSync(p, at(2, 'stdout', 'done'));
  await f.waitFor('half done\n');
  // the last words come just before the exit is noticed
  appendFileSync(p, at(3, 'stderr', 'last words'));
  f.exit();
  await f.done;
  assert.equal(f.text, 'before\nafter-1\nhalf done\nlast words\n');
});

test('follow survives rotation by rename (conmon --log-size-max) and truncation in place', async () => {
  const p = newPath();
  writeFileSync(p, at(0, 'stdout', 'old-1'));
  const f = follow(p);
  await f.waitFor('old-1\n');
  // conmon: the rest of the old file, then a new file renamed over the path
  appendFileSync(p, at(1, 'stdout', 'old-2'));
  const tmp = `${p}.tmp`;
  writeFileSync(tmp, at(2, 'stdout', 'new-1'));
  renameSync(tmp, p);
  await f.waitFor('new-1\n');
  appendFileSync(p, at(3, 'stdout', 'new-2'));
  await f.waitFor('new-2\n');
  // twice in a row, quickly (inode numbers may be reused)
  for (const k of [1, 2]) {
    writeFileSync(tmp, at(4, 'stdout', `again-${k}`));
    renameSync(tmp, p);
    await f.waitFor(`again-${k}\n`);
  }
  // truncated in place, then written again
  truncateSync(p, 0); // (the new content stays shorter than the read position, so the shrink shows)
  appendFileSync(p, at(5, 'stdout', 'fresh'));
  await f.waitFor('fresh\n');
  f.exit();
  await f.done;
  assert.equal(f.text, 'old-1\nold-2\nnew-1\nnew-2\nagain-1\nagain-2\nfresh\n');
});

test('follow ends when aborted (the client went away) even though the container still runs', async () => {
  const p = newPath();
  writeFileSync(p, at(0, 'stdout', 'x'));
  const f = follow(p);
  await f.waitFor('x\n');
  f.abort();
  await f.done;
});

test('follow with limitBytes ends when the budget is used up', async () => {
  const p = newPath();
  writeFileSync(p, at(0, 'stdout', 'abc'));
  const f = follow(p, { limitBytes: 6 });
  await f.waitFor('abc\n');
  appendFileSync(p, at(1, 'stdout', 'defgh'));
  await f.done;
  assert.equal(f.text, 'abc\nde');
});
