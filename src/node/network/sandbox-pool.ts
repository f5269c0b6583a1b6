// A small pool of pre-made pod sandboxes, so that a pod start does not wait for the slowest steps
// before its first container can be created: making the namespaces (`unshare`, 20–45 ms here, far
// more under load) and CNI ADD (loopback + bridge/host-local, 40–60 ms, which also competed for the
// two cores with `runc create`). A pooled sandbox is a directory `<dir>/pool-<hex>` (dir = the
// runtime's <runRoot>/pods, where each pod's namespace files live) holding a network, an IPC and a
// UTS namespace bound at `net`, `ipc` and `uts` (one `unshare --net --ipc --uts true`), the network
// one already attached to the pod network by CNI ADD with CNI_CONTAINERID `pool-<hex>`.
//
// take(dest) hands one over by renaming its directory to the pod's (`<dir>/<pod uid>`; the bind
// mounts move with it), so a pod's namespace files are where they always are, and nothing but a
// rename(2) is on the pod's critical path. The UTS namespace still has the host's name: the pod's
// containers set the pod's hostname in it (runc sets a spec's hostname inside a joined UTS namespace).
//
// Who may take one: pods without hostPorts (portmap needs the pod's port mappings at ADD time) and
// without hostIPC. The bridge and host-local plugins use nothing of the pod (host-local keys its
// reservation by container id + interface, which is why the pod remembers the pool id as its CNI
// container id and its CNI DEL uses it; the CNI result cache keeps the CNI_ARGS of the ADD, which DEL
// sends again; a DEL with the namespace at its new path, or gone, is fine for both plugins).
//
// When it fills: one sandbox at a time, only while no pod start is in progress (hold()/release()
// around a start), so that refilling does not compete with the start it is meant to speed up (the
// `unshare` at nice 10; CNI ADD at normal priority, as a niced plugin holding host-local's lock
// would hold up every other pod's ADD and DEL); a burst drains the pool and the rest start the
// ordinary way. A failed fill pauses filling for 5 s.
//
// Leftovers: an agent that stops keeps its unclaimed sandboxes on disk; the next one removes every
// `pool-*` directory (sweep on the first fill; a claimed one has been renamed), and close() (the
// agent's cleanup, `kyb agent --cleanup`) removes all of them: CNI DEL, unmount, the directory.
import { renameSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createNamespacesAt, removePodNamespaces } from './netns.js';

/** What the pool needs of the pod network (PodManager's NetworkService / CniNetwork). */
export interface PoolNetwork {
  setUp(p: { containerId: string; netns: string; namespace: string; podName: string; podUID: string }): Promise<{ ip: string }>;
  tearDown(p: { containerId: string; netns: string; namespace: string; podName: string; podUID: string }): Promise<void>;
}

export interface PooledSandbox {
  /** the CNI container id of the ADD (pool-<hex>); the pod's CNI DEL must use it */
  id: string;
  /** the namespace files (in the directory given to take()) */
  netns: string;
  ipc: string;
  uts: string;
  ip: string;
}

export interface SandboxPoolOptions {
  /** <runRoot>/pods */
  dir: string;
  /** how many ready sandboxes to keep (0: no pool) */
  size: number;
  network: () => PoolNetwork | undefined;
  log?(msg: string): void;
}

const POOL_ENTRY = /^pool-[0-9a-f]{16}$/;

/** The reference CNI DEL gets for a pooled sandbox (its args come from the CNI result cache). */
function poolRef(id: string, netns: string) { return { containerId: id, netns, namespace: '', podName: '', podUID: '' }; }

export class SandboxPool {
  private readonly ready: { id: string; ip: string }[] = [];
  private making = 0;
  private busy = 0;
  private closed = false;
  private swept = false;
  private pausedUntil = 0;
  private filling?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly o: SandboxPoolOptions) {}

  /**
   * A ready sandbox, moved to the directory `dest` (which must not exist) and now owned by the
   * caller, who tears it down like any pod sandbox (CNI DEL with its id, removePodNamespaces); or
   * undefined when none is ready.
   */
  take(dest: string): PooledSandbox | undefined {
    if (this.closed) return undefined;
    const s = this.ready.shift();
    if (!s) return undefined;
    try {
      renameSync(join(this.o.dir, s.id), dest);
    } catch (e) {
      this.ready.unshift(s);
      this.o.log?.(`sandbox pool: cannot move a sandbox to ${dest}: ${(e as Error).message}`);
      return undefined;
    }
    return { id: s.id, ip: s.ip, netns: join(dest, 'net'), ipc: join(dest, 'ipc'), uts: join(dest, 'uts') };
  }

  /** A pod start is in progress: no filling until the matching release(). */
  hold(): void { this.busy++; }

  release(): void {
    this.busy = Math.max(0, this.busy - 1);
    this.kick();
  }

  /** Fills the pool in the background when it is allowed to (network known, no start in progress). */
  kick(): void {
    if (this.filling || this.closed || this.o.size <= 0 || this.busy > 0) return;
    if (this.ready.length + this.making >= this.o.size) return;
    if (!this.o.network()) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      if (!this.retryTimer) this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kick(); }, wait).unref();
      return;
    }
    this.filling = this.fill().finally(() => { this.filling = undefined; });
  }

  private async fill(): Promise<void> {
    if (!this.swept) {
      this.swept = true;
      await this.sweep().catch((e) => this.o.log?.(`sandbox pool: removing stale sandboxes: ${(e as Error).message}`));
    }
    while (!this.closed && this.busy === 0 && this.ready.length + this.making < this.o.size) {
      const net = this.o.network();
      if (!net) return;
      const id = `pool-${randomBytes(8).toString('hex')}`;
      const dir = join(this.o.dir, id);
      const netns = join(dir, 'net');
      this.making++;
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        // the namespaces at a lower CPU priority (a pod start that begins meanwhile gets the cores
        // first); CNI ADD not: host-local holds a lock all ADDs and DELs of the network wait for
        await createNamespacesAt({ netns, ipc: join(dir, 'ipc'), uts: join(dir, 'uts') }, { nice: 10 });
        const { ip } = await net.setUp(poolRef(id, netns));
        if (this.closed) throw new Error('closed');
        this.ready.push({ id, ip });
      } catch (e) {
        await this.destroy(id).catch(() => undefined);
        if (this.closed) return;
        this.o.log?.(`sandbox pool: making a sandbox failed (pods start without the pool meanwhile): ${(e as Error).message}`);
        this.pausedUntil = Date.now() + 5000;
        setTimeout(() => this.kick(), 5000).unref();
        return;
      } finally {
        this.making--;
      }
    }
  }

  /** Removes a sandbox the pool made (CNI DEL, the namespaces, its directory). */
  private async destroy(id: string): Promise<void> {
    const dir = join(this.o.dir, id);
    const netns = join(dir, 'net');
    const net = this.o.network();
    let err: unknown;
    if (net) await net.tearDown(poolRef(id, netns)).catch((e: unknown) => { err = e; });
    await removePodNamespaces({ netns, ipc: join(dir, 'ipc'), uts: join(dir, 'uts') });
    await rm(dir, { recursive: true, force: true });
    if (err) throw err;
  }

  /** pool-* directories that are not ready here (an earlier agent's): torn down. */
  private async sweep(): Promise<void> {
    let names: string[] = [];
    try { names = await readdir(this.o.dir); } catch { return; }
    const mine = new Set(this.ready.map((s) => s.id));
    const errs: unknown[] = [];
    for (const id of names) {
      if (!POOL_ENTRY.test(id) || mine.has(id)) continue;
      await this.destroy(id).catch((e: unknown) => errs.push(e));
    }
    if (errs.length) throw errs[0];
  }

  /** Stops filling and removes every unclaimed sandbox, also those an earlier agent left (cleanup). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.filling;
    const left = this.ready.splice(0);
    const errs: unknown[] = [];
    for (const s of left) await this.destroy(s.id).catch((e: unknown) => errs.push(e));
    await this.sweep().catch((e: unknown) => errs.push(e));
    if (errs.length) throw errs[0];
  }

  /** ready sandboxes (tests, logs) */
  get size(): number { return this.ready.length; }
}
