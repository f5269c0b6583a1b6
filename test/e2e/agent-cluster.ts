// Test support for end-to-end files that run `kyb server` with its own node agent (real runc, CNI,
// service proxy): whether this host can, a poll with a deadline, and a cluster whose every host-level
// name is unique to the file (data dir, run dir, cgroup parent, bridge, nft table, pod CIDR), so that
// two files run at once without meeting. `stop()` removes everything and checks that nothing is left.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startCluster, type TestCluster } from '../integration/cluster.js';
import { cleanupAgent, type AgentRunConfig } from '../../src/cli/agent.js';
import { buildBusyboxImage } from '../../src/node/images/index.js';

/** root, runc, conmon, the CNI plugins, nft and busybox-static (plus any extra files named) */
export function canRunContainers(extraFiles: string[] = []): boolean {
  if (process.getuid?.() !== 0) return false;
  if (![...['/bin/busybox', '/usr/lib/cni/bridge'], ...extraFiles].every((f) => existsSync(f))) return false;
  try { for (const cmd of ['runc', 'conmon', 'nft']) execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Calls f until it returns something other than undefined/false (errors count as "not yet"). */
export async function poll<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await f(); if (v !== undefined && v !== false) return v as T; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface AgentClusterOptions {
  /** a short word for names: data dir kyb-<name>-…, node <name>-<suffix>, cgroup /kyb-<name>-<suffix> */
  name: string;
  /** the second octet of the pod CIDR 10.<octet>.0.0/16 is picked from [first, first + count) */
  octets: [first: number, count: number];
  /** busybox images to build and drop into the import directory (default ref kyb.local/busybox:1.35) */
  images?: { ref?: string; files?: Record<string, string> }[];
  /** more `kyb server` flags */
  args?: string[];
}

export interface AgentCluster {
  c: TestCluster;
  dir: string;
  node: string;
  suffix: string;
  octet: number;
  agentCfg: AgentRunConfig;
  /** stops the server, removes what the agent made, and asserts nothing is left */
  stop(): Promise<void>;
}

export async function startAgentCluster(o: AgentClusterOptions): Promise<AgentCluster> {
  const suffix = randomBytes(3).toString('hex');
  const octet = o.octets[0] + (parseInt(suffix, 16) % o.octets[1]);
  const node = `${o.name}-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), `kyb-${o.name}-`));
  const importDir = join(dir, 'agent', 'images', 'import');
  mkdirSync(importDir, { recursive: true });
  for (const [i, img] of (o.images ?? [{}]).entries()) await buildBusyboxImage({ out: join(importDir, `image-${i}.tar`), ...img });
  const tag = `${o.name.slice(0, 1)}${suffix}`;
  const agentCfg: AgentRunConfig = {
    server: '', token: '', dataDir: join(dir, 'agent'), nodeName: node,
    runRoot: join(dir, 'run'), cgroupParent: `/kyb-${o.name}-${suffix}`, bridge: `kyb${tag}`, proxyTableName: `k${tag}`,
  };
  let c: TestCluster;
  try {
    c = await startCluster(['--with-agent', '--data-dir', dir, '--node-name', node, '--cluster-cidr', `10.${octet}.0.0/16`,
      '--cluster-dns-upstream', 'none', '--agent-run-dir', agentCfg.runRoot!, '--cgroup-parent', agentCfg.cgroupParent!,
      '--pod-bridge', agentCfg.bridge!, '--proxy-table', agentCfg.proxyTableName!, ...(o.args ?? [])]);
  } catch (e) {
    await cleanupAgent(agentCfg).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    c, dir, node, suffix, octet, agentCfg,
    async stop() {
      let runLeft = true;
      try {
        await c.server.stop();
        await cleanupAgent(agentCfg);
        runLeft = existsSync(agentCfg.runRoot!);
      } finally {
        await c.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
      assert.ok(!runLeft, 'cleanup removed the run dir (runc state, exit files, sockets, namespace files)');
      assert.ok(!existsSync(dir), 'data dir removed');
      assert.ok(!execFileSync('ip', ['link', 'show']).toString().includes(agentCfg.bridge!), 'bridge removed');
      for (const ctl of ['memory', 'cpuacct', 'pids']) assert.ok(!existsSync(`/sys/fs/cgroup/${ctl}${agentCfg.cgroupParent}`), `${ctl} cgroups removed`);
      assert.ok(!execFileSync('nft', ['list', 'tables']).toString().includes(agentCfg.proxyTableName!), 'proxy table removed');
    },
  };
}
