// The pod status the agent reports, computed from what the runtime says about the pod's containers
// (the kubelet's generateAPIPodStatus + getPhase, in our words):
//   phase:      Pending until every init container succeeded and each container has started once;
//               Running while any container runs (or will be restarted); Succeeded / Failed when all
//               containers terminated for good (restartPolicy Never, or OnFailure after all succeeded).
//   conditions: PodReadyToStartContainers, Initialized, ContainersReady, Ready, and PodScheduled as the
//               scheduler wrote it; lastTransitionTime moves only when a status flips.
//   containers: state (waiting with a reason / running / terminated with exit code and reason),
//               lastState, ready, started, restartCount, image, imageID, containerID.
import type { Pod, PodStatus, PodCondition, ContainerStatus, ContainerState, Container } from 'kubernetes-types/core/v1.js';
import type { ContainerInfo } from '../runtime/runtime.js';

export interface ContainerView {
  /** instances of this container, oldest first; the last is the current one */
  instances: ContainerInfo[];
  /** why the container is not running (CrashLoopBackOff, ErrImagePull, ContainerCreating, …) */
  waiting?: { reason: string; message?: string };
  ready: boolean;
  started: boolean;
  /** image ID (repo digest or config digest) of the current instance's image */
  imageID?: string;
}

export interface StatusInput {
  pod: Pod;
  hostIP: string;
  podIP?: string;
  sandboxReady: boolean;
  startTime: string;
  init: Map<string, ContainerView>;
  containers: Map<string, ContainerView>;
  /** the pod is being deleted and every container has stopped */
  terminated?: boolean;
  now?: () => string;
}

const iso = (s: string | undefined): string | undefined => (s ? s.replace(/\.\d+Z$/, 'Z') : undefined);

function terminatedState(c: ContainerInfo): ContainerState {
  const e = c.exit!;
  const reason = e.oomKilled ? 'OOMKilled' : e.exitCode === 0 ? 'Completed' : 'Error';
  return {
    terminated: {
      exitCode: e.exitCode, reason,
      startedAt: iso(c.meta.startedAt ?? c.meta.createdAt), finishedAt: iso(e.finishedAt),
      containerID: `runc://${c.meta.id}`,
    },
  };
}

function containerStatus(spec: Container, v: ContainerView | undefined, isInit: boolean): ContainerStatus {
  const inst = v?.instances ?? [];
  const cur = inst[inst.length - 1];
  const prev = inst.length > 1 ? inst[inst.length - 2] : undefined;
  let state: ContainerState;
  let lastState: ContainerState = {};
  if (!cur) {
    state = { waiting: { reason: v?.waiting?.reason ?? (isInit ? 'PodInitializing' : 'ContainerCreating'), ...(v?.waiting?.message ? { message: v.waiting.message } : {}) } };
  } else if (cur.state === 'running' || cur.state === 'created') {
    state = cur.state === 'running'
      ? { running: { startedAt: iso(cur.meta.startedAt ?? cur.meta.createdAt) } }
      : { waiting: { reason: 'ContainerCreating' } };
    if (prev?.exit) lastState = terminatedState(prev);
  } else if (cur.state === 'exited' && cur.exit) {
    if (v?.waiting) {
      // exited and waiting to be restarted (CrashLoopBackOff) or re-created
      state = { waiting: { reason: v.waiting.reason, ...(v.waiting.message ? { message: v.waiting.message } : {}) } };
      lastState = terminatedState(cur);
    } else {
      state = terminatedState(cur);
      if (prev?.exit) lastState = terminatedState(prev);
    }
  } else {
    state = { waiting: { reason: 'ContainerCreating' } };
  }
  const running = !!state.running;
  return {
    name: spec.name,
    state,
    lastState,
    ready: running && !!v?.ready,
    restartCount: cur ? cur.meta.attempt : 0,
    image: spec.image ?? '',
    imageID: v?.imageID ?? '',
    ...(cur ? { containerID: `runc://${cur.meta.id}` } : {}),
    started: running && !!v?.started,
  };
}

function cond(old: PodCondition[] | undefined, type: string, status: 'True' | 'False', now: string, reason?: string, message?: string): PodCondition {
  const prev = old?.find((c) => c.type === type);
  const c: PodCondition = {
    type, status,
    lastProbeTime: null as unknown as undefined,
    lastTransitionTime: prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
  };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

export function computePodStatus(i: StatusInput): PodStatus {
  const now = (i.now ?? (() => new Date().toISOString()))().replace(/\.\d+Z$/, 'Z');
  const spec = i.pod.spec!;
  const old = i.pod.status ?? {};
  const policy = spec.restartPolicy ?? 'Always';
  const initSpecs = spec.initContainers ?? [];
  const initStatuses = initSpecs.map((c) => containerStatus(c, i.init.get(c.name), true));
  const ctrStatuses = spec.containers.map((c) => containerStatus(c, i.containers.get(c.name), false));

  // init containers: all must have terminated with 0 (sidecars, restartPolicy Always, count when started)
  let initDone = true;
  let initFailed = false;
  initSpecs.forEach((c, idx) => {
    const s = initStatuses[idx]!;
    if (c.restartPolicy === 'Always') { if (!s.started) initDone = false; return; }
    if (s.state?.terminated?.exitCode === 0) return;
    initDone = false;
    if (s.state?.terminated && policy === 'Never') initFailed = true;
  });
  if (!initDone) {
    for (const s of ctrStatuses) if (s.state?.waiting?.reason === 'ContainerCreating') s.state = { waiting: { reason: 'PodInitializing' } };
  }

  // phase
  let phase: PodStatus['phase'];
  let running = 0; let waiting = 0; let stopped = 0; let succeeded = 0; let failed = 0;
  for (const s of ctrStatuses) {
    if (s.state?.running) running++;
    else if (s.state?.terminated) { stopped++; if (s.state.terminated.exitCode === 0) succeeded++; else failed++; }
    else if (s.state?.waiting) { if (s.lastState?.terminated) stopped++; else waiting++; }
  }
  if (initFailed) phase = 'Failed';
  else if (!initDone) phase = 'Pending';
  else if (waiting > 0) phase = 'Pending';
  else if (running > 0) phase = 'Running';
  else if (stopped === ctrStatuses.length && stopped > 0) {
    if (policy === 'Always') phase = i.terminated ? (failed > 0 ? 'Failed' : 'Succeeded') : 'Running';
    else if (policy === 'OnFailure') phase = failed > 0 && !i.terminated ? 'Running' : failed > 0 ? 'Failed' : 'Succeeded';
    else phase = failed > 0 ? 'Failed' : 'Succeeded';
    // waiting-to-restart containers count as stopped but the pod is still Running
    if (!i.terminated && ctrStatuses.some((s) => s.state?.waiting)) phase = 'Running';
  } else phase = 'Pending';
  // a terminal phase never goes back
  if (old.phase === 'Succeeded' || old.phase === 'Failed') phase = old.phase;

  const containersReady = initDone && ctrStatuses.every((s) => s.ready);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const conditions: PodCondition[] = [
    cond(old.conditions, 'PodReadyToStartContainers', i.sandboxReady && !terminal ? 'True' : 'False', now),
    initDone ? cond(old.conditions, 'Initialized', 'True', now)
      : cond(old.conditions, 'Initialized', 'False', now, 'ContainersNotInitialized',
        `containers with incomplete status: [${initSpecs.filter((_, k) => initStatuses[k]!.state?.terminated?.exitCode !== 0).map((c) => c.name).join(' ')}]`),
  ];
  const notReady = ctrStatuses.filter((s) => !s.ready).map((s) => s.name);
  const podCompleted = terminal;
  if (containersReady) {
    conditions.push(cond(old.conditions, 'Ready', 'True', now), cond(old.conditions, 'ContainersReady', 'True', now));
  } else {
    const reason = podCompleted ? 'PodCompleted' : 'ContainersNotReady';
    const msg = podCompleted ? undefined : `containers with unready status: [${notReady.join(' ')}]`;
    conditions.push(cond(old.conditions, 'Ready', 'False', now, reason, msg), cond(old.conditions, 'ContainersReady', 'False', now, reason, msg));
  }
  const sched = old.conditions?.find((c) => c.type === 'PodScheduled');
  if (sched) conditions.push(sched);

  const st: PodStatus = {
    phase,
    conditions,
    hostIP: i.hostIP,
    hostIPs: [{ ip: i.hostIP }],
    ...(i.podIP ? { podIP: i.podIP, podIPs: [{ ip: i.podIP }] } : {}),
    startTime: old.startTime ?? i.startTime.replace(/\.\d+Z$/, 'Z'),
    ...(initSpecs.length ? { initContainerStatuses: initStatuses } : {}),
    containerStatuses: ctrStatuses,
    ...(old.qosClass ? { qosClass: old.qosClass } : {}),
  };
  return st;
}
