import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { WorkQueue, runWorkers, BucketRateLimiter, ItemExponentialFailureRateLimiter } from './workqueue.js';

/** Lets pending promise callbacks run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

test('a key added several times while queued is handed out once', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a'); q.add('b'); q.add('a');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(q.len(), 0);
});

test('a key being processed is not handed out again until done; re-added keys come back after done', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a');
  const k = await q.get();
  assert.equal(k, 'a');
  q.add('a'); q.add('a');
  assert.equal(q.len(), 0, 'not queued while processing');
  let second: string | undefined;
  void q.get().then((x) => { second = x; });
  await tick();
  assert.equal(second, undefined, 'a second worker does not get the key in process');
  q.done('a');
  await tick();
  assert.equal(second, 'a', 'processed again after done, once');
  assert.equal(q.len(), 0);
  q.done('a');
  assert.equal(q.len(), 0, 'done without a re-add does not requeue');
});

test('addAfter: the key appears when the delay has passed; an earlier time for the same key wins', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter('x', 100);
  q.addAfter('y', 500);
  q.addAfter('y', 50);
  clock.step(49);
  assert.equal(q.len(), 0);
  clock.step(1);
  assert.equal(q.len(), 1, 'y at 50');
  clock.step(50);
  assert.equal(q.len(), 2, 'x at 100');
  clock.step(1000);
  assert.equal(q.len(), 2, 'y is not added a second time at 500');
});

test('addRateLimited: per-key backoff 5 ms doubling, reset by forget; capped at 1000 s', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  for (const delay of [5, 10, 20, 40]) {
    q.addRateLimited('k');
    clock.step(delay - 1);
    assert.equal(q.len(), 0, `not before ${delay} ms`);
    clock.step(1);
    assert.equal(q.len(), 1, `ready after ${delay} ms`);
    q.done((await q.get())!);
  }
  assert.equal(q.numRequeues('k'), 4);
  q.forget('k');
  assert.equal(q.numRequeues('k'), 0);
  q.addRateLimited('k');
  clock.step(5);
  assert.equal(q.len(), 1, 'back to 5 ms after forget');

  const exp = new ItemExponentialFailureRateLimiter();
  let last = 0;
  for (let i = 0; i < 40; i++) last = exp.when('z');
  assert.equal(last, 1000_000);
});

test('the overall bucket allows a burst of 100, then 10 per second', () => {
  const clock = new FakeClock();
  const b = new BucketRateLimiter(10, 100, clock);
  for (let i = 0; i < 100; i++) assert.equal(b.when(), 0);
  assert.equal(Math.round(b.when()), 100);
  assert.equal(Math.round(b.when()), 200);
  // one second refills 10 tokens: the 2 borrowed ones are repaid, 8 are free
  clock.step(1000);
  for (let i = 0; i < 8; i++) assert.equal(b.when(), 0);
  assert.equal(Math.round(b.when()), 100);
});

test('shutDown: queued keys are still handed out, then get() returns undefined; adds are ignored', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  const waiting = q.get();
  q.add('a');
  assert.equal(await waiting, 'a');
  q.add('b');
  q.shutDown();
  q.add('c');
  assert.equal(await q.get(), 'b');
  assert.equal(await q.get(), undefined);
});

test('runWorkers: a failing sync is retried with backoff and forgotten on success; one key never runs twice at once', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const ac = new AbortController();
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlightSameKey = 0;
  let failuresLeft = 2;
  let release: (() => void) | undefined;
  const errors: string[] = [];
  const running = runWorkers(q, 3, async (key) => {
    calls.push(key);
    if (key === 'slow') {
      inFlight++;
      maxInFlightSameKey = Math.max(maxInFlightSameKey, inFlight);
      await new Promise<void>((r) => { release = r; });
      inFlight--;
      return;
    }
    if (key === 'flaky' && failuresLeft-- > 0) throw new Error('not yet');
  }, ac.signal, { onError: (k, e) => errors.push(`${k}: ${(e as Error).message}`) });

  q.add('slow');
  await tick();
  q.add('slow'); q.add('slow');
  await tick();
  assert.equal(calls.filter((c) => c === 'slow').length, 1, 'three idle workers, still only one runs the key');

  q.add('flaky');
  await tick();
  assert.deepEqual(errors, ['flaky: not yet']);
  assert.equal(q.numRequeues('flaky'), 1);
  clock.step(5);
  await tick();
  assert.equal(q.numRequeues('flaky'), 2);
  clock.step(9);
  await tick();
  assert.equal(calls.filter((c) => c === 'flaky').length, 2, 'second retry waits 10 ms');
  clock.step(1);
  await tick();
  assert.equal(calls.filter((c) => c === 'flaky').length, 3);
  assert.equal(q.numRequeues('flaky'), 0, 'forgotten after success');

  release!();
  await tick();
  assert.equal(calls.filter((c) => c === 'slow').length, 2, 'the re-added key runs again after done');
  release!();
  assert.equal(maxInFlightSameKey, 1);
  ac.abort();
  await running;
  assert.equal(q.shuttingDown(), true);
});
