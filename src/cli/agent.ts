// Wiring of the node agent: `kyb agent --server URL --token T` on a host that joins a cluster, and
// the agent that `kyb server` runs for its own host (unless --disable-agent). Puts together the
// agent's parts (image store, CNI network, volumes, env, probes, runc exec, host facts) and the
// streaming tunnel to the API server.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statfsSync } from 'node:fs';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../api/types.js';
import { Informer, RestClient } from '../client/index.js';
import { serviceEnvFor } from '../node/pods/service-env.js';
import { Agent, type AgentParts } from '../node/agent.js';
import { ImageStore } from '../node/images/index.js';
import { CniNetwork } from '../node/network/cni.js';
import { createNetns, deleteNetns } from '../node/network/netns.js';
import { hostInfoSync, nodePressure } from '../node/host-info.js';
import { preflight, formatPreflight } from '../node/preflight.js';
import { VolumeManager, resolveSubPath } from '../node/volumes/index.js';
import { containerEnv } from '../node/pods/env.js';
import { Prober } from '../node/probes/index.js';
import { runcExec } from '../node/runtime/runc-exec.js';
import { startStreaming } from './agent-streaming.js';
import { ServiceProxy } from '../proxy/index.js';
import { parseFlags, usage, type FlagSpec } from './flags.js';
import { parseMetricResolution } from '../node/stats/metric-resolution.js';
import { collectProcessMetrics, trackAgentMetrics } from '../node/node-metrics.js';

export interface AgentRunConfig {
  server: string;
  caPem?: string;
  token: string;
  nodeName?: string;
  /** the agent's own directory (images, containers, pods, logs): <data-dir>/agent */
  dataDir: string;
  runRoot?: string;
  cgroupParent?: string;
  bridge?: string;
  clusterDNS?: string[];
  clusterDomain?: string;
  podCIDR?: string;
  labels?: Record<string, string>;
  registriesConfig?: string;
  /** restart/pull back-off base (default 10 s) */
  backoffBaseMs?: number;
  /** pod network of the cluster (the proxy masquerades traffic from outside it) */
  clusterCIDR?: string;
  /** the proxy's nftables table / iptables chain prefix (default 'kybernetes') */
  proxyTableName?: string;
  /** run no service proxy (k3s: --disable-kube-proxy) */
  disableProxy?: boolean;
  /** skip the host prerequisite check */
  skipPreflight?: boolean;
  /** resource-metrics sampling period in ms (default 15000, as metrics-server's --metric-resolution) */
  metricResolutionMs?: number;
  log?(msg: string): void;
}

export interface RunningAgent {
  agent: Agent;
  images: ImageStore;
  /** stops the agent; containers keep running (as with the kubelet) */
  stop(): Promise<void>;
  /** stops and removes every pod, container, network namespace, the bridge, cgroups and mounts */
  cleanup(): Promise<void>;
}

interface BuiltAgent { agent: Agent; images: ImageStore; prober: Prober; client: RestClient; nodeName: string; services: Informer<Service & KObject> }

async function buildAgent(cfg: AgentRunConfig, log: (m: string) => void, importImages: boolean): Promise<BuiltAgent> {
  const dataDir = cfg.dataDir;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const nodeName = cfg.nodeName ?? hostname().toLowerCase();
  const client = new RestClient({ server: cfg.server || 'https://127.0.0.1:1' /* cleanup needs no server */, caPem: cfg.caPem, token: cfg.token, userAgent: `kyb-agent/${nodeName}`, qps: 200, burst: 400 });
  const images = new ImageStore({ root: join(dataDir, 'images'), registriesConfig: cfg.registriesConfig ?? (existsSync('/etc/kybernetes/registries.yaml') ? '/etc/kybernetes/registries.yaml' : undefined) });
  const importDir = join(dataDir, 'images', 'import');
  if (importImages && existsSync(importDir)) {
    for (const r of await images.importDirectory(importDir)) {
      if (r.error) log(`import ${r.file}: ${r.error}`); else log(`imported ${r.refs.join(', ')} from ${r.file}`);
    }
  }
  const services = new Informer<Service & KObject>({ client, resource: { group: '', version: 'v1', plural: 'services' } });
  const volumes = new VolumeManager({ root: join(dataDir, 'pods'), client, nodeName });
  const prober = new Prober();
  let agent: Agent | undefined;
  const bridge = cfg.bridge ?? 'kyb0';
  let network: CniNetwork | undefined;
  const parts: AgentParts = {
    images,
    volumes,
    env: (pod, c, imageEnv) => {
      // as the kubelet: no container starts before the Services were read once (their variables)
      if (!services.hasSynced()) return Promise.reject(new Error('services have not yet been read at least once, cannot construct envvars'));
      const serviceEnv = serviceEnvFor(pod, services.indexer.list());
      return containerEnv(pod, c, { client, imageEnv, serviceEnv, hostname: pod.spec?.hostname ?? pod.metadata?.name });
    },
    subPath: (v, s) => resolveSubPath(v, s),
    probes: {
      add: (key, spec, onResult) => prober.add(key, {
        probe: spec.probe, kind: spec.kind, podIP: spec.podIP, container: spec.container,
        exec: (command, timeoutMs) => agent!.runtime.exec(spec.containerId, command, timeoutMs),
      }, onResult),
    },
    network: (podCIDR) => {
      network = new CniNetwork({ networkName: `kyb-${bridge}`, bridge, podCIDR, stateDir: join(dataDir, 'cni') });
      return network;
    },
    netns: { create: createNetns, remove: deleteNetns },
    hostStatus: () => hostInfoSync({ dataDir, hostname: nodeName }),
    pressure: () => nodePressure(dataDir),
    imageGC: async (inUse) => {
      // free space down to 80 % use (the kubelet's image-gc-low-threshold)
      const st = statfsSync(join(dataDir, 'images'));
      const total = st.blocks * st.bsize;
      const used = total - st.bavail * st.bsize;
      const toFree = Math.max(0, used - 0.8 * total);
      if (toFree > 0) {
        const r = await images.gc(inUse, toFree);
        if (r.removedImages.length) log(`image gc freed ${r.freedBytes} bytes: ${r.removedImages.join(', ')}`);
      }
    },
    exec: (runcRoot, id, command, opts) => runcExec({ runc: agent!.runtime.runc, root: runcRoot, id, command, tty: opts.tty, stdin: opts.stdin }),
  };
  agent = new Agent({
    client, nodeName, dataDir,
    runRoot: cfg.runRoot ?? '/run/kybernetes', cgroupParent: cfg.cgroupParent ?? '/kybernetes',
    clusterDNS: cfg.clusterDNS ?? ['10.43.0.10'], clusterDomain: cfg.clusterDomain ?? 'cluster.local',
    podCIDR: cfg.podCIDR, labels: cfg.labels, backoffBaseMs: cfg.backoffBaseMs, parts, log,
    metricResolutionMs: cfg.metricResolutionMs,
  });
  return { agent, images, prober, client, nodeName, services };
}

/** Stops and removes everything an agent with this configuration made; needs no API server. */
export async function cleanupAgent(cfg: AgentRunConfig): Promise<void> {
  const b = await buildAgent(cfg, cfg.log ?? (() => undefined), false);
  await b.agent.cleanup();
  await ServiceProxy.cleanup({ tableName: cfg.proxyTableName });
  b.client.close();
  // the runtime's state directories (runc's root, conmon's exit files and attach sockets, the pods'
  // namespace files) are empty of anything live now; the run root goes too unless something else
  // (another proxy's route_localnet record under /run/kybernetes/proxy) still lives there
  const runRoot = cfg.runRoot ?? '/run/kybernetes';
  for (const d of ['runc', 'exits', 'sockets', 'pods']) {
    try { rmSync(join(runRoot, d), { recursive: true, force: true }); } catch (e) { cfg.log?.(`cleanup: ${join(runRoot, d)}: ${(e as Error).message}`); }
  }
  try { rmdirSync(runRoot); } catch { /* not empty, or already gone */ }
}

export async function startAgent(cfg: AgentRunConfig): Promise<RunningAgent> {
  const log = cfg.log ?? ((m: string) => process.stderr.write(`kyb agent: ${m}\n`));
  if (!cfg.skipPreflight) {
    const pf = await preflight();
    if (!pf.ok) throw new Error(`the node agent cannot run on this host:\n${formatPreflight(pf)}`);
    for (const ch of pf.checks) if (!ch.ok) log(`preflight: ${ch.name}: ${ch.detail}${ch.fix ? ` (fix: ${ch.fix})` : ''}`);
  }
  const { agent, images, prober, client, nodeName, services } = await buildAgent(cfg, log, true);
  const ac = new AbortController();
  const servicesDone = services.run(ac.signal);
  const streaming = startStreaming({ agent, server: cfg.server, caPem: cfg.caPem, token: cfg.token, nodeName, signal: ac.signal, log });
  const done = agent.run(ac.signal).catch((e) => log(`stopped: ${(e as Error).stack ?? e}`));
  const proxy = cfg.disableProxy ? undefined : new ServiceProxy({
    client, nodeName, nodeIPs: [], clusterCIDR: cfg.clusterCIDR ?? '10.42.0.0/16', tableName: cfg.proxyTableName,
    // (no stateDir: the route_localnet sysctl is host-wide, so its reference record must be the host's
    // one, /run/kybernetes/proxy, whatever run dir this agent has; else one agent's cleanup resets it
    // under another's feet)
    log: (m) => log(`proxy: ${m}`),
  });
  const proxyDone = proxy?.run(ac.signal).catch((e) => log(`proxy stopped: ${(e as Error).stack ?? e}`));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    ac.abort();
    await done;
    await proxyDone;
    await servicesDone;
    await streaming.stop();
    prober.stopAll();
    client.close();
  };
  return {
    agent, images, stop,
    async cleanup() {
      await stop();
      await agent.cleanup();
      if (!cfg.disableProxy) await ServiceProxy.cleanup({ tableName: cfg.proxyTableName });
    },
  };
}

export const agentFlags: FlagSpec = {
  server: { type: 'string', help: 'URL of the API server (https://HOST:6443)' },
  token: { type: 'string', help: 'bearer token to join with' },
  'ca-file': { type: 'string', help: "the API server's CA certificate (PEM)" },
  'data-dir': { type: 'string', help: 'state directory (default /var/lib/kybernetes)' },
  'node-name': { type: 'string', help: 'node name (default: the host name)' },
  'node-label': { type: 'list', default: [], help: 'extra node label KEY=VALUE' },
  'cluster-dns': { type: 'string', default: '10.43.0.10', help: 'DNS server written into pods\' resolv.conf' },
  'cluster-domain': { type: 'string', default: 'cluster.local', help: 'cluster domain' },
  'cluster-cidr': { type: 'string', default: '10.42.0.0/16', help: 'pod network of the cluster' },
  'disable-kube-proxy': { type: 'boolean', help: 'run no service proxy on this node' },
  'pod-cidr': { type: 'string', help: 'use this pod CIDR instead of one assigned by the control plane' },
  'private-registry': { type: 'string', help: 'registries.yaml (mirrors, auth, insecure registries)' },
  'run-dir': { type: 'string', default: '/run/kybernetes', help: '(hidden) runc state and conmon exit files' },
  'cgroup-parent': { type: 'string', default: '/kybernetes', help: '(hidden) cgroup under which pods go' },
  'pod-bridge': { type: 'string', default: 'kyb0', help: '(hidden) name of the pod network bridge' },
  'proxy-table': { type: 'string', help: "(hidden) the proxy's nftables table / iptables chain prefix (default 'kybernetes')" },
  'metric-resolution': { type: 'string', default: '15s', help: 'how often CPU and memory of pods and the node are sampled for metrics.k8s.io (a duration, e.g. 15s, 1s)' },
  cleanup: { type: 'boolean', help: 'stop and remove every pod, container, network and cgroup of this agent, then exit' },
  help: { type: 'boolean', help: 'show this help' },
};

/** `kyb agent`: a node agent joining a cluster. Resolves when it stops (SIGTERM/SIGINT). */
export async function runAgentCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, agentFlags);
  if (f.help) { process.stdout.write(usage('agent', agentFlags)); return; }
  const server = f.server as string | undefined;
  const token = f.token as string | undefined;
  if ((!server || !token) && !f.cleanup) throw new Error('kyb agent needs --server URL and --token TOKEN');
  const base = (f['data-dir'] as string | undefined) ?? (process.getuid?.() === 0 ? '/var/lib/kybernetes' : join(process.env.HOME ?? '.', '.kybernetes'));
  const labels = Object.fromEntries((f['node-label'] as string[]).map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; }));
  const acfg: AgentRunConfig = {
    server: server ?? '', token: token ?? '', caPem: f['ca-file'] ? readFileSync(f['ca-file'] as string, 'utf8') : undefined,
    dataDir: join(base, 'agent'), nodeName: f['node-name'] as string | undefined, labels,
    clusterDNS: [f['cluster-dns'] as string], clusterDomain: f['cluster-domain'] as string,
    clusterCIDR: f['cluster-cidr'] as string, disableProxy: f['disable-kube-proxy'] as boolean | undefined,
    runRoot: f['run-dir'] as string, cgroupParent: f['cgroup-parent'] as string, bridge: f['pod-bridge'] as string,
    proxyTableName: f['proxy-table'] as string | undefined,
    podCIDR: f['pod-cidr'] as string | undefined, registriesConfig: f['private-registry'] as string | undefined,
    metricResolutionMs: parseMetricResolution(f['metric-resolution'] as string),
  };
  if (f.cleanup) { await cleanupAgent(acfg); return; }
  const a = await startAgent(acfg);
  collectProcessMetrics(); trackAgentMetrics(a.agent); // prometheus: the agent's /metrics
  await new Promise<void>((resolve) => {
    const stop = () => { void a.stop().then(resolve); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

