// SandboxPool with real namespaces (needs root and util-linux unshare; skipped otherwise) and a fake
// pod network that records its CNI ADD/DEL calls: the pool fills to its size only while no pod start
// holds it, take() moves a sandbox (bound namespace files) to the pod's directory, the taken one is
// the caller's, close() removes every unclaimed sandbox (CNI DEL with the pool's id, unmount, the
// directory) and also those an earlier pool left on disk. Everything lives in a temp dir it removes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SandboxPool, type PoolNetwork } from './sandbox-pool.js';
import { removePodNamespaces } from './netns.js';
import { findBinary, run } from './exec.js';

const canRun = process.getuid?.() === 0 && !!findBinary('unshare') && !!findBinary('nsenter');

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

async function poll(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fakeNetwork(): PoolNetwork & { adds: string[]; dels: string[] } {
  let n = 10;
  const net = {
    adds: [] as string[], dels: [] as string[],
    async setUp(p: { containerId: string; netns: string }) { net.adds.push(p.containerId); assert.ok(mounted(p.netns), 'ADD gets a bound network namespace'); return { ip: `10.99.0.${n++}` }; },
    async tearDown(p: { containerId: string }) { net.dels.push(p.containerId); },
  };
  return net;
}

test('the sandbox pool fills when idle, hands sandboxes over by rename, and removes what is left', { skip: !canRun && 'needs root and unshare' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-pool-test-'));
  const taken: string[] = [];
  t.after(async () => {
    for (const d of taken) await removePodNamespaces({ netns: join(d, 'net'), ipc: join(d, 'ipc'), uts: join(d, 'uts') }).catch(() => undefined);
    for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const m = l.split(' ')[4];
      if (m?.startsWith(`${dir}/`)) await run('umount', ['-l', m]).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const net = fakeNetwork();
  const pool = new SandboxPool({ dir, size: 2, network: () => net });

  // a pod start in progress: nothing is made
  pool.hold();
  pool.kick();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pool.size, 0);
  pool.release();
  await poll('two ready sandboxes', () => pool.size === 2);
  assert.equal(net.adds.length, 2);
  assert.ok(net.adds.every((id) => /^pool-[0-9a-f]{16}$/.test(id)));

  const dest = join(dir, 'pod-uid-1');
  const s = pool.take(dest);
  assert.ok(s);
  taken.push(dest);
  assert.deepEqual([s.netns, s.ipc, s.uts], [join(dest, 'net'), join(dest, 'ipc'), join(dest, 'uts')]);
  assert.match(s.ip, /^10\.99\.0\.\d+$/);
  for (const f of [s.netns, s.ipc, s.uts]) assert.ok(mounted(f), `${f} is a bound namespace at its new path`);
  assert.ok(!existsSync(join(dir, s.id)), 'the pool entry moved');
  // three distinct namespaces, not the host's
  const ns = (await run(findBinary('nsenter')!, [`--net=${s.netns}`, `--ipc=${s.ipc}`, `--uts=${s.uts}`, 'sh', '-c', 'readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts'])).stdout.trim().split('\n');
  assert.equal(ns.length, 3);
  assert.notEqual(ns[0], readlinkSync('/proc/self/ns/net'));
  assert.notEqual(ns[1], readlinkSync('/proc/self/ns/ipc'));
  // the pool refills after the take
  pool.kick();
  await poll('refilled', () => pool.size === 2);

  // a second pool on the same dir (a restarted agent) removes the first one's unclaimed sandboxes on its first fill
  const net2 = fakeNetwork();
  const pool2 = new SandboxPool({ dir, size: 1, network: () => net2 });
  pool2.kick();
  await poll('the new pool has one', () => pool2.size === 1);
  assert.equal(net2.dels.length, 2, 'CNI DEL for each stale sandbox, with its pool id');
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('pool-')).length, 1);

  await pool2.close();
  await pool.close(); // nothing of its own left on disk: a no-op
  assert.deepEqual(readdirSync(dir), ['pod-uid-1'], 'only the taken sandbox is left (its owner removes it)');
  assert.equal(pool2.take(join(dir, 'pod-uid-2')), undefined, 'a closed pool hands out nothing');
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(`${dir}/pool-`), 'no pool namespace stays mounted');
});
