// route_localnet bookkeeping against a stand-in sysctl file in a temporary directory: set to 1 by
// the first instance that needs it, restored only by the last one out, and only if we changed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteLocalnet } from './route-localnet.js';

function setup(initial: string): { dir: string; sysctl: string; state: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-localnet-'));
  const sysctl = join(dir, 'route_localnet');
  writeFileSync(sysctl, `${initial}\n`);
  return { dir, sysctl, state: join(dir, 'state'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('the last instance out restores the value the first one found', async () => {
  const s = setup('0');
  try {
    const a = new RouteLocalnet(s.state, s.sysctl);
    await a.ensure('nftables-one');
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '1');
    await a.ensure('iptables-two');
    await a.ensure('nftables-one'); // idempotent
    assert.deepEqual(await a.others('nftables-one'), ['iptables-two']);
    assert.equal(await a.release('nftables-one'), false);
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '1', 'still needed by the other');
    assert.equal(await a.release('iptables-two'), true);
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '0');
    assert.ok(!existsSync(s.state), 'state directory removed');
    assert.equal(await a.release('iptables-two'), false, 'releasing twice is harmless');
  } finally { s.done(); }
});

test('a value that was already 1 is left alone', async () => {
  const s = setup('1');
  try {
    const a = new RouteLocalnet(s.state, s.sysctl);
    await a.ensure('x');
    assert.equal(await a.release('x'), false);
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '1');
  } finally { s.done(); }
});

test('a reset behind our back is repaired by the next ensure, and still restored at the end', async () => {
  const s = setup('0');
  try {
    const a = new RouteLocalnet(s.state, s.sysctl);
    await a.ensure('x');
    writeFileSync(s.sysctl, '0\n');
    await a.ensure('x');
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '1');
    assert.equal(await a.release('x'), true);
    assert.equal(readFileSync(s.sysctl, 'utf8').trim(), '0');
  } finally { s.done(); }
});
