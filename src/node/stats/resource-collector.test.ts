// The collector over fake cgroup v1 and v2 trees and a fake /proc in a temp dir: CPU as the rate
// between the last two samples, working set as usage minus inactive file pages, containers missing
// until their second sample, dropped once their cgroup is gone, and a restarted container (new id)
// starting over.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResourceCollector, type ContainerRef } from './resource-collector.js';
import { CgroupReader, readNodeSample } from './cgroup-reader.js';

const base = mkdtempSync(join(tmpdir(), 'kyb-stats-'));
after(() => rmSync(base, { recursive: true, force: true }));

function put(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

const ref = (pod: string, container: string, id: string): ContainerRef => ({
  podNamespace: 'default', podName: pod, podUID: `uid-${pod}`, containerName: container, containerId: id,
  cgroupsPath: `/kyb/poduid-${pod}/${id}`,
});

function fakeProc(dir: string, busyJiffies: number, memTotalKb: number, memAvailKb: number): void {
  // user nice system idle iowait irq softirq steal guest guest_nice
  put(join(dir, 'stat'), `cpu  ${busyJiffies} 0 0 99999 7 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n`);
  put(join(dir, 'meminfo'), `MemTotal:       ${memTotalKb} kB\nMemFree:          100 kB\nMemAvailable:   ${memAvailKb} kB\n`);
}

function v1Container(root: string, r: ContainerRef, cpuNs: number, usage: number, inactiveFile: number): void {
  put(join(root, 'cpu,cpuacct', r.cgroupsPath, 'cpuacct.usage'), `${cpuNs}\n`);
  put(join(root, 'memory', r.cgroupsPath, 'memory.usage_in_bytes'), `${usage}\n`);
  put(join(root, 'memory', r.cgroupsPath, 'memory.stat'), `cache 1\nrss 2\ninactive_file 5\ntotal_cache 9\ntotal_inactive_file ${inactiveFile}\ntotal_active_file 3\n`);
}

function v2Container(root: string, r: ContainerRef, cpuNs: number, usage: number, inactiveFile: number): void {
  put(join(root, r.cgroupsPath, 'cpu.stat'), `usage_usec ${cpuNs / 1000}\nuser_usec 1\nsystem_usec 2\n`);
  put(join(root, r.cgroupsPath, 'memory.current'), `${usage}\n`);
  put(join(root, r.cgroupsPath, 'memory.stat'), `anon 100\nfile 200\nactive_file 7\ninactive_file ${inactiveFile}\n`);
}

for (const version of ['v1', 'v2'] as const) {
  test(`cgroup ${version}: CPU rate over the window, working set, two samples needed`, () => {
    const root = join(base, version);
    const proc = join(base, `proc-${version}`);
    if (version === 'v2') put(join(root, 'cgroup.controllers'), 'cpu memory pids\n');
    else put(join(root, 'cpu,cpuacct', 'cpuacct.usage'), '0\n');
    const write = version === 'v1' ? v1Container : v2Container;
    const a = ref('web-1', 'web', 'aaa');
    const b = ref('web-1', 'sidecar', 'bbb');
    let refs = [a, b];
    let now = Date.parse('2026-12-01T10:00:00Z');
    const c = new ResourceCollector({ nodeName: 'n1', containers: () => refs, cgroupRoot: root, procRoot: proc, now: () => now, resolutionMs: 1000 });
    assert.equal(c.cgroupVersion, version);

    write(root, a, 1_000_000_000, 10 << 20, 2 << 20);
    write(root, b, 5_000_000_000, 4096, 8192); // more inactive than usage: clamped to 0
    fakeProc(proc, 1000, 2_000_000, 1_500_000);
    let r = c.sample();
    assert.deepEqual(r.pods, [], 'nothing after one sample');
    assert.equal(r.node, undefined);

    now += 2000;
    write(root, a, 2_000_000_000, 12 << 20, 2 << 20); // 1 s of CPU in 2 s: half a core
    write(root, b, 5_001_000_000, 4096, 0); // 1 ms in 2 s: 500000 nanocores
    fakeProc(proc, 1300, 2_000_000, 1_400_000); // 300 jiffies = 3 s in 2 s: 1.5 cores
    r = c.sample();
    assert.equal(r.nodeName, 'n1');
    assert.equal(r.resolutionMs, 1000);
    assert.deepEqual(r.pods, [{
      namespace: 'default', name: 'web-1', uid: 'uid-web-1', containers: [
        { name: 'web', usageNanoCores: 500_000_000, workingSetBytes: 10 << 20, timestamp: '2026-12-01T10:00:02.000Z', windowMs: 2000 },
        { name: 'sidecar', usageNanoCores: 500_000, workingSetBytes: 4096, timestamp: '2026-12-01T10:00:02.000Z', windowMs: 2000 },
      ],
    }]);
    assert.deepEqual(r.node, { usageNanoCores: 1_500_000_000, workingSetBytes: 600_000 * 1024, timestamp: '2026-12-01T10:00:02.000Z', windowMs: 2000 });

    // the sidecar restarted (new id): it starts over; the old cgroup is gone
    const b2 = ref('web-1', 'sidecar', 'ccc');
    rmSync(join(root, version === 'v1' ? 'cpu,cpuacct' : '', b.cgroupsPath), { recursive: true });
    refs = [a, b, b2];
    write(root, b2, 10_000_000, 8192, 0);
    now += 1000;
    write(root, a, 2_250_000_000, 12 << 20, 4 << 20);
    r = c.sample();
    assert.deepEqual(r.pods.map((p) => p.containers.map((x) => [x.name, x.usageNanoCores, x.workingSetBytes, x.windowMs])), [[['web', 250_000_000, 8 << 20, 1000]]]);
    now += 1000;
    write(root, b2, 110_000_000, 8192, 0);
    r = c.sample();
    assert.deepEqual(r.pods[0]!.containers.map((x) => [x.name, x.usageNanoCores]), [['web', 0], ['sidecar', 100_000_000]]);
    assert.equal(c.resourceMetrics(), r);
  });
}

test('a cgroup v1 host with cpuacct in its own hierarchy (as this one)', () => {
  const root = join(base, 'v1-split');
  const r = ref('p', 'c', 'ddd');
  put(join(root, 'cpuacct', 'cpuacct.usage'), '0\n');
  put(join(root, 'cpuacct', r.cgroupsPath, 'cpuacct.usage'), '42\n');
  put(join(root, 'memory', r.cgroupsPath, 'memory.usage_in_bytes'), '8192\n');
  const reader = new CgroupReader(root);
  assert.equal(reader.version, 'v1');
  assert.deepEqual(reader.read(r.cgroupsPath), { cpuNs: 42, workingSetBytes: 8192 }, 'no memory.stat: nothing subtracted');
  assert.equal(reader.read('/no/such/cgroup'), undefined);
});

test('the real host: the node sample and this process cgroup read', () => {
  const n = readNodeSample();
  assert.ok(n && n.cpuNs > 0 && n.workingSetBytes > 0);
  const reader = new CgroupReader();
  const s = reader.read('/');
  assert.ok(s && s.cpuNs > 0, `root cgroup readable (${reader.version})`);
});

test('run() samples every period until aborted', async () => {
  const root = join(base, 'run');
  put(join(root, 'cgroup.controllers'), '');
  const r = ref('p', 'c', 'eee');
  v2Container(root, r, 1000, 4096, 0);
  const c = new ResourceCollector({ nodeName: 'n', containers: () => [r], cgroupRoot: root, resolutionMs: 20 });
  const ac = new AbortController();
  const done = c.run(ac.signal);
  const deadline = Date.now() + 5000;
  while (c.rounds < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  ac.abort();
  await done;
  assert.ok(c.rounds >= 3);
  assert.equal(c.resourceMetrics().pods[0]?.containers[0]?.workingSetBytes, 4096);
});
