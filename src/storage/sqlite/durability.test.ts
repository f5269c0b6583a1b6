// A write the store acknowledged must survive the process being killed with SIGKILL right after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from './sqlite-store.js';

const here = dirname(fileURLToPath(import.meta.url));

test('every acknowledged write survives kill -9 and the revision continues above it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-durability-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'db', 'state.db');

  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'durability-child.ts'), path, '8'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: join(here, '..', '..', '..'), // the repository root, where tsx is installed
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

  // the latest acknowledged value and revision of each key, read only from complete lines
  const acked = new Map<string, { rev: number; value: string }>();
  let maxRev = 0;
  let buf = '';
  const WANT = 300;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child acknowledged only ${acked.size} keys in time; stderr: ${stderr}`)), 8000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ack (\S+) (\d+) (.*)$/.exec(line);
        if (!m) continue;
        const rev = Number(m[2]);
        const prev = acked.get(m[1]);
        if (!prev || prev.rev < rev) acked.set(m[1], { rev, value: m[3] });
        maxRev = Math.max(maxRev, rev);
      }
      if (acked.size >= WANT && !child.killed) {
        // kill mid-stream: writes are still being issued and committed
        child.kill('SIGKILL');
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => { clearTimeout(timer); if (acked.size < WANT) reject(new Error(`child exited early; stderr: ${stderr}`)); });
  });
  assert.equal(await exited, 'SIGKILL');
  // lines that arrived after the kill decision were acknowledged too; read what is left in the pipe
  await new Promise<void>((resolve) => { if (child.stdout.readableEnded) resolve(); else child.stdout.on('end', resolve); });

  const s = SqliteStore.open(path);
  try {
    const missing: string[] = [];
    for (const [key, want] of acked) {
      const got = await s.get(key);
      // a newer revision is fine: the child may have committed a later write it had no time to print
      const kept = got && (got.modRevision > want.rev || (got.modRevision === want.rev && got.value === want.value));
      if (!kept) missing.push(`${key}@${want.rev}: ${got ? `found revision ${got.modRevision} "${got.value}"` : 'absent'}`);
    }
    assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged writes lost`);
    const current = await s.currentRevision();
    assert.ok(current >= maxRev, `revision ${current} fell below the last acknowledged ${maxRev}`);
    const next = await s.create('/after-restart', 'x');
    assert.ok(next.modRevision > maxRev);
    assert.equal(next.modRevision, current + 1);
  } finally {
    await s.close();
  }
});
