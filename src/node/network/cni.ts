// Pod networking with the standard CNI plugins, exec'd as the CNI spec (1.0.0) describes (forked by
// the small helper shell of exec.ts runFast(), not by the agent process itself):
// the network configuration on stdin, CNI_COMMAND / CNI_CONTAINERID / CNI_NETNS / CNI_IFNAME /
// CNI_ARGS / CNI_PATH in the environment, the result (or an error {code,msg,details}) as JSON on
// stdout. No libcni, no config files in /etc/cni: the agent owns one network, built here.
//
// The network of a node is a chain of plugins (what a conflist would say):
//   loopback  brings up `lo` in the pod's namespace (its own one-plugin network, as CRI runtimes do)
//   bridge    a veth pair from the pod's eth0 to a Linux bridge whose address is the pod CIDR's .1
//             (isGateway), hairpinMode on (a pod can reach itself through a Service VIP), and
//             ipMasq OFF: pod traffic leaving the node is not masqueraded, so nothing a test does
//             can reach off-host networks through NAT (Service/egress masquerading is the proxy's job)
//   host-local (the bridge's IPAM) hands out addresses from the pod CIDR; its dataDir lives in
//             stateDir/ipam. It takes a file lock per network itself, so concurrent ADDs are safe.
//   portmap   hostPort DNAT (only when the pod asks for host ports), with snat on, which also sets
//             route_localnet on the bridge so 127.0.0.1:<hostPort> works.
// Chaining as the spec says: each plugin gets its own config plus the list's name and cniVersion,
// runtimeConfig for the capabilities it declares, and prevResult = the previous plugin's result.
// ADD goes forward; DEL goes in reverse with the cached final ADD result as prevResult.
//
// The cache (stateDir/results/<network>-<containerId>-eth0.json) is written BEFORE the first plugin
// runs (the plugin list, without results) and again after ADD with the final result, so a DEL after
// a crash knows which plugins to undo; tearDown deletes it last. A failed ADD is undone at once.
// DEL is idempotent in every plugin (rc 0 again and when the netns is gone), so tearDown is too.
//
// Traps this file handles (see runtime-notes §2): host-local hands out addresses round-robin, so the
// pod IP is always read from the result; the bridge outlives its last pod (cleanup() deletes it);
// portmap leaves its CNI-HOSTPORT-* base chains and hooks behind after the last DEL (cleanup()
// removes them when nothing else uses them); the bridge plugin with isGateway sets
// net.ipv4.ip_forward=1 and nothing here sets it back.
//
// Concurrency: host-local locks itself; two first ADDs racing to create the bridge and its address
// can collide in the bridge plugin, so ADDs wait for the first one of a network to finish; portmap
// invocations are serialized process-wide (its base chains are shared by all networks and it checks
// and creates them without a lock); calls for one container are serialized.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, run, runFast, toolPath } from './exec.js';

export interface PortMapping { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp'; hostIP?: string }

export interface CniOptions {
  /** where the plugin binaries are (default ['/usr/lib/cni', '/opt/cni/bin']) */
  binDirs?: string[];
  /** the CNI network name (letters, digits, '_', '.', '-') */
  networkName: string;
  /** the Linux bridge name (at most 15 characters) */
  bridge: string;
  /** the node's pod CIDR, e.g. 10.42.0.0/24; the bridge (gateway) gets the first address */
  podCIDR: string;
  /** host-local's dataDir (stateDir/ipam) and the cached ADD results (stateDir/results) */
  stateDir: string;
  mtu?: number;
  /** a plugin still running after this long is killed and the call fails (default 20 s) */
  timeoutMs?: number;
}

export interface SandboxRef {
  /** the sandbox's id (CNI_CONTAINERID): letters, digits, '_', '.', '-' */
  containerId: string;
  /** the netns path, e.g. /run/netns/<name> */
  netns: string;
  namespace: string;
  podName: string;
  podUID: string;
}

export interface PodNetwork { ip: string; gateway: string }

/** A plugin failed: names the plugin and the command, and carries the plugin's error code and msg. */
export class CniError extends Error {
  constructor(
    message: string,
    readonly plugin: string,
    readonly command: string,
    readonly code?: number,
    readonly details?: string,
  ) {
    super(message);
    this.name = 'CniError';
  }
}

type Json = Record<string, unknown>;

interface CniResult {
  cniVersion?: string;
  interfaces?: Array<{ name?: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ interface?: number; address: string; gateway?: string }>;
  routes?: unknown[];
  dns?: unknown;
}

interface CacheEntry {
  kind: 'kyb-cni-cache';
  version: 1;
  network: string;
  containerId: string;
  netns: string;
  ifName: string;
  cniArgs: string;
  /** the chain after loopback, without prevResult */
  plugins: Json[];
  /** the final ADD result; absent while ADD is in progress (or after it failed part-way) */
  result?: CniResult;
}

const CNI_VERSION = '1.0.0';
const IFNAME = 'eth0';
const validId = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const validNetworkName = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A promise-chain mutex. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** One lock per key, dropped when idle. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return next;
  }
}

/** portmap edits shared iptables chains without a lock of its own: one at a time per process. */
const portmapLock = new Mutex();

function ipv4ToInt(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses an IPv4 CIDR; throws unless the address is the network address. */
export function parsePodCIDR(cidr: string): { subnet: string; network: string; prefix: number; gateway: string } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`podCIDR ${JSON.stringify(cidr)} is not an IPv4 CIDR (e.g. 10.42.0.0/24)`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new Error(`podCIDR ${cidr}: prefix length must be between 8 and 30`);
  const addr = ipv4ToInt(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (addr & mask) >>> 0;
  if (net !== addr) throw new Error(`podCIDR ${cidr}: host bits are set (the network is ${intToIpv4(net)}/${prefix})`);
  return { subnet: cidr, network: intToIpv4(net), prefix, gateway: intToIpv4(net + 1) };
}

function cniArgs(p: SandboxRef): string {
  for (const [k, v] of Object.entries({ namespace: p.namespace, podName: p.podName, podUID: p.podUID })) {
    if (/[;=\s]/.test(v)) throw new Error(`${k} ${JSON.stringify(v)} cannot be passed in CNI_ARGS`);
  }
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${p.namespace};K8S_POD_NAME=${p.podName};K8S_POD_INFRA_CONTAINER_ID=${p.containerId};K8S_POD_UID=${p.podUID}`;
}

function checkPortMappings(pm: PortMapping[]): void {
  for (const m of pm) {
    for (const k of ['hostPort', 'containerPort'] as const) {
      if (!Number.isInteger(m[k]) || m[k] < 1 || m[k] > 65535) throw new Error(`port mapping ${JSON.stringify(m)}: ${k} must be 1-65535`);
    }
    if (m.protocol !== 'tcp' && m.protocol !== 'udp') throw new Error(`port mapping ${JSON.stringify(m)}: protocol must be tcp or udp`);
    if (m.hostIP !== undefined) ipv4ToInt(m.hostIP);
  }
}

/** The pod's IPv4 address on eth0 (in the sandbox) from a CNI result. */
function podIPFrom(result: CniResult, fallbackGateway: string): PodNetwork {
  const ifs = result.ips ?? [];
  const v4 = ifs.filter((x) => /^\d+\.\d+\.\d+\.\d+\//.test(x.address));
  const inSandbox = v4.find((x) => {
    const itf = x.interface === undefined ? undefined : result.interfaces?.[x.interface];
    return itf?.sandbox && itf.name === IFNAME;
  }) ?? v4[0];
  if (!inSandbox) throw new Error(`CNI result has no IPv4 address: ${JSON.stringify(result)}`);
  return { ip: inSandbox.address.split('/')[0]!, gateway: inSandbox.gateway ?? fallbackGateway };
}

export class CniNetwork {
  readonly networkName: string;
  readonly bridge: string;
  readonly podCIDR: string;
  readonly gateway: string;
  private readonly binDirs: string[];
  private readonly stateDir: string;
  private readonly timeoutMs: number;
  private readonly binCache = new Map<string, string>();
  private readonly perContainer = new KeyedMutex();
  private readonly firstAdd = new Mutex();
  private bridgeUp = false;

  constructor(private readonly opts: CniOptions) {
    if (!validNetworkName.test(opts.networkName)) throw new Error(`invalid CNI network name ${JSON.stringify(opts.networkName)}`);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(opts.bridge)) throw new Error(`invalid bridge name ${JSON.stringify(opts.bridge)} (1-15 of letters, digits, '_', '.', '-')`);
    const c = parsePodCIDR(opts.podCIDR);
    this.networkName = opts.networkName;
    this.bridge = opts.bridge;
    this.podCIDR = opts.podCIDR;
    this.gateway = c.gateway;
    this.binDirs = opts.binDirs ?? ['/usr/lib/cni', '/opt/cni/bin'];
    this.stateDir = opts.stateDir;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
  }

  private get ipamDir(): string { return join(this.stateDir, 'ipam'); }
  private get resultsDir(): string { return join(this.stateDir, 'results'); }
  private cachePath(containerId: string): string { return join(this.resultsDir, `${this.networkName}-${containerId}-${IFNAME}.json`); }
  /** marks that this network has added portmap rules, so cleanup() looks after the shared chains */
  private get portmapMarker(): string { return join(this.resultsDir, `${this.networkName}.portmap-used`); }

  private bridgeConf(): Json {
    const conf: Json = {
      type: 'bridge', bridge: this.bridge, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: this.podCIDR, gateway: this.gateway }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: this.ipamDir,
      },
    };
    if (this.opts.mtu !== undefined) conf.mtu = this.opts.mtu;
    return conf;
  }

  private portmapConf(pm: PortMapping[]): Json {
    return {
      type: 'portmap', capabilities: { portMappings: true }, snat: true,
      runtimeConfig: { portMappings: pm.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, ...(m.hostIP ? { hostIP: m.hostIP } : {}) })) },
    };
  }

  private pluginPath(type: string): string {
    let p = this.binCache.get(type);
    if (!p) {
      p = findBinary(type, this.binDirs);
      if (!p) throw new CniError(`CNI plugin ${type} not found in ${this.binDirs.join(', ')} (install it with: apt-get install -y containernetworking-plugins)`, type, 'find');
      this.binCache.set(type, p);
    }
    return p;
  }

  /** Execs one plugin; resolves with its parsed stdout (a result for ADD, undefined for DEL). */
  private async exec(command: 'ADD' | 'DEL' | 'CHECK', conf: Json, env: { containerId: string; netns: string; ifName: string; args: string }): Promise<CniResult | undefined> {
    const type = String(conf.type);
    const file = this.pluginPath(type);
    const r = await runFast(file, [], {
      input: JSON.stringify(conf),
      timeoutMs: this.timeoutMs,
      env: {
        PATH: toolPath(),
        CNI_COMMAND: command, CNI_CONTAINERID: env.containerId, CNI_NETNS: env.netns, CNI_IFNAME: env.ifName,
        CNI_ARGS: env.args, CNI_PATH: this.binDirs.join(':'),
      },
    });
    const where = `(network ${JSON.stringify(String(conf.name))}, container ${JSON.stringify(env.containerId)})`;
    if (r.timedOut) throw new CniError(`CNI plugin ${type} ${command} ${where} timed out after ${this.timeoutMs} ms`, type, command);
    if (r.code !== 0) {
      let code: number | undefined;
      let msg = '';
      let details: string | undefined;
      try {
        const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
        code = e.code; msg = e.msg ?? ''; details = e.details || undefined;
      } catch {
        msg = (r.stdout.trim() || r.stderr.trim() || `exit ${r.code ?? r.signal}`).slice(0, 2000);
      }
      const tail = r.stderr.trim() && !msg.includes(r.stderr.trim()) ? ` [stderr: ${r.stderr.trim().slice(0, 500)}]` : '';
      throw new CniError(`CNI plugin ${type} ${command} ${where} failed: ${msg}${details ? `: ${details}` : ''}${code !== undefined ? ` (code ${code})` : ''}${tail}`, type, command, code, details);
    }
    if (command !== 'ADD') return undefined;
    try {
      return JSON.parse(r.stdout) as CniResult;
    } catch {
      throw new CniError(`CNI plugin ${type} ADD ${where} printed no JSON result: ${r.stdout.slice(0, 500)}`, type, command);
    }
  }

  private full(conf: Json, prevResult?: CniResult): Json {
    return { cniVersion: CNI_VERSION, name: this.networkName, ...conf, ...(prevResult ? { prevResult } : {}) };
  }

  private loopbackConf(): Json { return { cniVersion: CNI_VERSION, name: 'cni-loopback', type: 'loopback' }; }

  private runPlugin(command: 'ADD' | 'DEL', conf: Json, env: { containerId: string; netns: string; ifName: string; args: string }): Promise<CniResult | undefined> {
    if (conf.type === 'portmap') return portmapLock.run(() => this.exec(command, conf, env));
    return this.exec(command, conf, env);
  }

  private async readCache(containerId: string): Promise<CacheEntry | undefined> {
    try {
      const c = JSON.parse(await readFile(this.cachePath(containerId), 'utf8')) as CacheEntry;
      return c.kind === 'kyb-cni-cache' ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeCache(c: CacheEntry): Promise<void> {
    await mkdir(this.resultsDir, { recursive: true });
    const p = this.cachePath(c.containerId);
    const tmp = `${p}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(c));
    await rename(tmp, p);
  }

  /** The cached address of a sandbox whose ADD completed (for an agent that restarted), else undefined. */
  async status(containerId: string): Promise<PodNetwork | undefined> {
    const c = await this.readCache(containerId);
    return c?.result ? podIPFrom(c.result, this.gateway) : undefined;
  }

  /**
   * Connects the sandbox's netns to the network (loopback, bridge + host-local, portmap when
   * portMappings are given) and returns the pod IP. Calling it again for a sandbox already set up
   * the same way returns the same address; otherwise the old setup is torn down first.
   */
  setUp(p: SandboxRef & { portMappings?: PortMapping[] }): Promise<PodNetwork> {
    if (!validId.test(p.containerId)) return Promise.reject(new Error(`invalid CNI container id ${JSON.stringify(p.containerId)}`));
    return this.perContainer.run(p.containerId, async () => {
      if (this.bridgeUp) return this.add(p);
      return this.firstAdd.run(async () => {
        const r = await this.add(p);
        this.bridgeUp = true;
        return r;
      });
    });
  }

  private async add(p: SandboxRef & { portMappings?: PortMapping[] }): Promise<PodNetwork> {
    const pm = p.portMappings ?? [];
    checkPortMappings(pm);
    const args = cniArgs(p);
    const plugins = [this.bridgeConf(), ...(pm.length ? [this.portmapConf(pm)] : [])];
    const old = await this.readCache(p.containerId);
    if (old?.result && old.netns === p.netns && JSON.stringify(old.plugins) === JSON.stringify(plugins)) return podIPFrom(old.result, this.gateway);
    if (old) await this.del(p, old);

    // every plugin present before anything is changed
    for (const conf of [this.loopbackConf(), ...plugins]) this.pluginPath(String(conf.type));
    const entry: CacheEntry = { kind: 'kyb-cni-cache', version: 1, network: this.networkName, containerId: p.containerId, netns: p.netns, ifName: IFNAME, cniArgs: args, plugins };
    await this.writeCache(entry);
    if (pm.length) await writeFile(this.portmapMarker, '');
    try {
      // lo and eth0 are independent: bring lo up while the chain runs
      const lo = this.runPlugin('ADD', this.loopbackConf(), { containerId: p.containerId, netns: p.netns, ifName: 'lo', args });
      const chain = (async () => {
        let prev: CniResult | undefined;
        for (const conf of plugins) prev = await this.runPlugin('ADD', this.full(conf, prev), { containerId: p.containerId, netns: p.netns, ifName: IFNAME, args });
        return prev!;
      })();
      const [loR, chainR] = await Promise.allSettled([lo, chain]);
      if (chainR.status === 'rejected') throw chainR.reason;
      if (loR.status === 'rejected') throw loR.reason;
      const prev = chainR.value;
      const net = podIPFrom(prev, this.gateway);
      await this.writeCache({ ...entry, result: prev });
      return net;
    } catch (e) {
      // the spec's rule: a failed ADD is followed by a DEL of the whole list
      await this.del(p, entry).catch(() => {});
      throw e;
    }
  }

  /** Disconnects the sandbox (reverse order, cached result as prevResult). Idempotent. */
  tearDown(p: SandboxRef): Promise<void> {
    if (!validId.test(p.containerId)) return Promise.reject(new Error(`invalid CNI container id ${JSON.stringify(p.containerId)}`));
    return this.perContainer.run(p.containerId, async () => {
      const cached = await this.readCache(p.containerId);
      await this.del(p, cached);
    });
  }

  private async del(p: Pick<SandboxRef, 'containerId' | 'netns'> & Partial<SandboxRef>, cached: CacheEntry | undefined): Promise<void> {
    const args = cached?.cniArgs ?? (p.namespace !== undefined && p.podName !== undefined && p.podUID !== undefined ? cniArgs(p as SandboxRef) : 'IgnoreUnknown=1');
    const netns = p.netns || cached?.netns || '';
    const plugins = cached?.plugins ?? [this.bridgeConf()];
    const errs: unknown[] = [];
    const lo = this.runPlugin('DEL', this.loopbackConf(), { containerId: p.containerId, netns, ifName: 'lo', args }).catch((e: unknown) => { errs.push(e); });
    for (const conf of [...plugins].reverse()) {
      try {
        await this.runPlugin('DEL', this.full(conf, cached?.result), { containerId: p.containerId, netns, ifName: IFNAME, args });
      } catch (e) { errs.push(e); }
    }
    await lo;
    if (errs.length) throw errs[0]; // keep the cache: a retry still knows what to undo
    await rm(this.cachePath(p.containerId), { force: true });
  }

  /**
   * Removes what the network leaves on the host once no pod uses it: tears down every sandbox
   * still in the cache, deletes the bridge, host-local's state and the cache, and — if this network
   * ever mapped host ports — portmap's leftover per-container chains of this network and its shared
   * CNI-HOSTPORT-* chains and hooks when no other container uses them. Touches nothing else
   * (net.ipv4.ip_forward stays as the bridge plugin left it).
   */
  async cleanup(): Promise<void> {
    const errs: unknown[] = [];
    const prefix = `${this.networkName}-`;
    let names: string[] = [];
    try { names = await readdir(this.resultsDir); } catch { /* none */ }
    for (const n of names) {
      if (!n.startsWith(prefix) || !n.endsWith(`-${IFNAME}.json`)) continue;
      const containerId = n.slice(prefix.length, -`-${IFNAME}.json`.length);
      if (!validId.test(containerId)) continue;
      await this.perContainer.run(containerId, async () => {
        const c = await this.readCache(containerId);
        // another network whose name starts with ours + '-' may share the directory
        if (c && c.network === this.networkName) await this.del({ containerId, netns: c.netns }, c);
      }).catch((e) => errs.push(e));
    }
    this.bridgeUp = false;
    const ip = findBinary('ip');
    if (ip) {
      const r = await run(ip, ['link', 'delete', this.bridge, 'type', 'bridge'], { timeoutMs: 10_000 });
      if (r.code !== 0 && !/Cannot find device|does not exist/i.test(r.stderr)) errs.push(new Error(`ip link delete ${this.bridge}: ${r.stderr.trim()}`));
    }
    let usedPortmap = false;
    try { await readFile(this.portmapMarker); usedPortmap = true; } catch { /* never used */ }
    if (usedPortmap) {
      try { await removePortmapLeftovers(this.networkName); } catch (e) { errs.push(e); }
    }
    if (errs.length) throw errs[0]; // keep the state: a second cleanup() retries
    await rm(join(this.ipamDir, this.networkName), { recursive: true, force: true });
    await rm(this.portmapMarker, { force: true });
  }
}

const HOSTPORT_CHAINS = ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-SETMARK', 'CNI-HOSTPORT-MASQ'];

/** iptables-save -t nat, parsed into rules per chain (each rule as its save line without "-A"). */
async function natRules(save: string): Promise<{ chains: Set<string>; rules: Array<{ chain: string; spec: string }> }> {
  const r = await run(save, ['-t', 'nat'], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`iptables-save -t nat: ${r.stderr.trim()}`);
  const chains = new Set<string>();
  const rules: Array<{ chain: string; spec: string }> = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith(':')) chains.add(line.slice(1).split(' ')[0]!);
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (m) rules.push({ chain: m[1]!, spec: m[2]! });
  }
  return { chains, rules };
}

async function restore(restoreBin: string, lines: string[]): Promise<{ ok: boolean; err: string }> {
  const r = await run(restoreBin, ['--noflush', '-w', '5'], { input: ['*nat', ...lines, 'COMMIT', ''].join('\n'), timeoutMs: 20_000 });
  return { ok: r.code === 0, err: r.stderr.trim() };
}

/**
 * portmap's per-container chains left by this network (missed DELs), then the shared base chains
 * and their hooks if no container of any network is left in CNI-HOSTPORT-DNAT. Each step is one
 * iptables-restore transaction; deleting a chain that someone started to use meanwhile fails the
 * whole transaction, so another runtime's rules are never removed.
 */
async function removePortmapLeftovers(networkName: string): Promise<void> {
  const save = findBinary('iptables-save');
  const restoreBin = findBinary('iptables-restore');
  if (!save || !restoreBin) return;
  await portmapLock.run(async () => {
    let { chains, rules } = await natRules(save);
    if (!chains.has('CNI-HOSTPORT-DNAT')) return;
    const ours = rules.filter((r) => r.chain === 'CNI-HOSTPORT-DNAT' && r.spec.includes(`dnat name: \\"${networkName}\\"`));
    if (ours.length) {
      const lines: string[] = [];
      const dnChains = new Set<string>();
      for (const r of ours) {
        lines.push(`-D ${r.chain} ${r.spec}`);
        const j = /-j (CNI-DN-\S+)/.exec(r.spec);
        if (j) dnChains.add(j[1]!);
      }
      for (const c of dnChains) lines.push(`-F ${c}`, `-X ${c}`);
      const res = await restore(restoreBin, lines);
      if (!res.ok) throw new Error(`removing portmap rules of network ${networkName}: ${res.err}`);
      ({ chains, rules } = await natRules(save));
    }
    if (rules.some((r) => r.chain === 'CNI-HOSTPORT-DNAT')) return; // another container still maps ports
    const lines: string[] = [];
    for (const r of rules) {
      const target = /-j (\S+)/.exec(r.spec)?.[1];
      if (target && HOSTPORT_CHAINS.includes(target) && !HOSTPORT_CHAINS.includes(r.chain)) lines.push(`-D ${r.chain} ${r.spec}`);
    }
    for (const c of HOSTPORT_CHAINS) if (chains.has(c) && c !== 'CNI-HOSTPORT-DNAT') lines.push(`-F ${c}`);
    for (const c of HOSTPORT_CHAINS) if (chains.has(c)) lines.push(`-X ${c}`);
    // CNI-HOSTPORT-DNAT is not flushed: if a rule arrived since the save, -X fails and nothing changes;
    // likewise -X CNI-HOSTPORT-SETMARK fails while a CNI-DN-* chain still jumps to it.
    await restore(restoreBin, lines);
  });
}
