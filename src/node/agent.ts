// The node agent (our kubelet): registers its Node, heartbeats its Lease, keeps the node conditions
// honest, and runs the pods bound to it as real containers (runc + conmon, CNI networking), reporting
// their status through pods/status. It is a client of the API only. Streaming (logs, exec, attach,
// port-forward) reaches it through a tunnel it dials out to the API server, so it may sit behind NAT.
//
//   start: preflight → images store (import dir) → register Node → wait for spec.podCIDR → CNI network
//   loops: Lease renewal (10 s) · node status (conditions, every 10 s when changed, 1 min otherwise)
//          pod informer (spec.nodeName=<node>) → work queue → PodManager.sync (one pod at a time per key)
//          conmon exit files → the owning pod is synced · periodic resync of every pod (10 s)
//          resource metrics: every running container's cgroup and the node sampled every
//          metricResolutionMs (15 s), served as GET /metrics/resource (src/node/stats/)
import { setMaxListeners } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import { streamLog } from './logs/log-reader.js';
import type { Node, NodeCondition, Pod } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../api/types.js';
import { errors, isStatusError } from '../machinery/status.js';
import { EventRecorder, Informer, RestClient, WorkQueue, runWorkers, type ResourceRef } from '../client/index.js';
import { Runtime, removeCgroupParent } from './runtime/runtime.js';
import { attachBridge, conmonAttach } from './runtime/attach.js';
import { PodManager, type PodObj, type NetworkService, type ImageService, type VolumeService, type ProbeService, type EnvResolver, type SubPathResolver } from './pods/pod-manager.js';
import type { ExecProcess, LogSource, StreamingBackend } from './streaming/backend.js';
import { ResourceCollector } from './stats/resource-collector.js';
import { dialPodLoopback, listensOnLoopback, loopbackForwardAvailable } from './network/pod-loopback.js';
import type { ResourceMetricsReport, ResourceMetricsSource } from './stats/resource-metrics.js';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const PODS: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
const LEASES: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

export interface AgentParts {
  images: ImageService;
  volumes: VolumeService;
  env: EnvResolver;
  subPath?: SubPathResolver;
  probes?: ProbeService;
  /** makes the pod network once the node has a pod CIDR */
  network(podCIDR: string): NetworkService & { cleanup?(): Promise<void> };
  netns: { create(name: string): Promise<string>; remove(name: string): Promise<void> };
  /** the Node status pieces from the host (capacity, allocatable, addresses, nodeInfo) */
  hostStatus(): Pick<NonNullable<Node['status']>, 'capacity' | 'allocatable' | 'addresses' | 'nodeInfo'>;
  /** pressure conditions: true = under pressure */
  pressure?(): { memory: boolean; disk: boolean; pid: boolean };
  /** frees image space when the disk is under pressure; inUse = image IDs of existing containers */
  imageGC?(inUse: Set<string>): Promise<void>;
  /** exec in a container for kubectl exec (runc exec with pipes or a pty) */
  exec?(runcRoot: string, id: string, command: string[], opts: { tty: boolean; stdin: boolean }): ExecProcess;
}

export interface AgentOptions {
  client: RestClient;
  nodeName: string;
  /** <data-dir>/agent */
  dataDir: string;
  /** runc state, conmon exit files (default /run/kybernetes) */
  runRoot: string;
  /** cgroup parent of every pod (default /kybernetes) */
  cgroupParent: string;
  clusterDNS: string[];
  clusterDomain: string;
  /** use this pod CIDR instead of waiting for the control plane to assign one */
  podCIDR?: string;
  labels?: Record<string, string>;
  taints?: Node['spec'] extends infer S ? S extends { taints?: infer T } ? T : never : never;
  leaseDurationSeconds?: number;
  heartbeatIntervalMs?: number;
  resyncIntervalMs?: number;
  podWorkers?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** resource-metrics sampling period (default 15 s, as metrics-server) */
  metricResolutionMs?: number;
  /** the cgroup filesystem the metrics are read from (default /sys/fs/cgroup) */
  cgroupRoot?: string;
  parts: AgentParts;
  log?(msg: string): void;
}

const nowMicro = (): string => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const nowSec = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class Agent implements StreamingBackend, ResourceMetricsSource {
  readonly runtime: Runtime;
  readonly pods: PodManager;
  /** CPU and memory of the node and of every running container */
  readonly stats: ResourceCollector;
  private readonly informer: Informer<PodObj>;
  private readonly queue = new WorkQueue<string>({ name: 'pods' });
  private readonly recorder: EventRecorder;
  private network?: NetworkService & { cleanup?(): Promise<void> };
  private hostIP = '127.0.0.1';
  private nodeUID?: string;
  private readyConditionSince = nowSec();
  private lastConditions = '';
  private lastStatusWrite = 0;

  constructor(private readonly o: AgentOptions) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    this.runtime = new Runtime({ runRoot: o.runRoot, stateDir: join(o.dataDir, 'containers') });
    this.recorder = new EventRecorder({ client: o.client, component: 'kubelet', host: o.nodeName });
    this.informer = new Informer<PodObj>({ client: o.client, resource: PODS, fieldSelector: `spec.nodeName=${o.nodeName}` });
    this.pods = new PodManager({
      client: o.client, nodeName: o.nodeName, hostIP: () => this.hostIP, runtime: this.runtime,
      images: o.parts.images, network: () => this.network, netns: o.parts.netns, volumes: o.parts.volumes,
      env: o.parts.env, subPath: o.parts.subPath, probes: o.parts.probes, recorder: this.recorder,
      podsDir: join(o.dataDir, 'pods'), logsDir: join(o.dataDir, 'logs'), cgroupParent: o.cgroupParent,
      clusterDNS: o.clusterDNS, clusterDomain: o.clusterDomain,
      enqueue: (key, after) => { if (after && after > 0) this.queue.addAfter(key, after); else this.queue.add(key); },
      log: (m) => this.log(m), backoffBaseMs: o.backoffBaseMs, backoffMaxMs: o.backoffMaxMs,
    });
    this.stats = new ResourceCollector({
      nodeName: o.nodeName, resolutionMs: o.metricResolutionMs, cgroupRoot: o.cgroupRoot,
      containers: () => this.pods.runningContainers(), log: (m) => this.log(m),
    });
  }

  /** the latest resource metrics (for the streaming server's GET /metrics/resource) */
  resourceMetrics(): ResourceMetricsReport { return this.stats.resourceMetrics(); }

  private log(m: string): void { (this.o.log ?? ((s: string) => process.stderr.write(`kyb agent: ${s}\n`)))(m); }

  /** Runs until signal aborts. Containers keep running after it returns (as with the kubelet). */
  async run(signal: AbortSignal): Promise<void> {
    setMaxListeners(0, signal);
    const node = await this.register(signal);
    const podCIDR = await this.waitForPodCIDR(node, signal);
    if (signal.aborted) return;
    this.network = this.o.parts.network(podCIDR);
    this.pods.startSandboxPool(); // pre-made pod sandboxes (network/sandbox-pool.ts), filled while no pod starts
    writeFileSync(join(this.o.dataDir, 'pod-cidr'), podCIDR); // for an offline cleanup
    await this.writeNodeStatus(true).catch((e) => this.log(`node status: ${(e as Error).message}`));

    this.informer.addEventHandler({
      onAdd: (p) => this.queue.add(key(p)),
      onUpdate: (_o, p) => this.queue.add(key(p)),
      onDelete: (p) => this.queue.add(key(p)),
    });
    const stopExits = this.runtime.watchExits((id) => this.pods.containerExited(id));
    const informerRun = this.informer.run(signal);
    const statsRun = this.stats.run(signal);
    const timers: NodeJS.Timeout[] = [];
    const heartbeat = this.o.heartbeatIntervalMs ?? 10_000;
    timers.push(setInterval(() => { void this.renewLease().catch((e) => this.log(`lease: ${(e as Error).message}`)); }, heartbeat));
    timers.push(setInterval(() => { void this.writeNodeStatus(false).catch((e) => this.log(`node status: ${(e as Error).message}`)); }, heartbeat));
    await this.renewLease().catch((e) => this.log(`lease: ${(e as Error).message}`));
    // orphans: containers of pods the API no longer binds here are found on the first resync
    const resync = () => {
      if (!this.informer.hasSynced()) return;
      for (const p of this.informer.indexer.list()) this.queue.add(key(p));
      const live = new Set(this.informer.indexer.list().map((p) => p.metadata.uid));
      for (const [uid, p] of this.pods.runtimePodUIDs()) {
        if (!live.has(uid)) this.queue.add(`${p.namespace}/${p.name}`);
      }
    };
    timers.push(setInterval(resync, this.o.resyncIntervalMs ?? 10_000));
    const first = setInterval(() => { if (this.informer.hasSynced()) { clearInterval(first); resync(); } }, 50);
    timers.push(first);
    await runWorkers(this.queue, this.o.podWorkers ?? 8, async (k) => {
      const [ns, name] = k.split('/') as [string, string];
      await this.pods.sync(this.informer.indexer.get(ns, name), k);
    }, signal, { onError: (k, e) => this.log(`sync ${k}: ${(e as Error).message}`) });
    for (const t of timers) clearInterval(t);
    stopExits();
    await informerRun;
    await statsRun;
    this.recorder.close();
    this.runtime.close();
  }

  /** Stops every pod of this agent and removes their containers, networks, volumes, cgroups. */
  async cleanup(): Promise<void> {
    if (!this.network) {
      // not running (kyb agent --cleanup): the network as it was made, from the saved pod CIDR
      let cidr: string | undefined;
      try { cidr = readFileSync(join(this.o.dataDir, 'pod-cidr'), 'utf8').trim(); } catch { /* never had one */ }
      if (cidr) this.network = this.o.parts.network(cidr);
    }
    await this.pods.cleanupAll();
    await this.network?.cleanup?.();
    removeCgroupParent(this.o.cgroupParent);
  }

  // ---------------------------------------------------------------------------------------- node

  private nodeLabels(): Record<string, string> {
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    return {
      'kubernetes.io/hostname': this.o.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': arch,
      'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': arch, ...(this.o.labels ?? {}),
    };
  }

  private async register(signal: AbortSignal): Promise<Node & KObject> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const host = this.o.parts.hostStatus();
        this.hostIP = host.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '127.0.0.1';
        const body: Node & KObject = {
          apiVersion: 'v1', kind: 'Node',
          metadata: { name: this.o.nodeName, labels: this.nodeLabels(), annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
          spec: { ...(this.o.podCIDR ? { podCIDR: this.o.podCIDR, podCIDRs: [this.o.podCIDR] } : {}), ...(this.o.taints ? { taints: this.o.taints } : {}) },
        };
        let node: Node & KObject;
        try {
          node = await this.o.client.create<Node & KObject>(NODES, null, body);
        } catch (e) {
          if (!isStatusError(e, 'AlreadyExists')) throw e;
          node = await this.o.client.patch<Node & KObject>(NODES, null, this.o.nodeName, { metadata: { labels: this.nodeLabels() } }, 'merge');
        }
        this.nodeUID = node.metadata?.uid;
        this.log(`registered node ${this.o.nodeName} (${this.hostIP})`);
        return node;
      } catch (e) {
        this.log(`registering node: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.min(7000, 200 * 2 ** attempt)));
      }
    }
    throw errors.serviceUnavailable('stopped');
  }

  private async waitForPodCIDR(node: Node & KObject, signal: AbortSignal): Promise<string> {
    let n = node;
    let warned = false;
    for (;;) {
      const cidr = n.spec?.podCIDR;
      if (cidr) return cidr;
      if (signal.aborted) return '';
      if (!warned) { this.log('waiting for the control plane to assign a pod CIDR'); warned = true; await this.writeNodeStatus(true).catch(() => undefined); }
      await new Promise((r) => setTimeout(r, 300));
      try { n = await this.o.client.get<Node & KObject>(NODES, null, this.o.nodeName); } catch { /* retry */ }
    }
  }

  private async renewLease(): Promise<void> {
    const dur = this.o.leaseDurationSeconds ?? 40;
    const spec = { holderIdentity: this.o.nodeName, leaseDurationSeconds: dur, renewTime: nowMicro() };
    try {
      await this.o.client.patch(LEASES, 'kube-node-lease', this.o.nodeName, { spec }, 'merge');
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) throw e;
      await this.o.client.create(LEASES, 'kube-node-lease', {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
        metadata: {
          name: this.o.nodeName, namespace: 'kube-node-lease',
          ...(this.nodeUID ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.o.nodeName, uid: this.nodeUID }] } : {}),
        },
        spec,
      } as KObject);
    }
  }

  private conditions(): NodeCondition[] {
    const now = nowSec();
    const p = this.o.parts.pressure?.() ?? { memory: false, disk: false, pid: false };
    const netReady = !!this.network;
    const c = (type: string, bad: boolean, okReason: string, okMsg: string, badReason: string, badMsg: string): NodeCondition => ({
      type, status: bad ? 'True' : 'False', reason: bad ? badReason : okReason, message: bad ? badMsg : okMsg,
      lastHeartbeatTime: now, lastTransitionTime: this.readyConditionSince,
    });
    return [
      c('MemoryPressure', p.memory, 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available', 'KubeletHasInsufficientMemory', 'kubelet has insufficient memory available'),
      c('DiskPressure', p.disk, 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure', 'KubeletHasDiskPressure', 'kubelet has disk pressure'),
      c('PIDPressure', p.pid, 'KubeletHasSufficientPID', 'kubelet has sufficient PID available', 'KubeletHasInsufficientPID', 'kubelet has insufficient PID available'),
      {
        type: 'Ready', status: netReady ? 'True' : 'False',
        reason: netReady ? 'KubeletReady' : 'KubeletNotReady',
        message: netReady ? 'kubelet is posting ready status' : 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
        lastHeartbeatTime: now, lastTransitionTime: this.readyConditionSince,
      },
    ];
  }

  private gcRunning = false;

  private async writeNodeStatus(force: boolean): Promise<void> {
    const conds = this.conditions();
    if (conds.find((c) => c.type === 'DiskPressure')?.status === 'True' && this.o.parts.imageGC && !this.gcRunning) {
      // as the kubelet's image GC: unused images go first when the disk fills up
      this.gcRunning = true;
      const inUse = new Set(this.runtime.list().map((m) => m.imageId));
      void this.o.parts.imageGC(inUse).catch((e) => this.log(`image gc: ${(e as Error).message}`)).finally(() => { this.gcRunning = false; });
    }
    const sig = JSON.stringify(conds.map((c) => [c.type, c.status]));
    if (sig !== this.lastConditions) { this.readyConditionSince = nowSec(); for (const c of conds) c.lastTransitionTime = this.readyConditionSince; }
    if (!force && sig === this.lastConditions && Date.now() - this.lastStatusWrite < 60_000) return;
    const host = this.o.parts.hostStatus();
    await this.o.client.patch(NODES, null, this.o.nodeName, {
      status: {
        ...host, conditions: conds, daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      },
    }, 'strategic', { subresource: 'status' });
    this.lastConditions = sig;
    this.lastStatusWrite = Date.now();
  }

  // ------------------------------------------------------------------------------- streaming

  private podFor(namespace: string, name: string): PodObj {
    const p = this.informer.indexer.get(namespace, name);
    if (!p) throw errors.notFound('pods', name);
    return p;
  }

  private containerName(pod: Pod, container: string | undefined): string {
    const names = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name);
    if (!container) {
      const main = pod.spec?.containers ?? [];
      if (main.length === 1) return main[0]!.name;
      throw errors.badRequest(`a container name must be specified for pod ${pod.metadata?.name}, choose one of: [${main.map((c) => c.name).join(' ')}]`);
    }
    if (!names.includes(container)) throw errors.badRequest(`container ${container} is not valid for pod ${pod.metadata?.name}`);
    return container;
  }

  async logSource(namespace: string, pod: string, container: string | undefined, previous: boolean): Promise<LogSource> {
    const p = this.podFor(namespace, pod);
    const c = this.containerName(p, container);
    const info = await this.pods.containerOf(namespace, pod, p.metadata.uid, c, previous);
    if (!info) {
      if (previous) throw errors.badRequest(`previous terminated container "${c}" in pod "${pod}" not found`);
      const st = [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].find((s) => s.name === c);
      const reason = st?.state?.waiting?.reason ?? 'ContainerCreating';
      throw errors.badRequest(`container "${c}" in pod "${pod}" is waiting to start: ${reason}`);
    }
    return { path: info.meta.logPath, exited: this.pods.waitExit(info.meta.id) };
  }

  private async runningContainer(namespace: string, pod: string, container: string | undefined): Promise<string> {
    const p = this.podFor(namespace, pod);
    const c = this.containerName(p, container);
    const info = await this.pods.containerOf(namespace, pod, p.metadata.uid, c, false);
    if (!info || info.state !== 'running') throw errors.badRequest(`container ${c} is not running`);
    return info.meta.id;
  }

  async exec(namespace: string, pod: string, container: string | undefined, command: string[], opts: { tty: boolean; stdin: boolean }): Promise<ExecProcess> {
    const id = await this.runningContainer(namespace, pod, container);
    if (!this.o.parts.exec) throw errors.badRequest('exec is not supported by this agent');
    return this.o.parts.exec(this.runtime.runcRoot, id, command, opts);
  }

  /**
   * Attach. For a container declared with `stdin: true` or `tty: true`: conmon's attach socket
   * (runtime/attach.ts; conmon was started with -i / --leave-stdin-open / -t from the spec), so the
   * client's input reaches the container's stdin, stdout and stderr stay apart (one stream for a tty),
   * and a tty follows the client's terminal size. Otherwise, or when that bridge cannot be made
   * (no python3 on the host, socket gone): the container's output from now on, read from its log,
   * stdout and stderr merged on stdout, stdin not connected. `exited` gives the container's exit code
   * when it has exited (0 when the client let go first).
   */
  async attach(namespace: string, pod: string, container: string | undefined, opts: { tty: boolean; stdin: boolean }): Promise<ExecProcess> {
    const id = await this.runningContainer(namespace, pod, container);
    const exitCode = async () => (await this.runtime.info(id))?.exit?.exitCode ?? 0;
    const p = this.podFor(namespace, pod);
    const name = this.containerName(p, container);
    const spec = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === name);
    if ((spec?.stdin || spec?.tty) && attachBridge()) {
      try {
        const proc = await conmonAttach({
          dir: join(this.runtime.runRoot, 'sockets', id),
          stdin: opts.stdin && spec.stdin === true,
          tty: spec.tty === true,
        });
        return { ...proc, exited: proc.exited.then(exitCode) };
      } catch (e) {
        this.log(`attach ${namespace}/${pod}/${name}: ${(e as Error).message}; streaming its log instead`);
      }
    }
    const src = await this.logSource(namespace, pod, container, false);
    const out = new PassThrough();
    const ac = new AbortController();
    const done = streamLog(src, { follow: true, since: new Date() }, out, ac.signal).catch(() => undefined).finally(() => out.end());
    return {
      stdin: null, stdout: out, stderr: null,
      exited: done.then(exitCode),
      kill: () => ac.abort(),
    };
  }

  async portForward(namespace: string, pod: string, port: number): Promise<Duplex> {
    const p = this.podFor(namespace, pod);
    const ip = this.pods.podIP(p.metadata.uid!) ?? p.status?.podIP;
    if (!ip) throw errors.badRequest(`pod ${pod} has no IP address yet`);
    const direct = await new Promise<Duplex | Error>((resolve) => {
      const s = netConnect({ host: ip, port });
      s.once('connect', () => resolve(s));
      s.once('error', (e) => resolve(e));
    });
    if (!(direct instanceof Error)) return direct;
    // refused on the pod IP: a server bound to the pod's loopback only is reached inside its namespace
    const netns = this.pods.podNetnsPath(p.metadata.uid!);
    const family = (direct as NodeJS.ErrnoException).code === 'ECONNREFUSED' && netns && loopbackForwardAvailable() ? await listensOnLoopback(netns, port) : undefined;
    if (netns && family) return dialPodLoopback(netns, port, family === 'v6');
    throw errors.internal(`error forwarding port ${port} to pod ${p.metadata.uid}: ${direct.message}`);
  }
}

function key(p: Pod): string { return `${p.metadata?.namespace}/${p.metadata?.name}`; }
