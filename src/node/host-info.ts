// What the node agent reports about its host in Node.status, read from the host itself:
//   capacity     cpu (os.availableParallelism), memory (/proc/meminfo MemTotal, in Ki),
//                ephemeral-storage (statfs of the agent's data dir, in Ki), pods (110 by default),
//                hugepages-2Mi / hugepages-1Gi (pre-allocated huge pages; 0 on most hosts)
//   allocatable  capacity minus configured reservations (none by default; upstream's kubelet also
//                subtracts its 100Mi memory eviction threshold — pass reserved.memory for that)
//   addresses    InternalIP (the address on the default route's interface, else the first
//                non-loopback IPv4, else 127.0.0.1; or the configured node IP) and Hostname
//   nodeInfo     machine-id, DMI product UUID, boot id, kernel, PRETTY_NAME of /etc/os-release,
//                runc://<version>, kubelet/kube-proxy version v1.32.0-kyb, linux, amd64/arm64
// and the three pressure signals behind the MemoryPressure, DiskPressure and PIDPressure
// conditions, each with upstream's condition reason and message plus the numbers behind it.
//
// Everything is synchronous except the async hostInfo() (which runs `runc --version` without
// blocking); /proc and /sys reads take microseconds. fsRoot re-roots /proc, /sys and /etc for tests.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import type { NodeAddress, NodeSystemInfo } from 'kubernetes-types/core/v1.js';
import { parseQuantity, quantityFromValue } from '../machinery/quantity.js';
import { findBinary, run } from './network/exec.js';

export const KYB_KUBELET_VERSION = 'v1.32.0-kyb';

export type ResourceList = Record<string, string>;

export interface HostStatus {
  capacity: ResourceList;
  allocatable: ResourceList;
  addresses: NodeAddress[];
  nodeInfo: NodeSystemInfo;
}

export interface HostInfoOptions {
  /** the agent's data directory: ephemeral-storage is the size of its filesystem */
  dataDir: string;
  /** the Hostname address (default os.hostname()) */
  hostname?: string;
  /** InternalIP to report instead of the detected one */
  nodeIP?: string;
  /** capacity.pods (default 110) */
  maxPods?: number;
  /** subtracted from capacity to give allocatable, e.g. { cpu: '100m', memory: '256Mi' } (default none) */
  reserved?: ResourceList;
  /** runc's version (e.g. '1.1.5+ds1'); detected with `runc --version` when unset */
  runtimeVersion?: string;
  /** prefix for /proc, /sys and /etc (tests) */
  fsRoot?: string;
  /** interfaces to choose InternalIP from (tests; default os.networkInterfaces()) */
  interfaces?: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

function readOr(path: string, fallback = ''): string {
  try { return readFileSync(path, 'utf8'); } catch { return fallback; }
}

/** A /proc/meminfo field in bytes (the file says kB, meaning KiB), or undefined. */
export function meminfoBytes(field: string, fsRoot = ''): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, 'm').exec(readOr(join(fsRoot, '/proc/meminfo')));
  return m ? Number(m[1]) * 1024 : undefined;
}

/** The nearest existing directory at or above p (statfs needs one). */
function existingDir(p: string): string {
  let d = p;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/** Pre-allocated huge pages of one size as a quantity ('0', '20Mi', '2Gi'). */
function hugepages(fsRoot: string, sizeKb: number): string {
  const n = Number(readOr(join(fsRoot, `/sys/kernel/mm/hugepages/hugepages-${sizeKb}kB/nr_hugepages`), '0').trim()) || 0;
  return quantityFromValue(BigInt(n) * BigInt(sizeKb) * 1024n, 'BinarySI').toString();
}

export function goArch(arch: string = os.arch()): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  return map[arch] ?? arch;
}

/** The interface of the IPv4 default route with the lowest metric, from /proc/net/route. */
function defaultRouteInterface(fsRoot: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of readOr(join(fsRoot, '/proc/net/route')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue;
    const metric = Number(f[6]);
    if (!best || metric < best.metric) best = { iface: f[0]!, metric };
  }
  return best?.iface;
}

/** InternalIP: the default route's interface address, else the first non-loopback IPv4, else 127.0.0.1. */
export function internalIP(opts: { fsRoot?: string; interfaces?: NodeJS.Dict<os.NetworkInterfaceInfo[]> } = {}): string {
  const ifs = opts.interfaces ?? os.networkInterfaces();
  const v4 = (name: string) => (ifs[name] ?? []).find((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.'))?.address;
  const dflt = defaultRouteInterface(opts.fsRoot ?? '');
  if (dflt && v4(dflt)) return v4(dflt)!;
  for (const name of Object.keys(ifs)) {
    const a = v4(name);
    if (a) return a;
  }
  return '127.0.0.1';
}

let runcVersionCache: string | undefined;

function parseRuncVersion(out: string): string | undefined {
  return /runc version\s+(\S+)/.exec(out)?.[1];
}

function runcVersionSync(): string {
  if (runcVersionCache) return runcVersionCache;
  const bin = findBinary('runc');
  if (!bin) return 'unknown';
  try {
    runcVersionCache = parseRuncVersion(execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 })) ?? 'unknown';
  } catch {
    return 'unknown';
  }
  return runcVersionCache;
}

async function runcVersion(): Promise<string> {
  if (runcVersionCache) return runcVersionCache;
  const bin = findBinary('runc');
  if (!bin) return 'unknown';
  const r = await run(bin, ['--version'], { timeoutMs: 5000 }).catch(() => undefined);
  const v = r && r.code === 0 ? parseRuncVersion(r.stdout) : undefined;
  if (v) runcVersionCache = v;
  return v ?? 'unknown';
}

/** capacity − reserved per resource, never below zero. */
export function subtractReserved(capacity: ResourceList, reserved: ResourceList = {}): ResourceList {
  const out: ResourceList = { ...capacity };
  for (const [k, r] of Object.entries(reserved)) {
    const cap = capacity[k];
    if (cap === undefined) continue;
    const left = parseQuantity(cap).sub(parseQuantity(r));
    out[k] = left.sign() < 0 ? '0' : left.toString();
  }
  return out;
}

function build(opts: HostInfoOptions, runtimeVersion: string): HostStatus {
  const fsRoot = opts.fsRoot ?? '';
  const memKi = Math.floor((meminfoBytes('MemTotal', fsRoot) ?? os.totalmem()) / 1024);
  const st = statfsSync(existingDir(opts.dataDir));
  const storageKi = Math.floor((Number(st.blocks) * Number(st.bsize)) / 1024);
  const capacity: ResourceList = {
    cpu: String(os.availableParallelism()),
    'ephemeral-storage': `${storageKi}Ki`,
    'hugepages-1Gi': hugepages(fsRoot, 1048576),
    'hugepages-2Mi': hugepages(fsRoot, 2048),
    memory: `${memKi}Ki`,
    pods: String(opts.maxPods ?? 110),
  };
  const hostname = opts.hostname ?? os.hostname();
  const osRelease = readOr(join(fsRoot, '/etc/os-release'));
  const pretty = /^PRETTY_NAME=(?:"([^"]*)"|(.*))$/m.exec(osRelease);
  return {
    capacity,
    allocatable: subtractReserved(capacity, opts.reserved),
    addresses: [
      { type: 'InternalIP', address: opts.nodeIP ?? internalIP({ fsRoot, interfaces: opts.interfaces }) },
      { type: 'Hostname', address: hostname },
    ],
    nodeInfo: {
      machineID: readOr(join(fsRoot, '/etc/machine-id')).trim(),
      systemUUID: readOr(join(fsRoot, '/sys/class/dmi/id/product_uuid')).trim().toLowerCase(),
      bootID: readOr(join(fsRoot, '/proc/sys/kernel/random/boot_id')).trim(),
      kernelVersion: os.release(),
      osImage: pretty ? (pretty[1] ?? pretty[2] ?? '').trim() : 'Linux',
      containerRuntimeVersion: `runc://${runtimeVersion}`,
      kubeletVersion: KYB_KUBELET_VERSION,
      kubeProxyVersion: KYB_KUBELET_VERSION,
      operatingSystem: 'linux',
      architecture: goArch(),
    },
  };
}

/** The Node status pieces from the host (runs `runc --version` once, asynchronously, unless given). */
export async function hostInfo(opts: HostInfoOptions): Promise<HostStatus> {
  return build(opts, opts.runtimeVersion ?? (await runcVersion()));
}

/** hostInfo() without awaiting (for a synchronous status callback); `runc --version` is cached after the first call. */
export function hostInfoSync(opts: HostInfoOptions): HostStatus {
  return build(opts, opts.runtimeVersion ?? runcVersionSync());
}

// ---- pressure ----

export interface Pressure {
  /** true = under pressure (the condition's status is True) */
  pressure: boolean;
  /** upstream's condition reason, e.g. KubeletHasSufficientMemory */
  reason: string;
  /** upstream's condition message */
  message: string;
  /** the numbers behind it, for logs and events */
  detail: string;
}

function bytes(q: string | number): number { return typeof q === 'number' ? q : parseQuantity(q).value(); }
function mi(n: number): string { return `${(n / 2 ** 20).toFixed(0)}Mi`; }

/** MemoryPressure: MemAvailable below the threshold (default 100Mi, the kubelet's memory.available). */
export function memoryPressure(opts: { threshold?: string | number; fsRoot?: string } = {}): Pressure {
  const threshold = bytes(opts.threshold ?? '100Mi');
  const avail = meminfoBytes('MemAvailable', opts.fsRoot) ?? os.freemem();
  const pressure = avail < threshold;
  return {
    pressure,
    reason: pressure ? 'KubeletHasInsufficientMemory' : 'KubeletHasSufficientMemory',
    message: pressure ? 'kubelet has insufficient memory available' : 'kubelet has sufficient memory available',
    detail: `memory available ${mi(avail)}, threshold ${mi(threshold)}`,
  };
}

/**
 * DiskPressure for the filesystem holding dir: free space below minFreePercent (default 10, the
 * kubelet's nodefs.available) or below threshold (bytes or a quantity; default none), or free
 * inodes below minFreeInodesPercent (default 5, nodefs.inodesFree).
 */
export function diskPressure(dir: string, opts: { minFreePercent?: number; threshold?: string | number; minFreeInodesPercent?: number } = {}): Pressure {
  const st = statfsSync(existingDir(dir));
  const total = Number(st.blocks) * Number(st.bsize);
  const avail = Number(st.bavail) * Number(st.bsize);
  const pct = total > 0 ? (avail / total) * 100 : 100;
  const inodePct = Number(st.files) > 0 ? (Number(st.ffree) / Number(st.files)) * 100 : 100;
  const minPct = opts.minFreePercent ?? 10;
  const minInodes = opts.minFreeInodesPercent ?? 5;
  const threshold = opts.threshold === undefined ? 0 : bytes(opts.threshold);
  const pressure = pct < minPct || avail < threshold || inodePct < minInodes;
  return {
    pressure,
    reason: pressure ? 'KubeletHasDiskPressure' : 'KubeletHasNoDiskPressure',
    message: pressure ? 'kubelet has disk pressure' : 'kubelet has no disk pressure',
    detail: `${dir}: ${mi(avail)} of ${mi(total)} free (${pct.toFixed(1)}%, minimum ${minPct}%${threshold ? ` and ${mi(threshold)}` : ''}), inodes ${inodePct.toFixed(1)}% free (minimum ${minInodes}%)`,
  };
}

/**
 * PIDPressure: fewer than minFreePercent (default 10) of kernel.pid_max left, counting the
 * scheduling entities (processes and threads) in /proc/loadavg's "running/total" field.
 */
export function pidPressure(opts: { minFreePercent?: number; fsRoot?: string } = {}): Pressure {
  const fsRoot = opts.fsRoot ?? '';
  const pidMax = Number(readOr(join(fsRoot, '/proc/sys/kernel/pid_max'), '32768').trim()) || 32768;
  const total = Number(/\d+\/(\d+)/.exec(readOr(join(fsRoot, '/proc/loadavg')))?.[1] ?? 0);
  const minPct = opts.minFreePercent ?? 10;
  const freePct = ((pidMax - total) / pidMax) * 100;
  const pressure = freePct < minPct;
  return {
    pressure,
    reason: pressure ? 'KubeletHasInsufficientPID' : 'KubeletHasSufficientPID',
    message: pressure ? 'kubelet has insufficient PID available' : 'kubelet has sufficient PID available',
    detail: `${total} of pid_max ${pidMax} in use (${freePct.toFixed(1)}% free, minimum ${minPct}%)`,
  };
}

/** The three signals as the agent's pressure() callback wants them. */
export function nodePressure(dataDir: string): { memory: boolean; disk: boolean; pid: boolean } {
  return { memory: memoryPressure().pressure, disk: diskPressure(dataDir).pressure, pid: pidPressure().pressure };
}
