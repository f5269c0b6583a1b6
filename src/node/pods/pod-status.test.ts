// The pod status the agent writes, for the situations a user reads in `kubectl get pods`/`describe`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { computePodStatus, type ContainerView } from './pod-status.js';
import type { ContainerInfo } from '../runtime/runtime.js';

function inst(name: string, attempt: number, state: ContainerInfo['state'], exit?: { code: number; oom?: boolean }): ContainerInfo {
  return {
    meta: {
      id: `${name}${attempt}`.padEnd(64, '0'), podUID: 'u', podNamespace: 'ns', podName: 'p', containerName: name, attempt, init: false,
      imageRef: 'img', imageId: 'sha256:abc', logPath: '/x', cgroupsPath: '/c', createdAt: '2026-01-01T00:00:00.123Z', startedAt: '2026-01-01T00:00:01.5Z', specHash: 'h',
    },
    state,
    ...(exit ? { exit: { exitCode: exit.code, oomKilled: !!exit.oom, finishedAt: '2026-01-01T00:00:09.000Z' } } : {}),
  };
}

const pod = (restartPolicy: 'Always' | 'Never' | 'OnFailure' = 'Always', init = false): Pod => ({
  metadata: { name: 'p', namespace: 'ns', uid: 'u' },
  spec: {
    restartPolicy,
    ...(init ? { initContainers: [{ name: 'setup', image: 'img' }] } : {}),
    containers: [{ name: 'a', image: 'img' }, { name: 'b', image: 'img' }],
  },
  status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }], qosClass: 'BestEffort' },
});

const view = (instances: ContainerInfo[], extra: Partial<ContainerView> = {}): ContainerView => ({ instances, ready: true, started: true, ...extra });

function status(p: Pod, a: ContainerView, b: ContainerView, init?: ContainerView) {
  return computePodStatus({
    pod: p, hostIP: '192.0.2.2', podIP: '10.42.0.5', sandboxReady: true, startTime: '2026-01-01T00:00:00Z',
    init: new Map(init ? [['setup', init]] : []), containers: new Map([['a', a], ['b', b]]), now: () => '2026-01-01T00:01:00Z',
  });
}

test('running and ready containers: phase Running, all conditions True', () => {
  const s = status(pod(), view([inst('a', 0, 'running')]), view([inst('b', 0, 'running')]));
  assert.equal(s.phase, 'Running');
  assert.deepEqual(s.conditions!.map((c) => [c.type, c.status]), [
    ['PodReadyToStartContainers', 'True'], ['Initialized', 'True'], ['Ready', 'True'], ['ContainersReady', 'True'], ['PodScheduled', 'True']]);
  assert.equal(s.containerStatuses![0]!.state!.running!.startedAt, '2026-01-01T00:00:01Z');
  assert.equal(s.containerStatuses![0]!.containerID, `runc://${'a0'.padEnd(64, '0')}`);
  assert.equal(s.podIP, '10.42.0.5');
  assert.equal(s.qosClass, 'BestEffort');
});

test('a container not yet created keeps the pod Pending with ContainerCreating', () => {
  const s = status(pod(), view([inst('a', 0, 'running')]), view([], { ready: false, started: false }));
  assert.equal(s.phase, 'Pending');
  assert.equal(s.containerStatuses![1]!.state!.waiting!.reason, 'ContainerCreating');
  const ready = s.conditions!.find((c) => c.type === 'Ready')!;
  assert.equal(ready.status, 'False');
  assert.equal(ready.message, 'containers with unready status: [b]');
});

test('a crashing container waits in CrashLoopBackOff with its last termination', () => {
  const s = status(pod(), view([inst('a', 0, 'exited', { code: 1 }), inst('a', 1, 'exited', { code: 2 })], { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s' }, ready: false }),
    view([inst('b', 0, 'running')]));
  assert.equal(s.phase, 'Running');
  const a = s.containerStatuses![0]!;
  assert.equal(a.state!.waiting!.reason, 'CrashLoopBackOff');
  assert.equal(a.lastState!.terminated!.exitCode, 2);
  assert.equal(a.lastState!.terminated!.reason, 'Error');
  assert.equal(a.restartCount, 1);
  assert.equal(a.ready, false);
});

test('restartPolicy Never: all succeeded → Succeeded; one failed → Failed; OOM kill reported', () => {
  const ok = status(pod('Never'), view([inst('a', 0, 'exited', { code: 0 })]), view([inst('b', 0, 'exited', { code: 0 })]));
  assert.equal(ok.phase, 'Succeeded');
  assert.equal(ok.containerStatuses![0]!.state!.terminated!.reason, 'Completed');
  assert.equal(ok.conditions!.find((c) => c.type === 'Ready')!.reason, 'PodCompleted');
  const bad = status(pod('Never'), view([inst('a', 0, 'exited', { code: 137, oom: true })]), view([inst('b', 0, 'exited', { code: 0 })]));
  assert.equal(bad.phase, 'Failed');
  assert.equal(bad.containerStatuses![0]!.state!.terminated!.reason, 'OOMKilled');
});

test('restartPolicy OnFailure: a failed container is restarted, so the pod stays Running', () => {
  const s = status(pod('OnFailure'), view([inst('a', 0, 'exited', { code: 1 })], { waiting: { reason: 'CrashLoopBackOff' }, ready: false }), view([inst('b', 0, 'exited', { code: 0 })]));
  assert.equal(s.phase, 'Running');
});

test('an unfinished init container: Pending, Initialized False, containers PodInitializing', () => {
  const s = status(pod('Always', true), view([], { ready: false, started: false }), view([], { ready: false, started: false }), view([inst('setup', 0, 'running')]));
  assert.equal(s.phase, 'Pending');
  const init = s.conditions!.find((c) => c.type === 'Initialized')!;
  assert.equal(init.status, 'False');
  assert.equal(init.reason, 'ContainersNotInitialized');
  assert.equal(s.containerStatuses![0]!.state!.waiting!.reason, 'PodInitializing');
  assert.equal(s.initContainerStatuses![0]!.state!.running !== undefined, true);
});

test('lastTransitionTime moves only when a condition flips', () => {
  const p = pod();
  p.status!.conditions!.push({ type: 'Ready', status: 'True', lastTransitionTime: '2025-06-01T00:00:00Z' });
  const same = status(p, view([inst('a', 0, 'running')]), view([inst('b', 0, 'running')]));
  assert.equal(same.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, '2025-06-01T00:00:00Z');
  const flipped = status(p, view([inst('a', 0, 'running')], { ready: false }), view([inst('b', 0, 'running')]));
  assert.equal(flipped.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, '2026-01-01T00:01:00Z');
});
