// preflight() on this host (everything a node needs is installed here) and on a described host
// that lacks most things, where every failure must name the command that fixes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupInfo, formatPreflight, preflight } from './preflight.js';

const names = ['root', 'runc', 'conmon', 'cni-plugins', 'iptables/nft', 'iproute2', 'tar', 'cgroups', 'ip_forward', 'br_netfilter', 'overlayfs'];

test('this host: every check runs, and as root with the packages installed the result is ok', async () => {
  const r = await preflight();
  assert.deepEqual(r.checks.map((c) => c.name), names);
  const text = formatPreflight(r);
  for (const n of names) assert.match(text, new RegExp(`\\b${n.replace('/', '\\/')}\\b`));
  if (process.getuid?.() !== 0) return;
  assert.equal(r.ok, true, text);
  const runc = r.checks.find((c) => c.name === 'runc')!;
  assert.match(runc.detail, /^runc \d+\.\d+/);
  const cg = r.checks.find((c) => c.name === 'cgroups')!;
  assert.match(cg.detail, /^(v1|v2|v1 hybrid)/);
  const fwd = r.checks.find((c) => c.name === 'ip_forward')!;
  assert.equal(fwd.ok, true, 'ip_forward is reported, never a failure');
});

test('a host without the tools: each failure names what is missing and the command that installs it', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'kyb-preflight-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const bin = join(root, 'bin');
  await mkdir(bin);
  const script = async (name: string, body: string) => { await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`); await chmod(join(bin, name), 0o755); };
  await script('runc', 'echo "runc version 9.9.9"; echo "spec: 1.0.2"');
  await script('conmon', 'exit 1');
  await script('nft', 'echo "nftables v1.0.6 (Lester Gooch #5)"');
  await mkdir(join(root, 'proc/sys/net/ipv4'), { recursive: true });
  await mkdir(join(root, 'sys/fs/cgroup'), { recursive: true });
  await writeFile(join(root, 'sys/fs/cgroup/cgroup.controllers'), 'cpuset cpu io\n');
  await writeFile(join(root, 'proc/sys/net/ipv4/ip_forward'), '0\n');
  await writeFile(join(root, 'proc/filesystems'), 'nodev\tsysfs\n\text4\n');

  const r = await preflight({ fsRoot: root, path: bin, cniBinDirs: [join(root, 'cni')], uid: 1000 });
  assert.equal(r.ok, false);
  const by = Object.fromEntries(r.checks.map((c) => [c.name, c]));
  assert.deepEqual([by.runc!.ok, by.runc!.detail], [true, `runc 9.9.9 (${bin}/runc)`]);
  assert.equal(by.conmon!.ok, false);
  assert.equal(by.conmon!.fix, 'apt-get install --reinstall -y conmon');
  assert.equal(by['cni-plugins']!.fix, 'apt-get install -y containernetworking-plugins');
  assert.match(by['cni-plugins']!.detail, /missing bridge, host-local, loopback, portmap/);
  assert.equal(by['iptables/nft']!.ok, true, 'nft alone is enough');
  assert.match(by['iptables/nft']!.detail, /nft v1\.0\.6.*hostPort \(CNI portmap\) needs iptables/);
  assert.equal(by.iproute2!.fix, 'apt-get install -y iproute2');
  assert.equal(by.tar!.fix, 'apt-get install -y tar');
  assert.equal(by.root!.ok, false);
  assert.match(by.cgroups!.detail, /^v2; missing controllers memory, pids/);
  assert.match(by.cgroups!.fix!, /\+memory \+pids/);
  assert.deepEqual([by.ip_forward!.ok, by.ip_forward!.required], [true, false]);
  assert.match(by.ip_forward!.detail, /=0 \(the CNI bridge plugin sets it to 1/);
  assert.deepEqual([by.br_netfilter!.ok, by.br_netfilter!.required, by.br_netfilter!.fix], [false, false, 'modprobe br_netfilter']);
  assert.deepEqual([by.overlayfs!.ok, by.overlayfs!.required], [false, false]);

  const text = formatPreflight(r);
  assert.match(text, /^preflight: FAILED \(11 checks, 6 failed, 2 warnings\)/);
  assert.match(text, /FAIL {2}conmon .*\n +fix: apt-get install --reinstall -y conmon/);
  assert.match(text, /warn {2}br_netfilter/);
});

test('cgroup mode: v1, hybrid (cgroup2 at /sys/fs/cgroup/unified) and v2', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'kyb-cgroup-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'proc'), { recursive: true });
  await writeFile(join(root, 'proc/cgroups'), '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t4\t1\nmemory\t4\t76\t1\nhugetlb\t0\t4\t1\npids\t8\t4\t0\n');
  assert.deepEqual(await cgroupInfo(root), { mode: 'v1', controllers: ['cpu', 'memory'], unifiedControllers: [] });
  await mkdir(join(root, 'sys/fs/cgroup/unified'), { recursive: true });
  await writeFile(join(root, 'sys/fs/cgroup/unified/cgroup.controllers'), 'hugetlb\n');
  assert.deepEqual(await cgroupInfo(root), { mode: 'hybrid', controllers: ['cpu', 'memory'], unifiedControllers: ['hugetlb'] });
  await writeFile(join(root, 'sys/fs/cgroup/cgroup.controllers'), 'cpu memory pids\n');
  assert.deepEqual(await cgroupInfo(root), { mode: 'v2', controllers: ['cpu', 'memory', 'pids'], unifiedControllers: [] });
});
