// The agent's pod logic: one serial sync per pod (the work queue never runs a key twice at once),
// each step small and retryable, stop idempotent (Nomad's task runner shape):
//
//   sync(pod):  deleting? → terminate (preStop, SIGTERM, grace, SIGKILL, tear down, final DELETE)
//               terminal phase? → make sure nothing runs, release the network
//               sandbox (network + IPC + UTS namespaces with the hostname, made in one process,
//               then CNI ADD; remembered in <podDir>/sandbox.json) ∥ volumes → /etc files
//               → init containers one by one → containers (create/start, restart with back-off,
//               replace on spec change) → probes → status (PATCH pods/status only when it changed)
//
// Pod start is one critical path, so what does not depend on each other overlaps: the volumes are
// set up while the namespaces are made; CNI ADD (the slowest step) runs in the background while the
// containers are created (`runc create` only needs the namespace files) and each container is
// started (`runc start`) only once the network is in place — so the application never runs without
// its network, and /etc/hosts gets the pod IP (rewritten in place, the same inode the containers
// bind) before that. A container whose env asks for status.podIP waits for the ADD before its spec.
// All containers of a pod join its IPC and UTS namespaces (as upstream's pause container gives
// them); hostIPC pods use the host's IPC namespace.
//
// Faster still: a pod without hostPorts and hostIPC takes a pre-made sandbox from a small pool
// (network/sandbox-pool.ts: namespaces made and CNI ADD done, moved to the pod's namespace dir by
// one rename), so nothing of the sandbox is on its start path; its containers set the pod's hostname
// in the pooled UTS namespace, and its CNI DEL names the pool's CNI container id (sandbox.json
// cniId). The pool refills only while no pod start is in progress.
// KYB_POD_START_TRACE=1 logs, for each pod start, when each step finished (ms after the sync began).
//
// Container instances are the runtime's (runc + conmon); everything needed to carry on after an agent
// restart is on disk, so a restarted agent finds running containers and does not restart them.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIPv4 } from 'node:net';
import type { Pod, Container, PodStatus, LifecycleHandler } from 'kubernetes-types/core/v1.js';
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { EventRecorder, RestClient, ResourceRef } from '../../client/index.js';
import { type ContainerInfo, type ContainerMeta, type Runtime, podCgroupPath, removePodCgroups } from '../runtime/runtime.js';
import { buildOciSpec, containerArgs, podHostname, resolveImageUser } from '../runtime/oci-spec.js';
import { createPodNamespaces, removePodNamespaces, type PodNamespaces } from '../network/netns.js';
import { SandboxPool } from '../network/sandbox-pool.js';
import { computePodStatus, type ContainerView } from './pod-status.js';
import { observePodStart } from '../node-metrics.js'; // prometheus

export type PodObj = Pod & KObject & { metadata: NonNullable<Pod['metadata']> };
const PODS: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
const SECRETS: ResourceRef = { group: '', version: 'v1', plural: 'secrets' };

// ---- what the pod manager needs from the other parts of the agent (images, network, volumes, env, probes)

export interface ResolvedImageLike {
  id: string; ref: string; repoDigest?: string;
  config: { entrypoint: string[]; cmd: string[]; env: string[]; workingDir: string; user: string };
  layerDirs: string[];
}
export interface ImageService {
  /** the image if it is on this node (never pulls) */
  get?(ref: string): Promise<ResolvedImageLike | undefined>;
  ensure(ref: string, policy: 'Always' | 'IfNotPresent' | 'Never', credentials: unknown[]): Promise<ResolvedImageLike>;
}
export interface NetworkService {
  setUp(p: { containerId: string; netns: string; namespace: string; podName: string; podUID: string; portMappings?: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp'; hostIP?: string }[] }): Promise<{ ip: string; gateway?: string }>;
  tearDown(p: { containerId: string; netns: string; namespace: string; podName: string; podUID: string }): Promise<void>;
}
export interface NetnsService { create(name: string): Promise<string>; remove(name: string): Promise<void> }
export interface VolumeService {
  setUp(pod: Pod): Promise<Map<string, { hostPath: string; readOnly: boolean }>>;
  tearDown(podUID: string): Promise<void>;
  /** re-project configMap/secret/downwardAPI content and renew tokens; names of volumes that changed */
  refresh?(pod: Pod): Promise<string[]>;
  /** after every pod's tearDown: remove what the volumes share (the node's secrets tmpfs) */
  cleanup?(): Promise<void>;
  /** setUp in two steps: the directories (containers can be created), then the content (`ready`,
   *  awaited before a container starts) */
  setUpEarly?(pod: Pod): Promise<{ mounts: Map<string, { hostPath: string; readOnly: boolean }>; ready: Promise<void> }>;
}
export type EnvResolver = (pod: Pod, container: Container, imageEnv: string[]) => Promise<string[]>;
export type SubPathResolver = (volumeHostPath: string, subPath: string) => string | Promise<string>;
export interface ProbeHandle { stop(): void }
export interface ProbeService {
  add(key: string, spec: { probe: NonNullable<Container['livenessProbe']>; kind: 'liveness' | 'readiness' | 'startup'; podIP: string; container: Container; containerId: string },
    onResult: (r: { ok: boolean; message: string }) => void): ProbeHandle;
}

export interface PodManagerOptions {
  client: RestClient;
  nodeName: string;
  hostIP: () => string;
  runtime: Runtime;
  images: ImageService;
  network: () => NetworkService | undefined;
  /**
   * @deprecated unused: a pod's network, IPC and UTS namespaces are made together in one process
   * (network/netns.ts createPodNamespaces) and removed with removePodNamespaces.
   */
  netns?: NetnsService;
  volumes: VolumeService;
  env: EnvResolver;
  subPath?: SubPathResolver;
  probes?: ProbeService;
  recorder: EventRecorder;
  /** <agent-dir>/pods */
  podsDir: string;
  /** <agent-dir>/logs */
  logsDir: string;
  cgroupParent: string;
  clusterDNS: string[];
  clusterDomain: string;
  /** ask for the pod's sync again (after a back-off, a probe result, an exit) */
  enqueue(key: string, afterMs?: number): void;
  log?(msg: string): void;
  /** back-off base and cap for restarts and image pulls (default 10 s and 300 s, as upstream) */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /**
   * how many pre-made network sandboxes (namespace + CNI ADD done) to keep for pods without
   * hostPorts (network/sandbox-pool.ts); default 2, 0 turns the pool off
   */
  sandboxPoolSize?: number;
}

interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  startTime: string;
  /** the pod's namespaces and its address once CNI ADD succeeded (persisted as <podDir>/sandbox.json) */
  sandbox?: Sandbox;
  /** the namespaces, made before CNI ADD finished (containers may be created in them, not started) */
  ns?: PodNamespaces;
  /** CNI ADD in progress; settles with r.sandbox set, or rejects with everything of the sandbox removed */
  network?: Promise<void>;
  /** by container name: a container id whose root filesystem the runtime is making ahead of create */
  prepared: Map<string, Promise<{ id: string; imageId: string } | undefined>>;
  volumes?: Map<string, { hostPath: string; readOnly: boolean }>;
  /** the volumes' content written (setUpEarly); containers start only after it */
  volumesReady?: Promise<void>;
  /** volumesReady failed: the next sync sets the volumes up again */
  volumesFailed?: boolean;
  volumesRefreshedAt?: number;
  /** per container name: why it is not running now */
  waiting: Map<string, { reason: string; message?: string }>;
  imageBackoff: Map<string, { until: number; delayMs: number; image: string; reason: string; message: string }>;
  imageIDs: Map<string, string>;
  probes: Map<string, ProbeHandle[]>; // by container id
  ready: Map<string, boolean>;
  started: Map<string, boolean>;
  killing: Set<string>;
  terminating?: Promise<void>;
  lastStatus?: string;
  gone?: boolean;
  /** KYB_POD_START_TRACE: step timestamps of this pod's start (logged when Running is written) */
  trace?: [string, number][];
}

/**
 * sandbox.json: ip is absent while CNI ADD has not finished; ipc/uts absent for sandboxes of older
 * agents; cniId is the CNI container id of a sandbox taken from the pool (else the pod UID)
 */
interface Sandbox { netns: string; ip: string; ipc?: string; uts?: string; cniId?: string }

function specHash(c: Container): string {
  const relevant = { image: c.image, command: c.command, args: c.args, env: c.env, envFrom: c.envFrom, ports: c.ports, volumeMounts: c.volumeMounts, workingDir: c.workingDir, securityContext: c.securityContext, resources: c.resources, lifecycle: c.lifecycle };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 16);
}

/** imagePullPolicy with upstream's default (Always for :latest or no tag, else IfNotPresent). */
function imagePolicy(c: Container): 'Always' | 'IfNotPresent' | 'Never' {
  return (c.imagePullPolicy ?? (c.image?.endsWith(':latest') || !/:[^/]+$/.test(c.image ?? '') ? 'Always' : 'IfNotPresent')) as 'Always' | 'IfNotPresent' | 'Never';
}

/** Whether a container's env refers to the pod's IP (it then waits for CNI ADD before it is made). */
function usesPodIP(c: Container): boolean {
  return (c.env ?? []).some((e) => /^status\.podIPs?$/.test(e.valueFrom?.fieldRef?.fieldPath ?? ''));
}

const TRACE = !!process.env.KYB_POD_START_TRACE;
function mark(r: { trace?: [string, number][] }, step: string): void { if (TRACE && r.trace) r.trace.push([step, performance.now()]); }

/** the pod's hostPort mappings (portmap), for CNI ADD */
function hostPorts(pod: Pod): { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp'; hostIP?: string }[] {
  return (pod.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).filter((p) => p.hostPort).map((p) => ({
    hostPort: p.hostPort!, containerPort: p.containerPort, protocol: (p.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp', ...(p.hostIP ? { hostIP: p.hostIP } : {}),
  })));
}

function podKey(p: { metadata?: { namespace?: string; name?: string } }): string { return `${p.metadata?.namespace}/${p.metadata?.name}`; }

export class PodManager {
  private readonly records = new Map<string, PodRecord>(); // by uid
  private readonly exitWaiters = new Map<string, (() => void)[]>();
  private readonly pool: SandboxPool;
  constructor(private readonly o: PodManagerOptions) {
    this.pool = new SandboxPool({
      dir: join(o.runtime.runRoot, 'pods'), size: o.sandboxPoolSize ?? 2, network: () => o.network(), log: (m) => this.log(m),
    });
  }

  /** Starts filling the sandbox pool (once the pod network exists; a pod sync also starts it). */
  startSandboxPool(): void { this.pool.kick(); }

  private log(m: string): void { this.o.log?.(m); }

  private record(pod: PodObj): PodRecord {
    const uid = pod.metadata.uid!;
    let r = this.records.get(uid);
    if (!r) {
      r = {
        uid, namespace: pod.metadata.namespace!, name: pod.metadata.name!, startTime: new Date().toISOString(),
        waiting: new Map(), imageBackoff: new Map(), imageIDs: new Map(), probes: new Map(), ready: new Map(), started: new Map(), killing: new Set(),
        prepared: new Map(),
        ...(TRACE ? { trace: [['sync', performance.now()]] as [string, number][] } : {}),
      };
      const sb = this.readSandbox(uid);
      // without an address the agent stopped during CNI ADD: the namespaces are found again, ADD redone
      if (sb?.ip) r.sandbox = sb;
      else if (sb?.uts) r.ns = { netns: sb.netns, uts: sb.uts, ...(sb.ipc ? { ipc: sb.ipc } : {}) };
      this.records.set(uid, r);
    }
    return r;
  }

  /** Containers of a pod as the runtime knows them, by container name, oldest instance first. */
  private async instances(uid: string): Promise<Map<string, ContainerInfo[]>> {
    const by = new Map<string, ContainerInfo[]>();
    for (const m of this.o.runtime.list().filter((x) => x.podUID === uid)) {
      const info = await this.o.runtime.info(m.id);
      if (!info) continue;
      const k = `${m.init ? 'init:' : ''}${m.containerName}`;
      (by.get(k) ?? by.set(k, []).get(k)!).push(info);
    }
    for (const l of by.values()) l.sort((a, b) => a.meta.attempt - b.meta.attempt);
    return by;
  }

  /** The pod UIDs the runtime has containers for. */
  runtimePodUIDs(): Map<string, { namespace: string; name: string }> {
    const m = new Map<string, { namespace: string; name: string }>();
    for (const c of this.o.runtime.list()) m.set(c.podUID, { namespace: c.podNamespace, name: c.podName });
    return m;
  }

  /** Called by the agent when a container's exit file appears. */
  containerExited(id: string): void {
    const meta = this.o.runtime.meta(id);
    void this.o.runtime.finalize(id).catch(() => undefined).then((exit) => {
      if (exit) {
        for (const w of this.exitWaiters.get(id) ?? []) w();
        this.exitWaiters.delete(id);
      }
      if (meta) this.o.enqueue(`${meta.podNamespace}/${meta.podName}`);
    });
  }

  /** Resolves when the container has exited (at once if it already has). */
  waitExit(id: string): Promise<void> {
    // register first, then look: an exit between the two cannot be missed
    return new Promise<void>((resolve) => {
      let done = false;
      const fire = () => { if (!done) { done = true; resolve(); } };
      (this.exitWaiters.get(id) ?? this.exitWaiters.set(id, []).get(id)!).push(fire);
      void this.o.runtime.info(id).then((i) => { if (!i || i.state === 'exited') fire(); }, fire);
    });
  }

  // ------------------------------------------------------------------------------------------ sync

  async sync(pod: PodObj | undefined, key: string): Promise<void> {
    // a pod start holds the sandbox pool's refill back until it is done (they would share the cores)
    const starting = !!pod && !pod.metadata.deletionTimestamp && !this.records.get(pod.metadata.uid!)?.sandbox;
    if (starting) this.pool.hold();
    try {
      await this.syncPod(pod, key);
    } finally {
      if (starting) this.pool.release(); else this.pool.kick();
    }
  }

  private async syncPod(pod: PodObj | undefined, key: string): Promise<void> {
    if (!pod) {
      // the API object is gone: stop and remove whatever still runs for pods of this name
      for (const [uid, p] of this.runtimePodUIDs()) {
        if (`${p.namespace}/${p.name}` === key) await this.killPod(uid, 0);
      }
      for (const r of [...this.records.values()]) {
        if (`${r.namespace}/${r.name}` === key) await this.killPod(r.uid, 0);
      }
      return;
    }
    // a different pod with the same name may have replaced an old one: remove the old one's containers
    for (const [uid, p] of this.runtimePodUIDs()) {
      if (uid !== pod.metadata.uid && `${p.namespace}/${p.name}` === key) await this.killPod(uid, 0);
    }
    const r = this.record(pod);
    if (pod.metadata.deletionTimestamp) { await this.terminate(pod, r); return; }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') { await this.stopAll(pod, r, 0); await this.releaseSandbox(r); return; }

    // Sandbox and volumes at once: the pod's namespaces (one process), then CNI ADD runs in the
    // background while the volumes are set up and the first containers are created; a container is
    // only started once the network is there (startContainer awaits r.network).
    let volumesP: Promise<Map<string, { hostPath: string; readOnly: boolean }>> | undefined;
    if (r.volumesFailed) { r.volumes = undefined; r.volumesReady = undefined; r.volumesFailed = false; }
    if (!r.volumes) {
      r.volumesRefreshedAt = Date.now();
      // the directories first, the content (API reads) while the first containers are created
      volumesP = this.o.volumes.setUpEarly
        ? this.o.volumes.setUpEarly(pod).then(({ mounts, ready }) => { r.volumesReady = ready; return mounts; })
        : this.o.volumes.setUp(pod);
      volumesP.catch(() => undefined); // awaited below
    }
    if (!r.sandbox && !r.network) {
      const net = this.o.network();
      if (!net) {
        await volumesP?.catch(() => undefined);
        await this.writeStatus(pod, r, new Map(), 'NetworkNotReady'); this.o.enqueue(key, 1000); return;
      }
      this.prepareRootfs(pod, r);
      // a pre-made sandbox (namespaces made, CNI ADD done), moved to the pod's namespace dir, for
      // pods without host ports and hostIPC whose namespaces were not begun before (an agent restart)
      const pooled = hostPorts(pod).length || pod.spec?.hostIPC || r.ns || existsSync(this.nsDir(r.uid)) ? undefined : this.pool.take(this.nsDir(r.uid));
      if (pooled) {
        r.sandbox = { netns: pooled.netns, ipc: pooled.ipc, uts: pooled.uts, ip: pooled.ip, cniId: pooled.id };
        this.writeSandbox(r.uid, r.sandbox);
        mark(r, 'pooled-sandbox');
      } else {
        try {
          r.ns = await createPodNamespaces({ netnsName: `kyb-${r.uid}`, dir: this.nsDir(r.uid), hostname: podHostname(pod), hostIPC: pod.spec?.hostIPC === true });
          mark(r, 'namespaces');
        } catch (e) {
          this.o.recorder.event(pod, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${(e as Error).message}`);
          await volumesP?.catch(() => undefined);
          throw e;
        }
        this.writeSandbox(r.uid, { ...r.ns, ip: '' });
        r.network = this.connect(pod, r, net, r.ns);
        r.network.catch(() => undefined); // awaited before a container starts and at the end of this sync
      }
    }
    if (r.volumes && this.o.volumes.refresh && Date.now() - (r.volumesRefreshedAt ?? 0) >= 60_000) {
      // ConfigMap/Secret/downward API updates and token renewal reach running containers (as the kubelet's sync)
      r.volumesRefreshedAt = Date.now();
      await this.o.volumes.refresh(pod).catch((e) => this.log(`refresh volumes of ${r.namespace}/${r.name}: ${(e as Error).message}`));
    }
    if (volumesP) {
      try {
        r.volumes = await volumesP;
        mark(r, 'volumes');
      } catch (e) {
        this.o.recorder.event(pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed: ${(e as Error).message}`);
        await this.awaitNetwork(r);
        await this.writeStatus(pod, r, await this.instances(r.uid));
        this.o.enqueue(key, 2000);
        return;
      }
    }
    this.writeEtcFiles(pod, r);

    const inst = await this.instances(r.uid);
    const policy = pod.spec?.restartPolicy ?? 'Always';
    // init containers, in order
    let initDone = true;
    for (const c of pod.spec?.initContainers ?? []) {
      const list = inst.get(`init:${c.name}`) ?? [];
      const cur = list[list.length - 1];
      if (cur?.state === 'exited' && cur.exit?.exitCode === 0) continue;
      initDone = false;
      if (!cur) { await this.startContainer(pod, r, c, true, 0, inst); break; }
      if (cur.state === 'running' || cur.state === 'created') break;
      // failed init container
      if (policy === 'Never') break;
      await this.restartWithBackoff(pod, r, c, true, cur, inst);
      break;
    }
    if (initDone) {
      for (const c of pod.spec?.containers ?? []) {
        const list = inst.get(c.name) ?? [];
        const cur = list[list.length - 1];
        if (!cur) { await this.startContainer(pod, r, c, false, 0, inst); continue; }
        if (cur.state === 'created') { await this.o.runtime.start(cur.meta.id).catch(() => undefined); continue; }
        if (cur.state === 'running') {
          if (cur.meta.specHash !== specHash(c) && !r.killing.has(cur.meta.id)) {
            this.o.recorder.event(pod, 'Normal', 'Killing', `Container ${c.name} definition changed, will be restarted`);
            this.killContainer(pod, r, c, cur.meta.id);
          }
          this.ensureProbes(pod, r, c, cur.meta.id);
          continue;
        }
        // exited
        this.stopProbes(r, cur.meta.id);
        const code = cur.exit?.exitCode ?? 0;
        const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0) || (cur.meta.specHash !== specHash(c) && r.killing.has(cur.meta.id));
        if (!restart) { r.waiting.delete(c.name); continue; }
        await this.restartWithBackoff(pod, r, c, false, cur, inst);
      }
    }
    await this.dropPrepared(r);
    await this.awaitNetwork(r); // the status names the pod IP (and a failed ADD is retried)
    mark(r, 'network-awaited');
    const now = await this.instances(r.uid);
    mark(r, 'instances');
    this.gcInstances(r, now);
    await this.writeStatus(pod, r, now);
  }

  /** <runRoot>/pods/<uid>: the pod's IPC and UTS namespace files (tmpfs, like /run/netns) */
  private nsDir(uid: string): string { return join(this.o.runtime.runRoot, 'pods', uid); }

  private readSandbox(uid: string): Sandbox | undefined {
    try { return JSON.parse(readFileSync(join(this.o.podsDir, uid, 'sandbox.json'), 'utf8')) as Sandbox; } catch { return undefined; }
  }

  private writeSandbox(uid: string, sb: Sandbox): void {
    mkdirSync(join(this.o.podsDir, uid), { recursive: true });
    const f = join(this.o.podsDir, uid, 'sandbox.json');
    writeFileSync(`${f}.tmp`, JSON.stringify(sb));
    renameSync(`${f}.tmp`, f);
  }

  /**
   * CNI ADD for the pod's network namespace. On success the sandbox is complete (r.sandbox, the
   * /etc/hosts line with the pod IP); on failure the network and the namespaces are removed again
   * (containers created in them meanwhile are removed by the caller that awaited this).
   */
  private async connect(pod: PodObj, r: PodRecord, net: NetworkService, ns: PodNamespaces): Promise<void> {
    const ports = hostPorts(pod);
    const ref = { containerId: r.uid, netns: ns.netns, namespace: r.namespace, podName: r.name, podUID: r.uid };
    try {
      const res = await net.setUp({ ...ref, portMappings: ports });
      mark(r, 'cni-add');
      r.sandbox = { ...ns, ip: res.ip };
      this.writeSandbox(r.uid, r.sandbox);
      this.writeEtcFiles(pod, r);
    } catch (e) {
      this.o.recorder.event(pod, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${(e as Error).message}`);
      await net.tearDown(ref).catch(() => undefined);
      await removePodNamespaces(ns).catch((err) => this.log(`remove namespaces of ${r.namespace}/${r.name}: ${(err as Error).message}`));
      rmSync(join(this.o.podsDir, r.uid, 'sandbox.json'), { force: true });
      r.ns = undefined;
      throw e;
    }
  }

  /**
   * A new pod's first containers (the first init container, else every app container) get their
   * root filesystem made while the namespaces and volumes are: for local images (a pull is never
   * started here), with container ids chosen now and used by startContainer.
   */
  private prepareRootfs(pod: PodObj, r: PodRecord): void {
    const get = this.o.images.get?.bind(this.o.images);
    if (!get || this.runtimePodUIDs().has(r.uid)) return;
    const first = pod.spec?.initContainers?.length ? [pod.spec.initContainers[0]!] : pod.spec?.containers ?? [];
    for (const c of first) {
      if (imagePolicy(c) === 'Always' || r.prepared.has(c.name)) continue;
      r.prepared.set(c.name, get(c.image ?? '').then((img) => {
        if (!img) return undefined;
        const id = this.o.runtime.newId();
        this.o.runtime.prepareRootfs(id, img.layerDirs);
        return { id, imageId: img.id };
      }).catch(() => undefined));
    }
  }

  /** Prepared root filesystems no container was created on (an early return, another image): removed. */
  private async dropPrepared(r: PodRecord): Promise<void> {
    if (!r.prepared.size) return;
    const all = [...r.prepared.values()];
    r.prepared.clear();
    for (const p of all) {
      const prep = await p;
      if (prep && !this.o.runtime.meta(prep.id)) await this.o.runtime.remove(prep.id).catch((e) => this.log(`remove prepared rootfs ${prep.id}: ${(e as Error).message}`));
    }
  }

  /** Waits for a pending CNI ADD (rethrowing its failure once; the next sync starts the sandbox over). */
  private async awaitNetwork(r: PodRecord): Promise<void> {
    const p = r.network;
    if (!p) return;
    try { await p; } finally { if (r.network === p) r.network = undefined; }
  }

  private backoffMs(n: number): number {
    const base = this.o.backoffBaseMs ?? 10_000;
    const max = this.o.backoffMaxMs ?? 300_000;
    if (n <= 0) return 0;
    return Math.min(max, base * 2 ** (n - 1));
  }

  private async restartWithBackoff(pod: PodObj, r: PodRecord, c: Container, init: boolean, cur: ContainerInfo, inst: Map<string, ContainerInfo[]>): Promise<void> {
    const ranFor = cur.meta.startedAt && cur.exit ? Date.parse(cur.exit.finishedAt) - Date.parse(cur.meta.startedAt) : 0;
    // the first restart is immediate, then 10 s doubling to 5 min; a container that ran 10 min starts over
    const delay = ranFor > 600_000 ? 0 : this.backoffMs(cur.meta.attempt);
    const due = Date.parse(cur.exit?.finishedAt ?? new Date().toISOString()) + delay;
    const wait = due - Date.now();
    if (wait > 0) {
      const msg = `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${r.name}_${r.namespace}(${r.uid})`;
      if (r.waiting.get(c.name)?.reason !== 'CrashLoopBackOff') {
        this.o.recorder.event(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${r.name}_${r.namespace}(${r.uid})`);
      }
      r.waiting.set(c.name, { reason: 'CrashLoopBackOff', message: msg });
      this.o.enqueue(podKey(pod), wait + 50);
      return;
    }
    await this.startContainer(pod, r, c, init, cur.meta.attempt + 1, inst);
  }

  private async startContainer(pod: PodObj, r: PodRecord, c: Container, init: boolean, attempt: number, _inst: Map<string, ContainerInfo[]>): Promise<void> {
    const ib = r.imageBackoff.get(c.name);
    if (ib && ib.image === c.image && Date.now() < ib.until) {
      // a failed pull waits as ImagePullBackOff; Never / invalid names keep their own reason (as the kubelet)
      r.waiting.set(c.name, ib.reason === 'ErrImagePull' ? { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } : { reason: ib.reason, message: ib.message });
      this.o.enqueue(podKey(pod), ib.until - Date.now() + 50);
      return;
    }
    // image
    const policy = imagePolicy(c);
    let image: ResolvedImageLike;
    const t0 = Date.now();
    try {
      const local = policy !== 'Always' && this.o.images.get ? await this.o.images.get(c.image ?? '').catch(() => undefined) : undefined;
      if (local) {
        image = local;
        this.o.recorder.event(pod, 'Normal', 'Pulled', `Container image "${c.image}" already present on machine`);
      } else {
        const creds = await this.pullSecrets(pod);
        if (policy !== 'Never') this.o.recorder.event(pod, 'Normal', 'Pulling', `Pulling image "${c.image}"`);
        image = await this.o.images.ensure(c.image ?? '', policy, creds);
        if (policy !== 'Never') this.o.recorder.event(pod, 'Normal', 'Pulled', `Successfully pulled image "${c.image}" in ${Date.now() - t0}ms`);
      }
      r.imageBackoff.delete(c.name);
      r.imageIDs.set(c.name, image.repoDigest ?? image.id);
    } catch (e) {
      const reason = (e as { reason?: string }).reason ?? 'ErrImagePull';
      const msg = (e as Error).message;
      const prev = r.imageBackoff.get(c.name);
      const delayMs = prev && prev.image === c.image ? Math.min(this.o.backoffMaxMs ?? 300_000, prev.delayMs * 2) : (this.o.backoffBaseMs ?? 10_000);
      r.imageBackoff.set(c.name, { until: Date.now() + delayMs, delayMs, image: c.image ?? '', reason, message: msg });
      r.waiting.set(c.name, { reason, message: msg });
      this.o.recorder.event(pod, 'Warning', 'Failed', `Failed to pull image "${c.image}": ${msg}`);
      this.o.recorder.event(pod, 'Warning', 'Failed', `Error: ${reason}`);
      this.o.enqueue(podKey(pod), delayMs + 50);
      return;
    }
    // env, mounts, spec (the id of a root filesystem made ahead, see prepareRootfs; dropPrepared removes it if unused)
    mark(r, 'image');
    const prep = await r.prepared.get(c.name);
    mark(r, 'prepared-id');
    const id = prep && prep.imageId === image.id ? prep.id : this.o.runtime.newId();
    let env: string[];
    if (usesPodIP(c)) await this.awaitNetwork(r); // a failed sandbox fails the sync, which retries it
    try {
      // status.podIP(s) and hostIP(s) from the agent's own knowledge: the API object has none before the first status
      const ip = r.sandbox?.ip;
      const host = this.o.hostIP();
      const envPod: PodObj = { ...pod, status: { ...pod.status, hostIP: host, hostIPs: [{ ip: host }], ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}) } };
      env = await this.o.env(envPod, c, image.config.env);
    } catch (e) {
      r.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: (e as Error).message });
      this.o.recorder.event(pod, 'Warning', 'Failed', `Error: ${(e as Error).message}`);
      this.o.enqueue(podKey(pod), 2000);
      return;
    }
    const podDir = join(this.o.podsDir, r.uid);
    const binds: { destination: string; source: string; readOnly: boolean }[] = [];
    const userMounts = new Set((c.volumeMounts ?? []).map((m) => m.mountPath));
    for (const [dest, file] of [['/etc/hosts', 'etc-hosts'], ['/etc/resolv.conf', 'resolv.conf'], ['/etc/hostname', 'hostname']] as const) {
      if (!userMounts.has(dest)) binds.push({ destination: dest, source: join(podDir, file), readOnly: false });
    }
    const termPath = c.terminationMessagePath ?? '/dev/termination-log';
    const termFile = join(podDir, 'containers', c.name, `${attempt}-termination-log`);
    mkdirSync(join(termFile, '..'), { recursive: true });
    writeFileSync(termFile, '');
    binds.push({ destination: termPath, source: termFile, readOnly: false });
    try {
      for (const m of c.volumeMounts ?? []) {
        const v = r.volumes?.get(m.name);
        if (!v) throw new Error(`unable to find volume "${m.name}" for container ${c.name}`);
        const src = m.subPath ? (this.o.subPath ? await this.o.subPath(v.hostPath, m.subPath) : join(v.hostPath, m.subPath)) : v.hostPath;
        binds.push({ destination: m.mountPath, source: src, readOnly: m.readOnly === true || v.readOnly });
      }
    } catch (e) {
      r.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: (e as Error).message });
      this.o.enqueue(podKey(pod), 2000);
      return;
    }
    const sc = { ...(pod.spec?.securityContext ?? {}), ...(c.securityContext ?? {}) };
    let user: { uid: number; gid: number; additionalGids?: number[] };
    try {
      const top = image.layerDirs[image.layerDirs.length - 1];
      const readEtc = (f: string) => { for (const l of [...image.layerDirs].reverse()) { try { return readFileSync(join(l, 'etc', f), 'utf8'); } catch { /* next */ } } return undefined; };
      user = resolveImageUser(image.config.user, top ? readEtc('passwd') : undefined, top ? readEtc('group') : undefined);
    } catch (e) {
      user = { uid: 0, gid: 0 };
      if (sc.runAsUser === undefined) {
        r.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: (e as Error).message });
        this.o.enqueue(podKey(pod), 5000);
        return;
      }
    }
    if (sc.runAsUser !== undefined && sc.runAsUser !== null) user.uid = sc.runAsUser;
    if (sc.runAsGroup !== undefined && sc.runAsGroup !== null) user.gid = sc.runAsGroup;
    const groups = [...(pod.spec?.securityContext?.supplementalGroups ?? []), ...(pod.spec?.securityContext?.fsGroup !== undefined ? [pod.spec.securityContext.fsGroup!] : [])];
    if (groups.length) user.additionalGids = groups;
    if (sc.runAsNonRoot && user.uid === 0) {
      const msg = 'container has runAsNonRoot and image will run as root';
      r.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: msg });
      this.o.recorder.event(pod, 'Warning', 'Failed', `Error: ${msg}`);
      this.o.enqueue(podKey(pod), 10_000);
      return;
    }
    const cgroupsPath = podCgroupPath(this.o.cgroupParent, r.uid, id);
    const ns = r.sandbox ?? r.ns!;
    const spec = buildOciSpec({
      pod, container: { ...c, securityContext: sc as Container['securityContext'] }, rootfs: '',
      args: containerArgs(c, image.config, env), env, cwd: c.workingDir || image.config.workingDir || '/',
      user, netnsPath: ns.netns, ipcPath: ns.ipc, utsPath: ns.uts, hostIPC: pod.spec?.hostIPC === true, cgroupsPath, binds, tty: c.tty === true,
      // a pooled sandbox's UTS namespace was made before the pod was known: its containers set the name
      setHostname: !!r.sandbox?.cniId,
    });
    const meta: ContainerMeta = {
      id, podUID: r.uid, podNamespace: r.namespace, podName: r.name, containerName: c.name, attempt, init,
      imageRef: image.ref, imageId: image.id,
      logPath: join(this.o.logsDir, `${r.namespace}_${r.name}_${r.uid}`, c.name, `${attempt}.log`),
      cgroupsPath, createdAt: new Date().toISOString(), specHash: specHash(c), stdin: c.stdin === true, stdinOnce: c.stdinOnce === true, tty: c.tty === true,
    };
    try {
      r.prepared.delete(c.name); // the runtime owns the id now (a failed create removes it)
      mark(r, 'spec');
      await this.o.runtime.create(meta, spec, image.layerDirs);
      mark(r, 'runc-create');
      this.o.recorder.event(pod, 'Normal', 'Created', `Created container ${c.name}`);
    } catch (e) {
      const msg = (e as Error).message;
      r.waiting.set(c.name, { reason: 'CreateContainerError', message: msg });
      this.o.recorder.event(pod, 'Warning', 'Failed', `Error: ${msg}`);
      await this.o.runtime.remove(id).catch(() => undefined);
      this.o.enqueue(podKey(pod), 5000);
      return;
    }
    // created while CNI ADD ran; it starts only with its network in place
    try { await this.awaitNetwork(r); } catch (e) { await this.o.runtime.remove(id).catch(() => undefined); throw e; }
    // and with its volumes' content written (setUpEarly)
    if (r.volumesReady) {
      try {
        await r.volumesReady;
      } catch (e) {
        await this.o.runtime.remove(id).catch(() => undefined);
        if (!r.volumesFailed) {
          r.volumesFailed = true;
          this.o.recorder.event(pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed: ${(e as Error).message}`);
        }
        this.o.enqueue(podKey(pod), 2000);
        return;
      }
    }
    try {
      await this.o.runtime.start(id);
      mark(r, 'runc-start');
      this.o.recorder.event(pod, 'Normal', 'Started', `Started container ${c.name}`);
      r.waiting.delete(c.name);
      // readiness without a probe is known at once; probes start now rather than on the next sync
      if (!init) this.ensureProbes(pod, r, c, id);
    } catch (e) {
      const msg = (e as Error).message;
      r.waiting.set(c.name, { reason: 'RunContainerError', message: msg });
      this.o.recorder.event(pod, 'Warning', 'Failed', `Error: failed to create containerd task: ${msg}`);
      await this.o.runtime.remove(id).catch(() => undefined);
      this.o.enqueue(podKey(pod), 5000);
      return;
    }
    if (c.lifecycle?.postStart) {
      const res = await this.runHook(c.lifecycle.postStart, id, r, c, (c.livenessProbe?.timeoutSeconds ?? 30) * 1000);
      if (!res.ok) {
        this.o.recorder.event(pod, 'Warning', 'FailedPostStartHook', res.message);
        this.killContainer(pod, r, c, id);
      }
    }
  }

  private async pullSecrets(pod: PodObj): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const ref of pod.spec?.imagePullSecrets ?? []) {
      if (!ref.name) continue;
      try {
        const s = await this.o.client.get<KObject & { data?: Record<string, string>; type?: string }>(SECRETS, pod.metadata.namespace, ref.name);
        const raw = s.data?.['.dockerconfigjson'] ?? s.data?.['.dockercfg'];
        if (!raw) continue;
        const parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as Record<string, unknown>;
        out.push(parsed.auths ? parsed : { auths: parsed });
      } catch (e) {
        if (!isStatusError(e, 'NotFound')) throw e;
        this.o.recorder.event(pod, 'Warning', 'FailedToRetrieveImagePullSecret', `Unable to retrieve some image pull secrets (${ref.name}); attempting to pull the image may not succeed.`);
      }
    }
    return out;
  }

  private async runHook(h: LifecycleHandler, id: string, r: PodRecord, c: Container, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    if (h.exec?.command) {
      const res = await this.o.runtime.exec(id, h.exec.command, timeoutMs);
      return res.exitCode === 0 ? { ok: true, message: '' } : { ok: false, message: `Exec lifecycle hook (${h.exec.command.join(' ')}) for Container "${c.name}" in Pod "${r.name}_${r.namespace}(${r.uid})" failed - error: command '${h.exec.command.join(' ')}' exited with ${res.exitCode}: ${res.output}, message: "${res.output.trim()}"` };
    }
    if (h.httpGet) {
      const port = typeof h.httpGet.port === 'number' ? h.httpGet.port : Number(c.ports?.find((p) => p.name === h.httpGet!.port)?.containerPort ?? h.httpGet.port);
      const host = h.httpGet.host ?? r.sandbox?.ip ?? '127.0.0.1';
      const url = `${(h.httpGet.scheme ?? 'HTTP').toLowerCase()}://${isIPv4(host) ? host : `[${host}]`}:${port}${h.httpGet.path ?? '/'}`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        return res.status < 400 ? { ok: true, message: '' } : { ok: false, message: `HTTP lifecycle hook (${h.httpGet.path ?? '/'}) for Container "${c.name}" in Pod "${r.name}_${r.namespace}(${r.uid})" failed - error: HTTP ${res.status}` };
      } catch (e) {
        return { ok: false, message: `HTTP lifecycle hook (${h.httpGet.path ?? '/'}) for Container "${c.name}" in Pod "${r.name}_${r.namespace}(${r.uid})" failed - error: ${(e as Error).message}` };
      }
    }
    if (h.sleep?.seconds) { await new Promise((res) => setTimeout(res, h.sleep!.seconds * 1000)); return { ok: true, message: '' }; }
    return { ok: true, message: '' };
  }

  /** Stops one container gracefully (preStop, SIGTERM, grace, SIGKILL) without blocking the sync. */
  private killContainer(pod: PodObj, r: PodRecord, c: Container, id: string, graceSec?: number): void {
    if (r.killing.has(id)) return;
    r.killing.add(id);
    this.stopProbes(r, id);
    const grace = (graceSec ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    void this.stopContainer(id, c, r, grace)
      .then(() => this.o.enqueue(podKey(pod)))
      .catch((e) => this.log(`kill ${id}: ${(e as Error).message}`));
  }

  /**
   * The one way a container is stopped: its preStop hook (when it has one and there is a grace
   * period), SIGTERM, then SIGKILL once graceMs has passed since the start. Resolves when it has
   * exited (or 10 s after SIGKILL).
   */
  private async stopContainer(id: string, c: Container | undefined, r: PodRecord | undefined, graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    const exited = this.waitExit(id);
    if (graceMs > 0) {
      if (c?.lifecycle?.preStop && r) {
        await Promise.race([this.runHook(c.lifecycle.preStop, id, r, c, graceMs), new Promise((res) => setTimeout(res, graceMs))]);
      }
      await this.o.runtime.kill(id, 'SIGTERM');
      const left = Math.max(0, deadline - Date.now());
      const res = await Promise.race([exited.then(() => 'exited'), new Promise((resolve) => setTimeout(() => resolve('timeout'), left))]);
      if (res === 'exited') return;
    }
    await this.o.runtime.kill(id, 'SIGKILL');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }

  private ensureProbes(pod: PodObj, r: PodRecord, c: Container, id: string): void {
    if (r.probes.has(id) || r.killing.has(id)) return;
    const handles: ProbeHandle[] = [];
    r.probes.set(id, handles);
    const probes = this.o.probes;
    const startReadinessAndLiveness = () => {
      const first = !r.started.get(id);
      r.started.set(id, true);
      if (!c.readinessProbe) r.ready.set(id, true);
      if (!first || c.startupProbe) this.o.enqueue(podKey(pod));
      if (!probes) { r.ready.set(id, true); return; }
      if (c.readinessProbe) {
        handles.push(probes.add(`${id}/readiness`, { probe: c.readinessProbe, kind: 'readiness', podIP: r.sandbox!.ip, container: c, containerId: id }, (res) => {
          r.ready.set(id, res.ok);
          if (!res.ok) this.o.recorder.event(pod, 'Warning', 'Unhealthy', `Readiness probe failed: ${res.message}`);
          this.o.enqueue(podKey(pod));
        }));
      }
      if (c.livenessProbe) {
        handles.push(probes.add(`${id}/liveness`, { probe: c.livenessProbe, kind: 'liveness', podIP: r.sandbox!.ip, container: c, containerId: id }, (res) => {
          if (res.ok) return;
          this.o.recorder.event(pod, 'Warning', 'Unhealthy', `Liveness probe failed: ${res.message}`);
          this.o.recorder.event(pod, 'Normal', 'Killing', `Container ${c.name} failed liveness probe, will be restarted`);
          this.killContainer(pod, r, c, id, c.livenessProbe?.terminationGracePeriodSeconds ?? undefined);
        }));
      }
    };
    if (c.startupProbe && probes) {
      handles.push(probes.add(`${id}/startup`, { probe: c.startupProbe, kind: 'startup', podIP: r.sandbox!.ip, container: c, containerId: id }, (res) => {
        if (res.ok) { startReadinessAndLiveness(); return; }
        this.o.recorder.event(pod, 'Warning', 'Unhealthy', `Startup probe failed: ${res.message}`);
        this.o.recorder.event(pod, 'Normal', 'Killing', `Container ${c.name} failed startup probe, will be restarted`);
        this.killContainer(pod, r, c, id);
      }));
    } else startReadinessAndLiveness();
  }

  private stopProbes(r: PodRecord, id: string): void {
    for (const h of r.probes.get(id) ?? []) h.stop();
    r.probes.delete(id);
    r.ready.delete(id);
    r.started.delete(id);
  }

  /** Keeps the current and the previous instance of each container; older ones (and their logs) go. */
  private gcInstances(r: PodRecord, inst: Map<string, ContainerInfo[]>): void {
    for (const list of inst.values()) {
      for (const old of list.slice(0, Math.max(0, list.length - 2))) {
        if (old.state !== 'exited') continue;
        void this.o.runtime.remove(old.meta.id).then(() => rmSync(old.meta.logPath, { force: true })).catch(() => undefined);
      }
    }
    void r;
  }

  private writeEtcFiles(pod: PodObj, r: PodRecord): void {
    const dir = join(this.o.podsDir, r.uid);
    mkdirSync(dir, { recursive: true });
    const hostname = podHostname(pod);
    const fqdn = pod.spec?.subdomain ? `${hostname}.${pod.spec.subdomain}.${pod.metadata.namespace}.svc.${this.o.clusterDomain}` : undefined;
    const hosts = [
      '# Kubernetes-managed hosts file.',
      '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes', 'fe00::2\tip6-allrouters',
      `${r.sandbox?.ip ?? '127.0.0.1'}\t${fqdn ? `${fqdn}\t` : ''}${hostname}`,
      ...(pod.spec?.hostAliases ?? []).map((a) => `${a.ip}\t${(a.hostnames ?? []).join('\t')}`),
      '',
    ].join('\n');
    const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst';
    let resolv: string;
    const cfg = pod.spec?.dnsConfig;
    if (policy === 'Default' || (policy === 'ClusterFirst' && pod.spec?.hostNetwork)) {
      let host = '';
      try { host = readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* none */ }
      resolv = host;
    } else if (policy === 'None') {
      resolv = [
        ...(cfg?.searches?.length ? [`search ${cfg.searches.join(' ')}`] : []),
        ...(cfg?.nameservers ?? []).map((n) => `nameserver ${n}`),
        ...(cfg?.options?.length ? [`options ${cfg.options.map((o) => (o.value !== undefined ? `${o.name}:${o.value}` : o.name)).join(' ')}`] : []),
        '',
      ].join('\n');
    } else {
      const ns = pod.metadata.namespace;
      const d = this.o.clusterDomain;
      const searches = [`${ns}.svc.${d}`, `svc.${d}`, d, ...(cfg?.searches ?? [])];
      const opts = new Map<string, string | undefined>([['ndots', '5']]);
      for (const o of cfg?.options ?? []) if (o.name) opts.set(o.name, o.value ?? undefined);
      resolv = [
        `search ${searches.join(' ')}`,
        ...[...this.o.clusterDNS, ...(cfg?.nameservers ?? [])].map((n) => `nameserver ${n}`),
        `options ${[...opts].map(([k, v]) => (v !== undefined ? `${k}:${v}` : k)).join(' ')}`,
        '',
      ].join('\n');
    }
    const write = (f: string, content: string) => {
      const p = join(dir, f);
      let old: string | undefined;
      try { old = readFileSync(p, 'utf8'); } catch { /* new */ }
      if (old !== content) writeFileSync(p, content);
    };
    write('etc-hosts', hosts);
    write('resolv.conf', resolv);
    write('hostname', `${hostname}\n`);
  }

  private async writeStatus(pod: PodObj, r: PodRecord, inst: Map<string, ContainerInfo[]>, _note?: string, terminated = false): Promise<void> {
    const view = (c: Container, init: boolean): ContainerView => {
      const list = inst.get(`${init ? 'init:' : ''}${c.name}`) ?? [];
      const cur = list[list.length - 1];
      const running = cur?.state === 'running';
      return {
        instances: list,
        waiting: r.waiting.get(c.name),
        ready: running && !!r.ready.get(cur!.meta.id),
        started: running && !!r.started.get(cur!.meta.id),
        imageID: r.imageIDs.get(c.name) ?? (cur ? cur.meta.imageId : undefined),
      };
    };
    const status: PodStatus = computePodStatus({
      pod, hostIP: this.o.hostIP(), podIP: r.sandbox?.ip, sandboxReady: !!r.sandbox, startTime: r.startTime,
      init: new Map((pod.spec?.initContainers ?? []).map((c) => [c.name, view(c, true)])),
      containers: new Map((pod.spec?.containers ?? []).map((c) => [c.name, view(c, false)])),
      terminated,
    });
    const cmp = JSON.stringify(status);
    const cur = pod.status ?? {};
    const same = JSON.stringify(computeComparable(cur)) === JSON.stringify(computeComparable(status));
    if (same || r.lastStatus === cmp) return;
    try {
      mark(r, 'patch-sent');
      await this.o.client.patch(PODS, r.namespace, r.name, { metadata: { uid: r.uid }, status }, 'merge', { subresource: 'status' });
      r.lastStatus = cmp;
      if (r.trace && status.phase === 'Running') {
        mark(r, 'patch-acked');
        const t0 = r.trace[0]![1];
        this.log(`pod start trace ${r.namespace}/${r.name}: ${r.trace.map(([k, t]) => `${k} +${(t - t0).toFixed(1)}`).join(' ')}`);
        r.trace = undefined;
      }
      if (status.phase === 'Running' && cur.phase !== 'Running') observePodStart(r.uid, r.startTime); // prometheus
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return;
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------- termination

  private terminate(pod: PodObj, r: PodRecord): Promise<void> {
    if (!r.terminating) {
      const graceSec = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      r.terminating = (async () => {
        await this.stopAll(pod, r, graceSec);
        await this.releaseSandbox(r);
        await this.o.volumes.tearDown(r.uid).catch((e) => this.log(`volumes ${r.uid}: ${(e as Error).message}`));
        await this.writeStatus(pod, r, await this.instances(r.uid), undefined, true).catch(() => undefined);
        try {
          await this.o.client.delete(PODS, r.namespace, r.name, { gracePeriodSeconds: 0, preconditions: { uid: r.uid } });
        } catch (e) {
          if (!isStatusError(e, 'NotFound') && !isStatusError(e, 'Conflict')) throw e;
        }
        await this.forget(r.uid);
      })().catch((e) => { r.terminating = undefined; this.log(`terminate ${r.namespace}/${r.name}: ${(e as Error).message}`); this.o.enqueue(podKey(pod), 1000); });
    }
    return Promise.resolve();
  }

  /** Stops every container of the pod: preStop hooks, SIGTERM, up to graceSec, SIGKILL. */
  private async stopAll(pod: PodObj | undefined, r: PodRecord | { uid: string }, graceSec: number): Promise<void> {
    const uid = r.uid;
    const metas = this.o.runtime.list().filter((m) => m.podUID === uid);
    const running: ContainerMeta[] = [];
    for (const m of metas) {
      const i = await this.o.runtime.info(m.id);
      if (i && (i.state === 'running' || i.state === 'created')) running.push(m);
    }
    if (!running.length) return;
    const rec = 'waiting' in r ? r : undefined;
    for (const m of running) if (rec) this.stopProbes(rec, m.id);
    await Promise.all(running.map(async (m) => {
      const c = pod?.spec?.containers?.find((x) => x.name === m.containerName);
      if (pod && c) this.o.recorder.event(pod, 'Normal', 'Killing', `Stopping container ${m.containerName}`);
      await this.stopContainer(m.id, c, rec, graceSec * 1000);
      await this.o.runtime.finalize(m.id);
    }));
  }

  /** CNI DEL, then the pod's network, IPC and UTS namespaces are unmounted and removed. Idempotent. */
  private async releaseSandbox(r: PodRecord | { uid: string; namespace: string; name: string; sandbox?: Sandbox }): Promise<void> {
    if ('waiting' in r) await this.awaitNetwork(r).catch(() => undefined);
    const sb = r.sandbox ?? this.readSandbox(r.uid) ?? ('waiting' in r && r.ns ? { ...r.ns, ip: '' } : undefined);
    if (!sb) return;
    const net = this.o.network();
    // (a sandbox from the pool was added under the pool's id; CNI DEL must name the same one)
    if (net) await net.tearDown({ containerId: sb.cniId ?? r.uid, netns: sb.netns, namespace: r.namespace, podName: r.name, podUID: r.uid });
    // (a sandbox of an older agent has only the network namespace, made by `ip netns add`: the same unmount and unlink)
    await removePodNamespaces(sb);
    rmSync(join(this.o.podsDir, r.uid, 'sandbox.json'), { force: true });
    try { rmSync(this.nsDir(r.uid), { recursive: true, force: true }); } catch { /* a namespace file still mounted */ }
    if ('waiting' in r) { r.sandbox = undefined; r.ns = undefined; }
  }

  /** Removes all traces of a pod: containers, logs, sandbox, volumes, cgroups, records. */
  async forget(uid: string): Promise<void> {
    const r = this.records.get(uid);
    if (r) await this.dropPrepared(r);
    for (const m of this.o.runtime.list().filter((x) => x.podUID === uid)) {
      if (r) this.stopProbes(r, m.id);
      await this.o.runtime.remove(m.id);
    }
    removePodCgroups(this.o.cgroupParent, uid);
    for (const d of this.logDirsOf(uid)) rmSync(d, { recursive: true, force: true });
    await this.o.volumes.tearDown(uid).catch(() => undefined);
    rmSync(join(this.o.podsDir, uid), { recursive: true, force: true });
    this.records.delete(uid);
  }

  private logDirsOf(uid: string): string[] {
    try {
      return readdirSync(this.o.logsDir).filter((d) => d.endsWith(`_${uid}`)).map((d) => join(this.o.logsDir, d));
    } catch { return []; }
  }

  /** Kills a pod that has no API object any more (or was replaced) and removes everything of it. */
  async killPod(uid: string, graceSec: number): Promise<void> {
    const known = this.records.get(uid);
    const rt = this.runtimePodUIDs().get(uid);
    const r = known ?? { uid, namespace: rt?.namespace ?? '', name: rt?.name ?? '' };
    await this.stopAll(undefined, r, graceSec);
    await this.releaseSandbox(r).catch((e) => this.log(`release ${uid}: ${(e as Error).message}`));
    await this.forget(uid);
  }

  /** Every pod UID the agent holds anything for (records, runtime containers, pod dirs). */
  knownPodUIDs(): Set<string> {
    const s = new Set<string>([...this.records.keys(), ...this.runtimePodUIDs().keys()]);
    try { for (const d of readdirSync(this.o.podsDir)) if (existsSync(join(this.o.podsDir, d, 'sandbox.json'))) s.add(d); } catch { /* none */ }
    return s;
  }

  /** Stops every pod and removes all their state (kyb server --cleanup, tests). */
  async cleanupAll(): Promise<void> {
    // no more pre-made sandboxes; the unclaimed ones (also an earlier agent's) go
    await this.pool.close().catch((e) => this.log(`sandbox pool: ${(e as Error).message}`));
    for (const uid of this.knownPodUIDs()) {
      let ns = ''; let name = '';
      const rt = this.runtimePodUIDs().get(uid);
      if (rt) { ns = rt.namespace; name = rt.name; }
      const rec = this.records.get(uid);
      if (rec) { ns = rec.namespace; name = rec.name; }
      await this.stopAll(undefined, { uid }, 0);
      await this.releaseSandbox(rec ?? { uid, namespace: ns, name }).catch(() => undefined);
      await this.forget(uid);
    }
    await this.o.runtime.removeOrphans();
    // namespaces of sandboxes whose record was lost (the agent stopped between making them and writing sandbox.json)
    const nsRoot = join(this.o.runtime.runRoot, 'pods');
    let left: string[] = [];
    try { left = readdirSync(nsRoot); } catch { /* none */ }
    for (const uid of left) {
      if (uid.startsWith('pool-')) continue; // unclaimed pooled sandboxes: pool.close()
      const d = join(nsRoot, uid);
      // (the network namespace is /run/netns/kyb-<uid>, or <d>/net for a sandbox that came from the pool)
      await removePodNamespaces({ netns: `/run/netns/kyb-${uid}`, ipc: join(d, 'ipc'), uts: join(d, 'uts') })
        .then(() => removePodNamespaces({ netns: join(d, 'net') }))
        .then(() => rmSync(d, { recursive: true, force: true }))
        .catch((e) => this.log(`remove namespaces of pod ${uid}: ${(e as Error).message}`));
    }
    await this.o.volumes.cleanup?.().catch((e) => this.log(`volumes: ${(e as Error).message}`));
  }

  /** For the streaming backend: the current (or previous) instance of a container of a pod. */
  async containerOf(namespace: string, name: string, uid: string | undefined, container: string, previous: boolean): Promise<ContainerInfo | undefined> {
    const metas = this.o.runtime.list().filter((m) => m.podNamespace === namespace && m.podName === name && (!uid || m.podUID === uid) && m.containerName === container);
    metas.sort((a, b) => a.attempt - b.attempt);
    const m = previous ? metas[metas.length - 2] : metas[metas.length - 1];
    return m ? this.o.runtime.info(m.id) : undefined;
  }

  podIP(uid: string): string | undefined { return this.records.get(uid)?.sandbox?.ip; }

  /** the path of the pod's network namespace (port-forward to its loopback) */
  podNetnsPath(uid: string): string | undefined { return this.records.get(uid)?.sandbox?.netns; }

  /** For resource metrics (src/node/stats): the current instance of every started app container whose
   *  exit has not been seen, with its cgroup. Read-only; an exited one whose cgroup is gone is skipped
   *  by the collector. */
  runningContainers(): { podNamespace: string; podName: string; podUID: string; containerName: string; containerId: string; cgroupsPath: string }[] {
    const latest = new Map<string, ContainerMeta>();
    for (const m of this.o.runtime.list()) {
      if (m.init || !m.startedAt) continue;
      const k = `${m.podUID}/${m.containerName}`;
      const cur = latest.get(k);
      if (!cur || m.attempt > cur.attempt) latest.set(k, m);
    }
    return [...latest.values()].filter((m) => !existsSync(join(this.o.runtime.exitDir, m.id))).map((m) => ({
      podNamespace: m.podNamespace, podName: m.podName, podUID: m.podUID, containerName: m.containerName, containerId: m.id, cgroupsPath: m.cgroupsPath,
    }));
  }
}


/** The parts of a status that, when equal, mean there is nothing to write. */
function computeComparable(s: PodStatus): unknown {
  return {
    phase: s.phase, podIP: s.podIP, hostIP: s.hostIP,
    conditions: (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message]).sort(),
    init: s.initContainerStatuses, ctr: s.containerStatuses,
  };
}
