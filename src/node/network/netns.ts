// Named network namespaces for pod sandboxes, made with iproute2 (`ip netns add NAME` bind-mounts
// a fresh namespace at /run/netns/NAME, which is where CNI plugins and runc's config.json then
// point). Both operations are idempotent so the agent can call them again after a crash or
// restart: adding an existing namespace returns its path, deleting a missing one succeeds.
// A leftover /run/netns/NAME file that is no longer a mount (e.g. after a reboot without tmpfs)
// is replaced. The pod manager makes a pod's network, IPC and UTS namespaces together with
// createPodNamespaces() (below); createNetns/deleteNetns stay for single network namespaces.
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, run, runFast } from './exec.js';

export const netnsDir = '/run/netns';

const validName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

function checkName(name: string): void {
  if (!validName.test(name)) throw new Error(`invalid network namespace name ${JSON.stringify(name)}: use letters, digits, '_', '.', '-' (at most 200)`);
}

/** /run/netns/<name> */
export function netnsPath(name: string): string {
  checkName(name);
  return `${netnsDir}/${name}`;
}

function ipBinary(): string {
  const ip = findBinary('ip');
  if (!ip) throw new Error('`ip` (iproute2) not found in PATH, /usr/sbin or /sbin; install it with: apt-get install -y iproute2');
  return ip;
}

/** True when path is a mount point (a bound namespace), by /proc/self/mountinfo. */
async function isMounted(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  // field 5 is the mount point, with spaces etc. escaped as octal (\040)
  return info.split('\n').some((l) => l.split(' ')[4] === path);
}

/** Creates the named network namespace if it does not exist; returns /run/netns/<name>. */
export async function createNetns(name: string): Promise<string> {
  const path = netnsPath(name);
  const ip = ipBinary();
  for (let attempt = 0; ; attempt++) {
    const r = await run(ip, ['netns', 'add', name], { timeoutMs: 10_000 });
    if (r.code === 0) return path;
    if (/File exists/i.test(r.stderr)) {
      if (await isMounted(path)) return path;
      if (attempt === 0) { await unlink(path).catch(() => {}); continue; } // stale file, not a namespace
    }
    throw new Error(`ip netns add ${name} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code ?? r.signal}`}`);
  }
}

/** Deletes the named network namespace; succeeds when it does not exist. */
export async function deleteNetns(name: string): Promise<void> {
  const path = netnsPath(name);
  const r = await run(ipBinary(), ['netns', 'delete', name], { timeoutMs: 10_000 });
  if (r.code === 0) return;
  if (/No such file or directory/i.test(r.stderr) && !(await isMounted(path))) return;
  throw new Error(`ip netns delete ${name} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code ?? r.signal}`}`);
}

// ------------------------------------------------------------------------------ pod namespaces
// A pod's sandbox namespaces, made in ONE process: `unshare --net=<netns file> --ipc=<file>
// --uts=<file> hostname <name>` (util-linux) creates a network, an IPC and a UTS namespace, binds
// each to its file (so they outlive the process, as `ip netns add` does for the network one), and
// sets the pod's hostname in the new UTS namespace once. Every container of the pod then joins them
// by path (runc `namespaces: [{type, path}]`), which is what upstream's pause container gives a pod:
// shared SysV IPC / POSIX message queues and one hostname. One unshare costs less than one
// `ip netns add` here (≈15 ms against ≈23 ms), so the IPC/UTS namespaces come for free.
// hostIPC pods get no IPC namespace file (their containers use the host's).

export interface PodNamespaces {
  /** /run/netns/<name> */
  netns: string;
  /** bind-mounted IPC namespace file; absent for hostIPC pods */
  ipc?: string;
  /** bind-mounted UTS namespace file (the hostname is set in it) */
  uts: string;
}

function unshareBinary(): string {
  const u = findBinary('unshare');
  if (!u) throw new Error('`unshare` (util-linux) not found in PATH, /usr/sbin or /sbin; install it with: apt-get install -y util-linux');
  return u;
}

const validHostname = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/;

/**
 * Creates (or finds again) a pod's network namespace /run/netns/<netnsName> and, in `dir`, its
 * UTS namespace file `uts` (hostname set) and, unless hostIPC, its IPC namespace file `ipc`.
 * Idempotent: when every file is already a bound namespace they are returned as they are; a
 * half-made set (a crash between the steps) is removed and made again.
 */
export async function createPodNamespaces(o: { netnsName: string; dir: string; hostname: string; hostIPC?: boolean }): Promise<PodNamespaces> {
  const ns: PodNamespaces = { netns: netnsPath(o.netnsName), uts: join(o.dir, 'uts'), ...(o.hostIPC ? {} : { ipc: join(o.dir, 'ipc') }) };
  if (!validHostname.test(o.hostname)) throw new Error(`invalid pod hostname ${JSON.stringify(o.hostname)}`);
  const files = [ns.netns, ns.uts, ...(ns.ipc ? [ns.ipc] : [])];
  const mounted = await mountedSet();
  if (files.every((f) => mounted.has(f))) return ns;
  if (files.some((f) => mounted.has(f))) await removePodNamespaces(ns);
  const hostname = findBinary('hostname');
  if (!hostname) throw new Error('`hostname` not found in PATH, /usr/sbin or /sbin; install it with: apt-get install -y hostname');
  await mkdir(netnsDir, { recursive: true });
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  // unshare binds onto existing files
  for (const f of files) await writeFile(f, '', { flag: 'a' });
  const args = [`--net=${ns.netns}`, `--uts=${ns.uts}`, ...(ns.ipc ? [`--ipc=${ns.ipc}`] : []), hostname, o.hostname];
  const r = await runFast(unshareBinary(), args, { timeoutMs: 10_000 });
  if (r.code !== 0) {
    await removePodNamespaces(ns).catch(() => undefined);
    throw new Error(`unshare ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code ?? r.signal}`}`);
  }
  return ns;
}

/**
 * New network, IPC and UTS namespaces bound at the given paths (any file paths, e.g. under the
 * agent's run dir), made by one `unshare --net=… --ipc=… --uts=… true` (the UTS namespace keeps the
 * host's name); removed with removePodNamespaces.
 */
export async function createNamespacesAt(ns: { netns: string; ipc: string; uts: string }, o: { nice?: number } = {}): Promise<void> {
  const t = findBinary('true');
  if (!t) throw new Error('`true` (coreutils) not found');
  for (const f of [ns.netns, ns.ipc, ns.uts]) await writeFile(f, '', { flag: 'a' });
  const args = [`--net=${ns.netns}`, `--ipc=${ns.ipc}`, `--uts=${ns.uts}`, t];
  const r = await runFast(unshareBinary(), args, { timeoutMs: 10_000, ...(o.nice ? { nice: o.nice } : {}) });
  if (r.code !== 0) {
    await removePodNamespaces(ns).catch(() => undefined);
    throw new Error(`unshare ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code ?? r.signal}`}`);
  }
}

/** Unmounts and removes a pod's namespace files (one `umount` for all). Missing ones are fine. */
export async function removePodNamespaces(ns: { netns?: string; ipc?: string; uts?: string }): Promise<void> {
  const files = [ns.netns, ns.ipc, ns.uts].filter((f): f is string => !!f);
  const mounted = await mountedSet();
  const bound = files.filter((f) => mounted.has(f));
  if (bound.length) {
    const umount = findBinary('umount');
    if (!umount) throw new Error('`umount` not found (apt-get install -y mount)');
    const r = await runFast(umount, bound, { timeoutMs: 10_000 });
    if (r.code !== 0) {
      const still = await mountedSet();
      const left = bound.filter((f) => still.has(f));
      if (left.length) throw new Error(`umount ${left.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code ?? r.signal}`}`);
    }
  }
  for (const f of files) await unlink(f).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
}

/** Mount points (field 5 of /proc/self/mountinfo). */
async function mountedSet(): Promise<Set<string>> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return new Set(info.split('\n').map((l) => l.split(' ')[4]).filter((x): x is string => !!x));
}
