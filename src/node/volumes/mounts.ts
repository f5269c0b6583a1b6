// The few mount operations volumes need: a tmpfs for memory-backed emptyDirs (and for secret and
// projected volumes, which the kubelet keeps off disk), finding mounts under a pod's volume dir from
// /proc/self/mountinfo, and unmounting them. Uses the host's mount(8)/umount(8) (util-linux), which
// every node has, rather than a native addon, forked by the spawn helper of network/exec.ts (a pod's
// projected service-account volume is a tmpfs, so this is on the pod start path, and forking the
// agent process itself costs 5–11 ms of its event loop).
import { readFileSync, realpathSync } from 'node:fs';
import { findBinary, runFast } from '../network/exec.js';

/** mount/umount through the spawn helper; rejects (with stderr) unless it exits 0 */
async function run(cmd: 'mount' | 'umount', args: string[]): Promise<void> {
  const r = await runFast(findBinary(cmd) ?? cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw Object.assign(new Error(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}`), { stderr: r.stderr });
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface MountInfo { mountPoint: string; fsType: string; source: string }

/** Every mount of this process's mount namespace, in mountinfo order. */
export function listMounts(): MountInfo[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({ mountPoint: unescapeMountPath(f[4]!), fsType: f[sep + 1]!, source: unescapeMountPath(f[sep + 2]!) });
  }
  return out;
}

function real(p: string): string {
  try { return realpathSync(p); } catch { return p; }
}

/** Mount points at or below dir (symlinks in dir resolved), deepest first. */
export function mountsUnder(dir: string): MountInfo[] {
  const base = real(dir);
  return listMounts()
    .filter((m) => m.mountPoint === base || m.mountPoint.startsWith(base.endsWith('/') ? base : base + '/'))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

/** Whether dir itself is a mount point. */
export function isMountPoint(dir: string): boolean {
  const base = real(dir);
  return listMounts().some((m) => m.mountPoint === base);
}

/** Mounts a tmpfs on dir (which must exist). sizeBytes undefined → the kernel default (half of RAM). */
export async function mountTmpfs(dir: string, o: { sizeBytes?: bigint | number; mode?: number } = {}): Promise<void> {
  const opts: string[] = [];
  if (o.sizeBytes !== undefined && BigInt(o.sizeBytes) > 0n) opts.push(`size=${BigInt(o.sizeBytes)}`);
  if (o.mode !== undefined) opts.push(`mode=${o.mode.toString(8).padStart(4, '0')}`);
  const args = ['-t', 'tmpfs'];
  if (opts.length) args.push('-o', opts.join(','));
  args.push('tmpfs', dir);
  try {
    await run('mount', args);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`mount tmpfs on ${dir} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** Unmounts dir; already unmounted is fine. */
export async function unmount(dir: string): Promise<void> {
  if (!isMountPoint(dir)) return;
  try {
    await run('umount', [dir]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    if (!isMountPoint(dir)) return;
    throw new Error(`umount ${dir} failed: ${(err.stderr || err.message).trim()}`);
  }
}
