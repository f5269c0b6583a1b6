// Named network namespaces for pod sandboxes, made with iproute2 (`ip netns add NAME` bind-mounts
// a fresh namespace at /run/netns/NAME, which is where CNI plugins and runc's config.json then
// point). Both operations are idempotent so the agent can call them again after a crash or
// restart: adding an existing namespace returns its path, deleting a missing one succeeds.
// A leftover /run/netns/NAME file that is no longer a mount (e.g. after a reboot without tmpfs)
// is replaced.
import { readFile, unlink } from 'node:fs/promises';
import { findBinary, run } from './exec.js';

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
