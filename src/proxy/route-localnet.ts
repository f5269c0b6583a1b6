// net.ipv4.conf.all.route_localnet: NodePorts on 127.0.0.1 need it (the kernel otherwise refuses to
// route a packet with a 127.0.0.0/8 source out of a real interface after the DNAT), together with
// masquerading of that traffic (which the rules do).
//
// What we do, and how it is undone: kube-proxy sets conf.all (the egress interface would be enough,
// but which one that is depends on where each endpoint lives). We set it too, and keep a small
// reference record so that `cleanup` can restore the original value without breaking another proxy
// instance on the same host (a test next to a running cluster, say):
//
//   <stateDir>/instances/<tableName>   exists while that instance's rules exist
//   <stateDir>/route_localnet.orig     the value we found before the first instance changed it
//
// `ensure(owner)` registers the owner and, if the value is 0, records "0" (unless a record exists)
// and writes 1. `release(owner)` unregisters it; when no instance is left and a record exists, the
// recorded value is written back and the record removed. If the value was already 1 when we came,
// nothing is recorded and nothing is restored. The proxy calls ensure on every full sync, so a
// value reset behind its back is repaired within one sync period. The last release also removes
// the (then empty) state directories.
import { mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const DEFAULT_STATE_DIR = '/run/kybernetes/proxy';
export const ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/all/route_localnet';

export class RouteLocalnet {
  constructor(readonly stateDir: string = DEFAULT_STATE_DIR, readonly sysctlPath: string = ROUTE_LOCALNET) {}

  private get instances(): string { return join(this.stateDir, 'instances'); }
  private get orig(): string { return join(this.stateDir, 'route_localnet.orig'); }

  async read(): Promise<string> { return (await readFile(this.sysctlPath, 'utf8')).trim(); }

  /** Registers owner and makes sure the value is 1. */
  async ensure(owner: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await mkdir(this.instances, { recursive: true, mode: 0o755 });
      try { await writeFile(join(this.instances, owner), `${process.pid}\n`); break; } catch (e) {
        // another instance's release removed the empty directory in between: make it again
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw e;
      }
    }
    const v = await this.read();
    if (v === '1') return;
    try { await writeFile(this.orig, `${v}\n`, { flag: 'wx' }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    await writeFile(this.sysctlPath, '1\n');
  }

  /** Unregisters owner; restores the recorded value when it was the last one. Returns whether it restored. */
  async release(owner: string): Promise<boolean> {
    await rm(join(this.instances, owner), { force: true });
    let left: string[] = [];
    try { left = await readdir(this.instances); } catch { /* no directory: nobody left */ }
    if (left.length > 0) return false;
    let orig: string | undefined;
    try { orig = (await readFile(this.orig, 'utf8')).trim(); } catch { /* we changed nothing */ }
    if (orig !== undefined) {
      await writeFile(this.sysctlPath, `${orig}\n`);
      await rm(this.orig, { force: true });
    }
    // leave no empty directories behind (the default's parent, /run/kybernetes, is shared with the
    // agent: removed only when empty)
    const dirs = [this.instances, this.stateDir];
    if (this.stateDir === DEFAULT_STATE_DIR) dirs.push(dirname(this.stateDir));
    for (const d of dirs) {
      try { await rmdir(d); } catch { break; }
    }
    return orig !== undefined;
  }

  /** Other instances registered now (for tests). */
  async others(owner: string): Promise<string[]> {
    try { return (await readdir(this.instances)).filter((n) => n !== owner); } catch { return []; }
  }
}
