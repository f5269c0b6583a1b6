// hostInfo() and the pressure signals, on this host and on a described one (fsRoot) so the values
// can be checked exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskPressure, goArch, hostInfo, hostInfoSync, internalIP, memoryPressure, pidPressure, subtractReserved } from './host-info.js';

async function fakeHost(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'kyb-host-'));
  const put = async (p: string, text: string) => { await mkdir(join(root, p, '..'), { recursive: true }); await writeFile(join(root, p), text); };
  await put('proc/meminfo', 'MemTotal:       24683584 kB\nMemFree:        1000 kB\nMemAvailable:      51200 kB\n');
  await put('proc/sys/kernel/random/boot_id', 'b00t-1d\n');
  await put('proc/sys/kernel/pid_max', '1000\n');
  await put('proc/loadavg', '0.10 0.20 0.30 3/950 12345\n');
  await put('proc/net/route', 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
    'br0\t00002A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
    'wan1\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n' +
    'wan0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n');
  await put('etc/machine-id', '3d1219c7c4c5404aaa1f6d2a48adfda4\n');
  await put('etc/os-release', 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  await put('sys/class/dmi/id/product_uuid', '9B812F7A-770E-4F2B-A209-994A14F7F6AB\n');
  await put('sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages', '10\n');
  return root;
}

const iface = (address: string, family: 'IPv4' | 'IPv6' = 'IPv4', internal = false): os.NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null } as os.NetworkInterfaceInfo);

test('capacity, allocatable, addresses and nodeInfo from the host files', async (t) => {
  const root = await fakeHost();
  t.after(() => rm(root, { recursive: true, force: true }));
  const interfaces = { lo: [iface('127.0.0.1', 'IPv4', true)], br0: [iface('10.42.0.1')], wan0: [iface('fd00::2', 'IPv6'), iface('192.0.2.2')] };
  const h = await hostInfo({ dataDir: join(root, 'not/yet/made'), fsRoot: root, hostname: 'node-a', interfaces, runtimeVersion: '1.1.5+ds1', reserved: { cpu: '250m', memory: '1Gi' } });
  assert.equal(h.capacity.cpu, String(os.availableParallelism()));
  assert.equal(h.capacity.memory, '24683584Ki');
  assert.match(h.capacity['ephemeral-storage']!, /^\d+Ki$/);
  assert.equal(h.capacity.pods, '110');
  assert.equal(h.capacity['hugepages-2Mi'], '20Mi');
  assert.equal(h.capacity['hugepages-1Gi'], '0');
  assert.equal(h.allocatable.memory, '23635008Ki');
  assert.equal(h.allocatable.cpu, `${os.availableParallelism() * 1000 - 250}m`);
  assert.equal(h.allocatable.pods, '110');
  assert.equal(h.allocatable['ephemeral-storage'], h.capacity['ephemeral-storage']);
  // the default route with the lowest metric is wan0, not the pod bridge listed first
  assert.deepEqual(h.addresses, [{ type: 'InternalIP', address: '192.0.2.2' }, { type: 'Hostname', address: 'node-a' }]);
  assert.deepEqual(h.nodeInfo, {
    machineID: '3d1219c7c4c5404aaa1f6d2a48adfda4', systemUUID: '9b812f7a-770e-4f2b-a209-994a14f7f6ab', bootID: 'b00t-1d',
    kernelVersion: os.release(), osImage: 'Debian GNU/Linux 12 (bookworm)', containerRuntimeVersion: 'runc://1.1.5+ds1',
    kubeletVersion: 'v1.32.0-kyb', kubeProxyVersion: 'v1.32.0-kyb', operatingSystem: 'linux', architecture: goArch(),
  });
});

test('InternalIP falls back to the first non-loopback IPv4, then 127.0.0.1', () => {
  const none = '/nonexistent-root';
  assert.equal(internalIP({ fsRoot: none, interfaces: { lo: [iface('127.0.0.1', 'IPv4', true)], eth1: [iface('fd00::1', 'IPv6')], eth2: [iface('198.51.100.7')] } }), '198.51.100.7');
  assert.equal(internalIP({ fsRoot: none, interfaces: { lo: [iface('127.0.0.1', 'IPv4', true)] } }), '127.0.0.1');
});

test('reservations never take allocatable below zero', () => {
  assert.deepEqual(subtractReserved({ cpu: '2', memory: '1Gi', pods: '110' }, { cpu: '3', memory: '512Mi' }), { cpu: '0', memory: '512Mi', pods: '110' });
});

test('this host: real values, and the synchronous form agrees', async () => {
  const a = await hostInfo({ dataDir: tmpdir() });
  const b = hostInfoSync({ dataDir: tmpdir() });
  assert.deepEqual(b, a);
  assert.match(a.capacity.memory!, /^\d+Ki$/);
  assert.ok(['amd64', 'arm64'].includes(a.nodeInfo.architecture) || a.nodeInfo.architecture.length > 0);
  assert.match(a.nodeInfo.kernelVersion, /^\d+\.\d+/);
  assert.match(a.nodeInfo.bootID, /^[0-9a-f-]{36}$/);
});

test('pressure signals: memory, disk and PIDs against their thresholds, with upstream reasons', async (t) => {
  const root = await fakeHost();
  t.after(() => rm(root, { recursive: true, force: true }));
  // 50Mi available
  const mem = memoryPressure({ fsRoot: root });
  assert.deepEqual([mem.pressure, mem.reason, mem.message], [true, 'KubeletHasInsufficientMemory', 'kubelet has insufficient memory available']);
  assert.match(mem.detail, /memory available 50Mi, threshold 100Mi/);
  assert.equal(memoryPressure({ fsRoot: root, threshold: '10Mi' }).pressure, false);
  // 950 of 1000 pids in use: 5% free
  const pid = pidPressure({ fsRoot: root });
  assert.deepEqual([pid.pressure, pid.reason], [true, 'KubeletHasInsufficientPID']);
  assert.equal(pidPressure({ fsRoot: root, minFreePercent: 1 }).reason, 'KubeletHasSufficientPID');
  // the disk: a threshold no disk can meet, then one every disk meets
  const full = diskPressure(root, { threshold: '1Ei' });
  assert.deepEqual([full.pressure, full.reason, full.message], [true, 'KubeletHasDiskPressure', 'kubelet has disk pressure']);
  const fine = diskPressure(root, { minFreePercent: 0, minFreeInodesPercent: 0 });
  assert.deepEqual([fine.pressure, fine.reason], [false, 'KubeletHasNoDiskPressure']);
  // this host, defaults
  assert.equal(typeof memoryPressure().pressure, 'boolean');
});
