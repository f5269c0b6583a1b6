// The OCI runtime config (config.json) for one container of a pod, built from the pod spec, the
// container spec and the image config. The base shape follows what `runc spec` generates (mounts,
// masked and read-only paths, namespaces); on top of it: the pod's network namespace (a file under
// /run/netns) and, when given, its IPC and UTS namespaces (files the pod manager made, so that all
// containers of a pod share SysV IPC, POSIX message queues and the hostname, as upstream's pause
// container gives them; hostIPC uses the host's IPC namespace), the hostname (only without a pod UTS
// namespace, or when asked to for a pre-made one: runc then sets it inside the joined namespace),
// volume and /etc file bind mounts, user, capabilities, and the container's resources as cgroup
// limits (cpu shares from requests, CFS quota and memory limit from limits), as the kubelet asks of
// its runtime.
//
// rlimits are deliberately absent: an OCI config must never ask for more than the agent's own hard
// limits (on these hosts there is no CAP_SYS_RESOURCE), so the container inherits them.
import type { Container, Pod, Capabilities } from 'kubernetes-types/core/v1.js';
import { parseQuantity } from '../../machinery/quantity.js';

export interface OciMount { destination: string; type: string; source: string; options?: string[] }

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable?: string[]; ambient?: string[] };
    noNewPrivileges: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    resources: {
      devices: { allow: boolean; access?: string; type?: string; major?: number; minor?: number }[];
      memory?: { limit?: number; swap?: number };
      cpu?: { shares?: number; quota?: number; period?: number };
      pids?: { limit: number };
    };
    cgroupsPath: string;
    namespaces: { type: string; path?: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
  };
}

/** The capabilities a container gets by default (the set containerd and Docker grant). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability this kernel knows (for privileged containers). */
const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

function capName(c: string): string {
  const u = c.toUpperCase();
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

export function effectiveCapabilities(caps: Capabilities | undefined, privileged: boolean, host: string[] = ALL_CAPABILITIES): string[] {
  if (privileged) return [...host];
  const set = new Set(DEFAULT_CAPABILITIES);
  for (const d of caps?.drop ?? []) {
    if (d.toUpperCase() === 'ALL') set.clear(); else set.delete(capName(d));
  }
  for (const a of caps?.add ?? []) {
    if (a.toUpperCase() === 'ALL') for (const c of host) set.add(c); else set.add(capName(a));
  }
  return [...set];
}

/** The image user ("1000", "1000:1000", "nobody") resolved against the rootfs's /etc/passwd and /etc/group. */
export function resolveImageUser(user: string, passwd: string | undefined, group: string | undefined): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':') as [string, string | undefined];
  const pw = (passwd ?? '').split('\n').map((l) => l.split(':')).filter((p) => p.length >= 4);
  let uid: number; let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const e = pw.find((p) => Number(p[2]) === uid);
    if (e) gid = Number(e[3]);
  } else {
    const e = pw.find((p) => p[0] === u);
    if (!e) throw new Error(`unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(e[2]); gid = Number(e[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const e = (group ?? '').split('\n').map((l) => l.split(':')).find((p) => p[0] === g);
      if (!e) throw new Error(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(e[2]);
    }
  }
  return { uid, gid };
}

/** cgroup v1 cpu.shares from a cpu request, as the kubelet computes it (min 2, 1024 per core). */
export function cpuShares(request: string | undefined): number {
  if (!request) return 2;
  const milli = parseQuantity(request).milliValue();
  return Math.max(2, Math.floor((milli * 1024) / 1000));
}

/** CFS quota (µs per 100 ms period) from a cpu limit; min 1000 as the kubelet. */
export function cpuQuota(limit: string | undefined): number | undefined {
  if (!limit) return undefined;
  const milli = parseQuantity(limit).milliValue();
  return Math.max(1000, Math.floor((milli * 100000) / 1000));
}

/**
 * The pod's hostname as the kubelet makes it: spec.hostname or the pod name, cut to 63 characters
 * (a DNS label) without a trailing '-' or '.'.
 */
export function podHostname(pod: Pod): string {
  const h = pod.spec?.hostname || pod.metadata?.name || 'pod';
  return h.length <= 63 ? h : h.slice(0, 63).replace(/[-.]+$/, '');
}

export interface SpecInput {
  pod: Pod;
  container: Container;
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  netnsPath: string;
  /** the pod's IPC namespace (bind-mounted file) all its containers join; a new one per container when unset */
  ipcPath?: string;
  /** the pod's UTS namespace, its hostname already set in it; the container then sets none itself */
  utsPath?: string;
  /**
   * set the pod's hostname even though the container joins utsPath (runc sets it inside the joined
   * namespace): for a pre-made sandbox whose UTS namespace was made before the pod was known
   */
  setHostname?: boolean;
  /** spec.hostIPC: the host's IPC namespace (no IPC namespace at all) */
  hostIPC?: boolean;
  cgroupsPath: string;
  /** extra bind mounts (volumes, /etc/hosts, /etc/resolv.conf, /etc/hostname, termination log) */
  binds: { destination: string; source: string; readOnly: boolean }[];
  tty?: boolean;
}

export function buildOciSpec(i: SpecInput): OciSpec {
  const sc = i.container.securityContext ?? {};
  const privileged = sc.privileged === true;
  const caps = effectiveCapabilities(sc.capabilities, privileged);
  const res = i.container.resources ?? {};
  const memLimit = res.limits?.memory ? parseQuantity(res.limits.memory).value() : undefined;
  const quota = cpuQuota(res.limits?.cpu);
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
  for (const b of i.binds) {
    mounts.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', b.readOnly ? 'ro' : 'rw'] });
  }
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: i.tty === true,
      user: i.user,
      args: i.args,
      env: i.env,
      cwd: i.cwd || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: !privileged && sc.allowPrivilegeEscalation !== true,
    },
    root: { path: i.rootfs, readonly: sc.readOnlyRootFilesystem === true },
    // joining the pod's UTS namespace: its hostname was set once when it was made
    ...(i.utsPath && !i.setHostname ? {} : { hostname: podHostname(i.pod) }),
    mounts,
    linux: {
      resources: {
        devices: privileged ? [{ allow: true, access: 'rwm' }] : [{ allow: false, access: 'rwm' }],
        cpu: { shares: cpuShares(res.requests?.cpu ?? res.limits?.cpu), ...(quota !== undefined ? { quota, period: 100000 } : {}) },
        ...(memLimit !== undefined ? { memory: { limit: memLimit, swap: memLimit } } : {}),
      },
      cgroupsPath: i.cgroupsPath,
      namespaces: [
        { type: 'pid' },
        ...(i.hostIPC ? [] : [i.ipcPath ? { type: 'ipc', path: i.ipcPath } : { type: 'ipc' }]),
        i.utsPath ? { type: 'uts', path: i.utsPath } : { type: 'uts' },
        { type: 'mount' },
        { type: 'network', path: i.netnsPath },
      ],
      ...(privileged ? {} : {
        maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
          '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
        readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      }),
    },
  };
  return spec;
}

/**
 * The process args as the kubelet computes them: command replaces the image's entrypoint (and then
 * the image cmd is dropped), args replace the image cmd; $(VAR) references are expanded from env.
 */
export function containerArgs(c: Container, image: { entrypoint: string[]; cmd: string[] }, env: string[]): string[] {
  const vars = new Map<string, string>();
  for (const e of env) { const i = e.indexOf('='); if (i > 0) vars.set(e.slice(0, i), e.slice(i + 1)); }
  const expand = (s: string) => s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return vars.has(name!) ? vars.get(name!)! : m;
  });
  let argv: string[];
  if (c.command?.length) argv = [...c.command.map(expand), ...(c.args ?? []).map(expand)];
  else if (c.args?.length) argv = [...image.entrypoint, ...c.args.map(expand)];
  else argv = [...image.entrypoint, ...image.cmd];
  return argv;
}
