import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrSet, parseIPv4CIDR } from './cidr-set.js';

test('hands out /24s of the cluster CIDR round-robin, skipping used ones, until none is left', () => {
  const s = new CidrSet('10.42.0.0/22', 24);
  assert.equal(s.size, 4);
  assert.equal(s.occupy('10.42.1.0/24'), true);
  assert.equal(s.allocateNext(), '10.42.0.0/24');
  assert.equal(s.allocateNext(), '10.42.2.0/24');
  s.release('10.42.0.0/24');
  // round-robin: the range just released is not the next one handed out
  assert.equal(s.allocateNext(), '10.42.3.0/24');
  assert.equal(s.allocateNext(), '10.42.0.0/24');
  assert.equal(s.allocateNext(), undefined);
  assert.equal(s.free, 0);
});

test('occupy and release cover every range a CIDR overlaps; CIDRs outside are ignored', () => {
  const s = new CidrSet('10.42.0.0/16', 24);
  assert.equal(s.occupy('10.42.4.0/23'), true);
  assert.ok(s.isUsed('10.42.4.0/24') && s.isUsed('10.42.5.0/24'));
  assert.equal(s.free, 254);
  assert.equal(s.occupy('10.43.0.0/24'), false);
  assert.equal(s.occupy('fd00::/64'), false);
  assert.equal(s.occupy('10.0.0.0/8'), true, 'a CIDR containing the whole cluster CIDR marks everything');
  assert.equal(s.free, 0);
  s.release('10.42.5.0/24');
  assert.equal(s.allocateNext(), '10.42.5.0/24');
});

test('configuration errors', () => {
  assert.throws(() => new CidrSet('10.42.0.1/16', 24), /host bits are set/);
  assert.throws(() => new CidrSet('10.42.0.0/16', 12), /mask size 12/);
  assert.throws(() => new CidrSet('10.0.0.0/8', 26), /more than 2\^16/);
  assert.throws(() => parseIPv4CIDR('10.42.0.0'), /invalid IPv4 CIDR/);
  assert.equal(new CidrSet('10.0.0.0/8', 24).size, 65536);
});
