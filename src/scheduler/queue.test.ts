import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../client/clock.js';
import { SchedulingQueue } from './queue.js';
import { makePod } from './testing/fixtures.js';

function pod(name: string, priority = 0, created = '2025-01-01T00:00:00Z') {
  const p = makePod(name);
  return { ...p, metadata: { ...p.metadata, creationTimestamp: created }, spec: { ...p.spec!, priority } };
}

test('activeQ pops the highest priority first, then the oldest', () => {
  const q = new SchedulingQueue({ clock: new FakeClock() });
  q.add(pod('low-old', 0, '2025-01-01T00:00:00Z'));
  q.add(pod('high', 1000, '2025-01-01T00:00:09Z'));
  q.add(pod('low-new', 0, '2025-01-01T00:00:05Z'));
  q.add(pod('low-older', 0, '2024-12-31T00:00:00Z'));
  const order = [q.tryPop(), q.tryPop(), q.tryPop(), q.tryPop()].map((x) => x!.podInfo.pod.metadata!.name);
  assert.deepEqual(order, ['high', 'low-older', 'low-old', 'low-new']);
  assert.equal(q.tryPop(), undefined);
});

test('a failed pod backs off 1 s, 2 s, 4 s, 8 s, then 10 s per attempt', () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue({ clock });
  q.add(pod('p'));
  const waits: number[] = [];
  for (let attempt = 1; attempt <= 6; attempt++) {
    const item = q.tryPop()!;
    assert.equal(item.attempts, attempt);
    q.addUnschedulable(item, q.cycle, false); // an error: straight to backoffQ
    assert.equal(q.where('default/p'), 'backoff');
    const start = clock.now();
    while (q.where('default/p') !== 'active') { clock.step(100); q.flushBackoffCompleted(); }
    waits.push(clock.now() - start);
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 10000, 10000]);
});

test('unschedulable pods wait for a cluster event, then go to activeQ (or backoffQ while backing off)', () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue({ clock });
  q.add(pod('p'));
  const item = q.tryPop()!;
  item.unschedulablePlugins = new Set(['NodeResourcesFit']);
  q.addUnschedulable(item, q.cycle);
  assert.equal(q.where('default/p'), 'unschedulable');
  clock.step(5000);
  q.flushBackoffCompleted();
  assert.equal(q.where('default/p'), 'unschedulable', 'no event, no retry (until the 5 minute leftover flush)');
  q.moveAllToActiveOrBackoff('AssignedPodAdd');
  assert.equal(q.where('default/p'), 'unschedulable', 'a new pod elsewhere cannot free cpu');
  q.moveAllToActiveOrBackoff('NodeAdd');
  assert.equal(q.where('default/p'), 'active');

  // an event right after the failure: backoff still running → backoffQ
  const again = q.tryPop()!;
  q.addUnschedulable(again, q.cycle);
  q.moveAllToActiveOrBackoff('NodeUpdate');
  assert.equal(q.where('default/p'), 'backoff');
  clock.step(2000);
  q.flushBackoffCompleted();
  assert.equal(q.where('default/p'), 'active');
});

test('an event during the attempt sends the pod to backoffQ, not to wait for another event', () => {
  const q = new SchedulingQueue({ clock: new FakeClock() });
  q.add(pod('p'));
  const item = q.tryPop()!;
  const cycle = q.cycle;
  q.moveAllToActiveOrBackoff('NodeAdd'); // a node arrived while p was being scheduled
  q.addUnschedulable(item, cycle);
  assert.equal(q.where('default/p'), 'backoff');
});

test('leftover unschedulable pods are retried after 5 minutes; updates that matter retry at once', () => {
  const clock = new FakeClock();
  const q = new SchedulingQueue({ clock });
  const p = pod('p');
  q.add(p);
  q.addUnschedulable(q.tryPop()!, q.cycle);
  // a status-only update does not retry
  q.update(p, { ...p, status: { conditions: [{ type: 'PodScheduled', status: 'False' }] } });
  assert.equal(q.where('default/p'), 'unschedulable');
  clock.step(5 * 60_000);
  q.flushUnschedulableLeftover();
  assert.equal(q.where('default/p'), 'active');
  const item = q.tryPop()!;
  q.addUnschedulable(item, q.cycle);
  clock.step(60_000);
  q.update(p, { ...p, spec: { ...p.spec!, nodeSelector: { a: 'b' } } });
  assert.equal(q.where('default/p'), 'active');
});

test('pop waits for a pod and ends when the signal aborts', async () => {
  const q = new SchedulingQueue({ clock: new FakeClock() });
  const waiting = q.pop();
  q.add(pod('late'));
  assert.equal((await waiting)?.podInfo.pod.metadata!.name, 'late');
  const ac = new AbortController();
  const none = q.pop(ac.signal);
  ac.abort();
  assert.equal(await none, undefined);
});
