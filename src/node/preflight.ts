// The agent's start-up check of the host: everything the node needs to run real pods (runc, conmon,
// the CNI plugins, iptables/nft, iproute2, tar, cgroup controllers, root) is looked at once, and
// every missing piece is named together with the command that installs or enables it, instead of
// a pod failing later with an obscure error. Some checks only inform (ip_forward, which the CNI
// bridge plugin turns on by itself) or warn (br_netfilter, overlayfs: things still work without
// them, with less: Service hairpin on the bridge, copied instead of overlaid root filesystems).
//
// `preflight()` never throws for a missing tool; `ok` is false when a required check fails.
// `formatPreflight()` is the table the agent prints at start. Host paths can be re-rooted (fsRoot)
// and PATH replaced, so tests can describe a host that lacks things.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, run, sbinDirs } from './network/exec.js';

export interface PreflightCheck {
  name: string;
  ok: boolean;
  /** what was found (version, path, value) or what is missing */
  detail: string;
  /** the command (or step) that fixes a failed check */
  fix?: string;
  /** a failed required check makes the result not ok; others are warnings */
  required: boolean;
}

export interface PreflightResult { ok: boolean; checks: PreflightCheck[] }

export interface PreflightOptions {
  /** CNI plugin directories (default ['/usr/lib/cni', '/opt/cni/bin']) */
  cniBinDirs?: string[];
  /** directories to search for tools, ':'-separated (default: process.env.PATH, then /usr/sbin, /sbin
   *  and the other standard directories); when given, exactly these are searched */
  path?: string;
  /** prefix for /proc, /sys and /lib/modules (tests); default '' */
  fsRoot?: string;
  /** the user id to judge (default process.getuid()) */
  uid?: number;
  /** per `--version` command (default 5 s) */
  timeoutMs?: number;
}

const CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

async function readText(p: string): Promise<string | undefined> {
  try { return await readFile(p, 'utf8'); } catch { return undefined; }
}

/** First line of `<bin> <args>` output (stdout, else stderr), or undefined if it fails. */
async function versionOf(bin: string, args: string[], timeoutMs: number): Promise<string | undefined> {
  try {
    const r = await run(bin, args, { timeoutMs });
    const text = (r.stdout.trim() || r.stderr.trim()).split('\n')[0]?.trim();
    return r.code === 0 && text ? text : undefined;
  } catch {
    return undefined;
  }
}

export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface CgroupInfo { mode: CgroupMode; controllers: string[]; unifiedControllers: string[] }

/**
 * The cgroup layout: v2 (one cgroup2 hierarchy at /sys/fs/cgroup), hybrid (v1 controllers plus a
 * cgroup2 mount at /sys/fs/cgroup/unified) or v1; and the usable controllers (v1: enabled in
 * /proc/cgroups and attached to a hierarchy; v2: listed in cgroup.controllers).
 */
export async function cgroupInfo(fsRoot = ''): Promise<CgroupInfo> {
  const v2 = await readText(join(fsRoot, '/sys/fs/cgroup/cgroup.controllers'));
  if (v2 !== undefined) return { mode: 'v2', controllers: v2.trim().split(/\s+/).filter(Boolean), unifiedControllers: [] };
  const unified = await readText(join(fsRoot, '/sys/fs/cgroup/unified/cgroup.controllers'));
  const table = (await readText(join(fsRoot, '/proc/cgroups'))) ?? '';
  const controllers: string[] = [];
  for (const line of table.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, hierarchy, , enabled] = line.split(/\s+/);
    if (name && hierarchy !== '0' && enabled === '1') controllers.push(name);
  }
  return { mode: unified !== undefined ? 'hybrid' : 'v1', controllers, unifiedControllers: (unified ?? '').trim().split(/\s+/).filter(Boolean) };
}

/** Controllers runc needs for the limits the agent sets, per cgroup version. */
export const neededControllers: Record<'v1' | 'v2', string[]> = {
  v1: ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices', 'freezer'],
  v2: ['cpu', 'memory', 'pids'],
};

export async function preflight(opts: PreflightOptions = {}): Promise<PreflightResult> {
  const fsRoot = opts.fsRoot ?? '';
  const timeoutMs = opts.timeoutMs ?? 5000;
  const dirs = opts.path !== undefined
    ? opts.path.split(':').filter(Boolean)
    : [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), ...sbinDirs])];
  const where = opts.path !== undefined ? opts.path : 'PATH, /usr/sbin, /sbin';
  const cniDirs = opts.cniBinDirs ?? ['/usr/lib/cni', '/opt/cni/bin'];

  const tool = async (name: string, bin: string, pkg: string, versionArgs: string[] | undefined, describe?: (v: string) => string): Promise<PreflightCheck> => {
    const p = findBinary(bin, dirs);
    if (!p) return { name, ok: false, required: true, detail: `${bin} not found in ${where}`, fix: `apt-get install -y ${pkg}` };
    if (!versionArgs) return { name, ok: true, required: true, detail: p };
    const v = await versionOf(p, versionArgs, timeoutMs);
    if (!v) return { name, ok: false, required: true, detail: `${p} does not run (\`${bin} ${versionArgs.join(' ')}\` failed)`, fix: `apt-get install --reinstall -y ${pkg}` };
    return { name, ok: true, required: true, detail: `${describe ? describe(v) : v} (${p})` };
  };

  const checks = await Promise.all<PreflightCheck>([
    (async () => {
      const uid = opts.uid ?? process.getuid?.() ?? -1;
      return uid === 0
        ? { name: 'root', ok: true, required: true, detail: 'running as root' }
        : { name: 'root', ok: false, required: true, detail: `running as uid ${uid}; namespaces, mounts, cgroups and iptables need root`, fix: 'run the agent as root (sudo kyb agent …)' };
    })(),
    tool('runc', 'runc', 'runc', ['--version'], (v) => v.replace(/^runc version\s*/, 'runc ')),
    tool('conmon', 'conmon', 'conmon', ['--version'], (v) => v.replace(/^conmon version\s*/, 'conmon ')),
    (async (): Promise<PreflightCheck> => {
      const found: string[] = [];
      const missing: string[] = [];
      for (const p of CNI_PLUGINS) {
        const f = findBinary(p, cniDirs);
        if (f) found.push(f); else missing.push(p);
      }
      if (missing.length) return { name: 'cni-plugins', ok: false, required: true, detail: `missing ${missing.join(', ')} in ${cniDirs.join(', ')}`, fix: 'apt-get install -y containernetworking-plugins' };
      const dirsUsed = [...new Set(found.map((f) => f.slice(0, f.lastIndexOf('/'))))];
      return { name: 'cni-plugins', ok: true, required: true, detail: `${CNI_PLUGINS.join(', ')} in ${dirsUsed.join(', ')}` };
    })(),
    (async (): Promise<PreflightCheck> => {
      const ipt = findBinary('iptables', dirs);
      const nft = findBinary('nft', dirs);
      const parts: string[] = [];
      if (ipt) {
        const v = await versionOf(ipt, ['-V'], timeoutMs);
        parts.push(v ? `${v.replace(/^iptables\s*/, 'iptables ')}` : `iptables at ${ipt} (does not run)`);
      }
      if (nft) {
        const v = await versionOf(nft, ['--version'], timeoutMs);
        parts.push(v ? v.replace(/^nftables\s*/, 'nft ') : `nft at ${nft} (does not run)`);
      }
      if (!ipt && !nft) return { name: 'iptables/nft', ok: false, required: true, detail: `neither iptables nor nft found in ${where}`, fix: 'apt-get install -y iptables nftables' };
      const detail = parts.join('; ') + (ipt ? '' : '; hostPort (CNI portmap) needs iptables');
      return { name: 'iptables/nft', ok: true, required: true, detail, ...(ipt ? {} : { fix: 'apt-get install -y iptables' }) };
    })(),
    tool('iproute2', 'ip', 'iproute2', ['-V']),
    tool('tar', 'tar', 'tar', ['--version'], (v) => v),
    (async (): Promise<PreflightCheck> => {
      const cg = await cgroupInfo(fsRoot);
      const need = neededControllers[cg.mode === 'v2' ? 'v2' : 'v1'];
      const missing = need.filter((c) => !cg.controllers.includes(c));
      const mode = cg.mode === 'hybrid' ? `v1 hybrid (cgroup2 at /sys/fs/cgroup/unified${cg.unifiedControllers.length ? ` with ${cg.unifiedControllers.join(' ')}` : ''}; runc works, crun 1.8 refuses it)` : cg.mode;
      if (missing.length) {
        return {
          name: 'cgroups', ok: false, required: true,
          detail: `${mode}; missing controller${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (have ${cg.controllers.join(' ') || 'none'})`,
          fix: cg.mode === 'v2'
            ? `enable them for the agent's cgroup: echo "${missing.map((c) => `+${c}`).join(' ')}" > /sys/fs/cgroup/cgroup.subtree_control`
            : `add ${missing.map((c) => `cgroup_enable=${c}`).join(' ')} to the kernel command line and reboot (or mount the v1 hierarchies: mount -t cgroup -o ${missing[0]} cgroup /sys/fs/cgroup/${missing[0]})`,
        };
      }
      return { name: 'cgroups', ok: true, required: true, detail: `${mode}; controllers ${need.join(' ')} available` };
    })(),
    (async (): Promise<PreflightCheck> => {
      const v = (await readText(join(fsRoot, '/proc/sys/net/ipv4/ip_forward')))?.trim();
      return {
        name: 'ip_forward', ok: true, required: false,
        detail: v === undefined ? 'net.ipv4.ip_forward unreadable' : `net.ipv4.ip_forward=${v}${v === '1' ? '' : ' (the CNI bridge plugin sets it to 1 when the pod network comes up)'}`,
      };
    })(),
    (async (): Promise<PreflightCheck> => {
      const v = (await readText(join(fsRoot, '/proc/sys/net/bridge/bridge-nf-call-iptables')))?.trim();
      if (v === undefined) return { name: 'br_netfilter', ok: false, required: false, detail: 'br_netfilter not loaded: a pod reaching a Service backed by a pod on the same bridge may fail', fix: 'modprobe br_netfilter' };
      if (v !== '1') return { name: 'br_netfilter', ok: false, required: false, detail: `loaded, but net.bridge.bridge-nf-call-iptables=${v}`, fix: 'sysctl -w net.bridge.bridge-nf-call-iptables=1' };
      return { name: 'br_netfilter', ok: true, required: false, detail: 'loaded, net.bridge.bridge-nf-call-iptables=1' };
    })(),
    (async (): Promise<PreflightCheck> => {
      const fss = (await readText(join(fsRoot, '/proc/filesystems'))) ?? '';
      if (fss.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'overlay')) return { name: 'overlayfs', ok: true, required: false, detail: 'overlay in /proc/filesystems' };
      let module = false;
      try {
        const rel = (await readText(join(fsRoot, '/proc/sys/kernel/osrelease')))?.trim();
        if (rel) module = (await readdir(join(fsRoot, '/lib/modules', rel, 'kernel/fs/overlayfs'))).length > 0;
      } catch { /* no modules tree */ }
      return module
        ? { name: 'overlayfs', ok: false, required: false, detail: 'overlay module available but not loaded; images would be copied per container', fix: 'modprobe overlay' }
        : { name: 'overlayfs', ok: false, required: false, detail: 'overlay filesystem not available; images are copied per container (slower, more disk)' };
    })(),
  ]);
  return { ok: checks.every((c) => c.ok || !c.required), checks };
}

/** The preflight table for the agent's start-up log: one line per check, fixes under failures. */
export function formatPreflight(result: PreflightResult): string {
  const failed = result.checks.filter((c) => !c.ok && c.required).length;
  const warned = result.checks.filter((c) => !c.ok && !c.required).length;
  const width = Math.max(...result.checks.map((c) => c.name.length));
  const lines = [`preflight: ${result.ok ? 'ok' : 'FAILED'} (${result.checks.length} checks, ${failed} failed, ${warned} warning${warned === 1 ? '' : 's'})`];
  for (const c of result.checks) {
    const tag = c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn';
    lines.push(`  ${tag}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`        ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  return lines.join('\n');
}
