// CniNetwork with the real CNI plugins (needs root, /usr/lib/cni and iproute2; skipped otherwise):
// two pod namespaces on a fresh bridge with a random name and a random 10.<200-250>.x.0/24 pod CIDR,
// reachability host → pod, pod → pod and through a hostPort, idempotent DEL, and a cleanup that
// leaves no bridge, namespace, IPAM state or iptables rule of ours. All traffic stays on this host:
// the test connects only to the addresses it created and to 127.0.0.1.
// Plugin failures and timeouts are tested with fake plugins (no root needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniError, CniNetwork, parsePodCIDR } from './cni.js';
import { createNetns, deleteNetns } from './netns.js';
import { findBinary, run } from './exec.js';

const isRoot = process.getuid?.() === 0;
const havePlugins = ['bridge', 'host-local', 'loopback', 'portmap'].every((p) => existsSync(`/usr/lib/cni/${p}`) || existsSync(`/opt/cni/bin/${p}`));
const canRun = isRoot && havePlugins && !!findBinary('ip') && !!findBinary('iptables-save') && existsSync('/bin/busybox');

/** Connects to host:port and returns what the server sends before closing; retries until the deadline. */
async function fetchText(host: string, port: number, ms = 5000): Promise<string> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const s = connect({ host, port, timeout: 1000 });
        let data = '';
        s.on('data', (b) => { data += b.toString(); });
        s.on('end', () => resolve(data));
        s.on('timeout', () => { s.destroy(); reject(new Error('timeout')); });
        s.on('error', reject);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`no answer from ${host}:${port}: ${String(last)}`);
}

/** A TCP server inside the netns (a node child via `ip netns exec`) answering `text` to every connection. */
async function serveIn(ns: string, port: number, text: string): Promise<ChildProcess> {
  const script = `require('net').createServer((c)=>c.end(${JSON.stringify(text)})).listen(${port},'0.0.0.0',()=>console.log('listening'))`;
  const child = spawn(findBinary('ip')!, ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('listener did not start')), 10_000);
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('listening')) { clearTimeout(t); resolve(); } });
    child.on('exit', (c) => { clearTimeout(t); reject(new Error(`listener exited ${c}`)); });
  });
  return child;
}

/** nft's tables, e.g. ['ip nat', 'ip6 nat']. */
async function nftTables(): Promise<string[]> {
  const nft = findBinary('nft');
  if (!nft) return [];
  return (await run(nft, ['list', 'tables'])).stdout.split('\n').filter((l) => l.startsWith('table ')).map((l) => l.slice(6).trim());
}

/** Deletes an nft table that holds only empty base chains (what iptables-nft leaves once its rules are gone). */
async function deleteIfEmpty(table: string): Promise<void> {
  const nft = findBinary('nft')!;
  const r = await run(nft, ['-j', 'list', 'table', ...table.split(' ')]);
  if (r.code !== 0) return;
  const items = (JSON.parse(r.stdout) as { nftables: Array<Record<string, { name?: string }>> }).nftables;
  const builtin = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
  const busy = items.some((i) => i.rule || i.set || i.map || (i.chain && !builtin.has(i.chain.name ?? '')));
  if (!busy) await run(nft, ['delete', 'table', ...table.split(' ')]);
}

function inSubnet(ip: string, cidr: string): boolean {
  const { network } = parsePodCIDR(cidr);
  return ip.split('.').slice(0, 3).join('.') === network.split('.').slice(0, 3).join('.');
}

test('two pods on a fresh bridge: addresses, host→pod, pod→pod, hostPort, idempotent DEL, cleanup', { skip: !canRun && 'needs root, iproute2, iptables, busybox-static and the CNI plugins' }, async (t) => {
  const hex = randomBytes(3).toString('hex');
  const bridge = `kybt${hex}`;
  const networkName = `kybt-${hex}`;
  const podCIDR = `10.${randomInt(200, 251)}.${randomInt(0, 256)}.0/24`;
  const gateway = parsePodCIDR(podCIDR).gateway;
  const hostPort = randomInt(20000, 40000);
  const stateDir = await mkdtemp(join(tmpdir(), 'kyb-cni-'));
  const nsA = `kybt-${hex}-a`;
  const nsB = `kybt-${hex}-b`;
  const nsC = `kybt-${hex}-c`;
  const ipForwardBefore = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  const tablesBefore = await nftTables();
  const children: ChildProcess[] = [];
  const net = new CniNetwork({ networkName, bridge, podCIDR, stateDir, timeoutMs: 15_000 });
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await net.cleanup().catch(() => {});
    await deleteNetns(nsA).catch(() => {});
    await deleteNetns(nsB).catch(() => {});
    await deleteNetns(nsC).catch(() => {});
    await run(findBinary('ip')!, ['link', 'delete', bridge]).catch(() => {});
    await rm(stateDir, { recursive: true, force: true });
    // the bridge plugin (isGateway) turned forwarding on; give the host back what it had
    await writeFile('/proc/sys/net/ipv4/ip_forward', ipForwardBefore).catch(() => {});
    // iptables-nft (run by portmap) creates the nat tables; drop them again if we brought them and they are empty
    for (const tb of ['ip nat', 'ip6 nat']) if (!tablesBefore.includes(tb)) await deleteIfEmpty(tb).catch(() => {});
  });

  const pathA = await createNetns(nsA);
  assert.equal(pathA, `/run/netns/${nsA}`);
  assert.equal(await createNetns(nsA), pathA, 'adding an existing netns returns its path');
  const pathB = await createNetns(nsB);

  const podA = { containerId: `a${hex}`, netns: pathA, namespace: 'default', podName: 'web-a', podUID: `uid-a-${hex}` };
  const podB = { containerId: `b${hex}`, netns: pathB, namespace: 'default', podName: 'web-b', podUID: `uid-b-${hex}` };
  const t0 = performance.now();
  const [a, b] = await Promise.all([
    (async () => { const s = performance.now(); const r = await net.setUp({ ...podA, portMappings: [{ hostPort, containerPort: 8080, protocol: 'tcp' }] }); return { ...r, ms: performance.now() - s }; })(),
    (async () => { const s = performance.now(); const r = await net.setUp(podB); return { ...r, ms: performance.now() - s }; })(),
  ]);
  const bothMs = performance.now() - t0;
  assert.ok(inSubnet(a.ip, podCIDR) && inSubnet(b.ip, podCIDR), `${a.ip}, ${b.ip} in ${podCIDR}`);
  assert.notEqual(a.ip, b.ip);
  assert.notEqual(a.ip, gateway);
  assert.equal(a.gateway, gateway);
  assert.equal(b.gateway, gateway);
  assert.deepEqual(await net.status(podA.containerId), { ip: a.ip, gateway });

  // setUp again with the same inputs: same address, nothing redone
  // steady state: one more pod once the bridge exists, no hostPort
  const podC = { containerId: `c${hex}`, netns: await createNetns(nsC), namespace: 'default', podName: 'web-c', podUID: `uid-c-${hex}` };
  let s0 = performance.now();
  const c = await net.setUp(podC);
  const cUpMs = performance.now() - s0;
  assert.ok(inSubnet(c.ip, podCIDR) && c.ip !== a.ip && c.ip !== b.ip);
  s0 = performance.now();
  await net.tearDown(podC);
  const cDownMs = performance.now() - s0;
  await deleteNetns(nsC);

  const again = await net.setUp({ ...podA, portMappings: [{ hostPort, containerPort: 8080, protocol: 'tcp' }] });
  assert.equal(again.ip, a.ip);

  const srv = await serveIn(nsA, 8080, `hello from ${hex}`);
  children.push(srv);
  assert.equal(await fetchText(a.ip, 8080), `hello from ${hex}`, 'host → pod IP');
  const fromB = await run(findBinary('ip')!, ['netns', 'exec', nsB, '/bin/busybox', 'nc', '-w', '3', a.ip, '8080'], { timeoutMs: 10_000 });
  assert.equal(fromB.stdout, `hello from ${hex}`, `pod B → pod A (${fromB.stderr})`);
  // hostPort through portmap: at the bridge address and at 127.0.0.1 (portmap's snat sets
  // route_localnet on the bridge, which makes the loopback path work)
  assert.equal(await fetchText(gateway, hostPort), `hello from ${hex}`, 'gateway:hostPort → pod');
  assert.equal(await fetchText('127.0.0.1', hostPort), `hello from ${hex}`, '127.0.0.1:hostPort → pod');
  const withRules = (await run(findBinary('iptables-save')!, ['-t', 'nat'])).stdout;
  assert.match(withRules, new RegExp(`dnat name: \\\\"${networkName}\\\\"`));

  const td: number[] = [];
  for (const p of [podA, podB, podA, podB]) {
    const s = performance.now();
    await net.tearDown(p);
    td.push(performance.now() - s);
  }
  assert.equal(await net.status(podA.containerId), undefined);
  const link = await run(findBinary('ip')!, ['-n', nsA, 'link', 'show', 'eth0']);
  assert.notEqual(link.code, 0, 'eth0 is gone from the pod namespace after DEL');
  await assert.rejects(fetchText('127.0.0.1', hostPort, 300));
  // a DEL for a sandbox whose namespace is already gone is fine too
  await deleteNetns(nsB);
  await net.tearDown(podB);

  t.diagnostic(`setUp: pod with hostPort ${a.ms.toFixed(1)} ms, pod without ${b.ms.toFixed(1)} ms (both concurrently ${bothMs.toFixed(1)} ms); ` +
    `tearDown: ${td.map((x) => x.toFixed(1)).join(' / ')} ms (A with portmap, B, A again, B again); ` +
    `third pod on the existing bridge: setUp ${cUpMs.toFixed(1)} ms, tearDown ${cDownMs.toFixed(1)} ms`);

  const hostportBefore = /CNI-HOSTPORT-DNAT -/.test(withRules.split('\n').filter((l) => !l.includes(networkName)).join('\n'));
  const c0 = performance.now();
  await net.cleanup();
  t.diagnostic(`cleanup: ${(performance.now() - c0).toFixed(1)} ms`);
  await deleteNetns(nsA);
  await deleteNetns(nsA); // idempotent

  assert.notEqual((await run(findBinary('ip')!, ['link', 'show', bridge])).code, 0, 'bridge deleted');
  assert.ok(!existsSync(`/run/netns/${nsA}`) && !existsSync(`/run/netns/${nsB}`), 'namespaces deleted');
  await assert.rejects(stat(join(stateDir, 'ipam', networkName)), 'host-local state removed');
  assert.deepEqual((await readdir(join(stateDir, 'results'))).filter((n) => n.startsWith(networkName)), []);
  const save = (await run(findBinary('iptables-save')!, [])).stdout;
  for (const needle of [networkName, bridge, podCIDR, a.ip, `--dport ${hostPort}`]) assert.ok(!save.includes(needle), `iptables still mentions ${needle}:\n${save}`);
  if (!hostportBefore && !/dnat name:/.test(save)) assert.ok(!save.includes('CNI-HOSTPORT'), `shared portmap chains left behind:\n${save}`);
});

test('plugin errors name the plugin and carry its msg; a hung plugin is killed at the timeout', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kyb-fakecni-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const failing = join(dir, 'failing');
  const hanging = join(dir, 'hanging');
  for (const d of [failing, hanging]) await mkdir(d);
  const script = async (p: string, body: string) => { await writeFile(p, `#!/bin/sh\n${body}\n`); await chmod(p, 0o755); };
  await script(join(failing, 'loopback'), 'cat >/dev/null; echo \'{"cniVersion":"1.0.0","interfaces":[],"ips":[]}\'');
  await script(join(failing, 'bridge'), 'cat >/dev/null; if [ "$CNI_COMMAND" = ADD ]; then echo \'{"cniVersion":"1.0.0","code":7,"msg":"no bridge for you","details":"because"}\'; exit 1; fi; exit 0');
  await script(join(hanging, 'loopback'), 'cat >/dev/null; if [ "$CNI_COMMAND" = ADD ]; then sleep 5; fi; exit 0');
  await script(join(hanging, 'bridge'), 'cat >/dev/null; echo \'{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"10.250.0.9/24"}]}\'');

  const pod = { containerId: 'c1', netns: '/run/netns/none', namespace: 'ns', podName: 'p', podUID: 'u' };
  const n1 = new CniNetwork({ binDirs: [failing], networkName: 'fake', bridge: 'kybfake0', podCIDR: '10.250.0.0/24', stateDir: join(dir, 's1') });
  const err = await n1.setUp(pod).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof CniError);
  assert.equal(err.plugin, 'bridge');
  assert.equal(err.code, 7);
  assert.match(err.message, /CNI plugin bridge ADD .*failed: no bridge for you: because \(code 7\)/);
  // the failed ADD was undone (DEL of the whole list) and left no cache behind
  assert.equal(await n1.status('c1'), undefined);

  const n2 = new CniNetwork({ binDirs: [hanging], networkName: 'fake', bridge: 'kybfake0', podCIDR: '10.250.0.0/24', stateDir: join(dir, 's2'), timeoutMs: 300 });
  const s = performance.now();
  await assert.rejects(n2.setUp(pod), /CNI plugin loopback ADD .*timed out after 300 ms/);
  assert.ok(performance.now() - s < 3000, 'did not wait for the hung plugin (or its child) to finish');

  const n3 = new CniNetwork({ binDirs: [dir], networkName: 'fake', bridge: 'kybfake0', podCIDR: '10.250.0.0/24', stateDir: join(dir, 's3') });
  await assert.rejects(n3.setUp(pod), /CNI plugin loopback not found in .*apt-get install -y containernetworking-plugins/);
});

test('configuration is checked up front', () => {
  const base = { networkName: 'n', bridge: 'br0', podCIDR: '10.42.0.0/24', stateDir: '/tmp/x' };
  assert.throws(() => new CniNetwork({ ...base, bridge: 'a-very-long-bridge-name' }), /invalid bridge name/);
  assert.throws(() => new CniNetwork({ ...base, podCIDR: '10.42.0.1/24' }), /host bits are set/);
  assert.throws(() => new CniNetwork({ ...base, podCIDR: 'fd00::/64' }), /not an IPv4 CIDR/);
  assert.equal(new CniNetwork(base).gateway, '10.42.0.1');
  assert.deepEqual(parsePodCIDR('10.42.7.0/24'), { subnet: '10.42.7.0/24', network: '10.42.7.0', prefix: 24, gateway: '10.42.7.1' });
});
