import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RestClient } from './rest-client.js';
import { LeaderElector, leasesResource, toMicroTime, type Lease } from './leader-election.js';
import { FakeApiServer } from './testing/fake-apiserver.js';

let server: FakeApiServer;
let client: RestClient;
before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url });
});
after(async () => { client.close(); await server.close(); });

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function candidate(identity: string, name: string, extra: Partial<ConstructorParameters<typeof LeaderElector>[0]> = {}) {
  const state = { leading: false, started: 0, stopped: 0, leadSignal: undefined as AbortSignal | undefined };
  const ac = new AbortController();
  const elector = new LeaderElector({
    client, namespace: 'kube-system', name, identity,
    leaseDurationSeconds: 1, renewDeadlineSeconds: 0.5, retryPeriodSeconds: 0.1,
    onStartedLeading: (signal) => { state.leading = true; state.started++; state.leadSignal = signal; },
    onStoppedLeading: () => { state.leading = false; state.stopped++; },
    ...extra,
  });
  const done = elector.run(ac.signal);
  return { elector, state, ac, done };
}

const lease = (name: string) => server.getObject(leasesResource, 'kube-system', name) as Lease | undefined;

test('MicroTime has six fractional digits', () => {
  assert.equal(toMicroTime(Date.UTC(2024, 1, 3, 4, 5, 6, 789)), '2024-02-03T04:05:06.789000Z');
});

test('two candidates: exactly one leads; after it stops and releases, the other takes over', async () => {
  // a long lease, so a takeover before it could expire proves the release
  const timing = { leaseDurationSeconds: 4, renewDeadlineSeconds: 1, retryPeriodSeconds: 0.1 };
  const a = candidate('a', 'sched', timing);
  const b = candidate('b', 'sched', timing);
  try {
    await until(() => a.state.leading || b.state.leading, 'a leader');
    const [first, second] = a.state.leading ? [a, b] : [b, a];
    const firstId = first === a ? 'a' : 'b';
    const l = lease('sched')!;
    assert.equal(l.spec?.holderIdentity, firstId);
    assert.equal(l.spec?.leaseDurationSeconds, 4);
    assert.equal(l.spec?.leaseTransitions, 0);
    assert.match(l.spec!.renewTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    // the leader keeps renewing; the other keeps waiting
    const seen = new Set([l.spec!.renewTime]);
    await until(() => { seen.add(lease('sched')!.spec!.renewTime); return seen.size >= 4; }, 'three renewals');
    assert.equal(second.state.started, 0, 'the follower never started leading while the lease was renewed');
    assert.equal(first.elector.isLeader(), true);
    assert.equal(second.elector.isLeader(), false);
    assert.equal(second.elector.getLeader(), firstId);
    assert.equal(lease('sched')!.spec?.acquireTime, l.spec?.acquireTime, 'renewals keep acquireTime');

    first.ac.abort();
    await first.done;
    assert.equal(first.state.stopped, 1);
    assert.equal(first.state.leadSignal?.aborted, true, 'leading work was told to stop');
    const tStop = Date.now();
    await until(() => second.state.leading, 'takeover');
    assert.ok(Date.now() - tStop < 3000, 'a released lease is taken over without waiting for it to expire');
    const l2 = lease('sched')!;
    assert.equal(l2.spec?.holderIdentity, first === a ? 'b' : 'a');
    assert.equal(l2.spec?.leaseTransitions, 1);
  } finally {
    a.ac.abort(); b.ac.abort();
    await Promise.all([a.done, b.done]);
  }
});

test('a leader that vanishes without releasing is replaced once its lease expires', async () => {
  const a = candidate('a', 'ctrl', { releaseOnCancel: false });
  await until(() => a.state.leading, 'a leads');
  const b = candidate('b', 'ctrl');
  try {
    a.ac.abort();
    await a.done;
    assert.equal(lease('ctrl')!.spec?.holderIdentity, 'a', 'not released');
    const t0 = Date.now();
    await until(() => b.state.leading, 'b takes over');
    assert.ok(Date.now() - t0 >= 500, 'b waited for the lease to expire');
    assert.equal(lease('ctrl')!.spec?.holderIdentity, 'b');
  } finally {
    b.ac.abort();
    await b.done;
  }
});

test('a leader that cannot renew within renewDeadline stops leading', async () => {
  const a = candidate('a', 'lost');
  try {
    await until(() => a.state.leading, 'a leads');
    server.injectFailure({ pathIncludes: '/leases/lost', status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, reason: 'InternalError', message: 'etcd down' }, times: 1000 });
    await a.done;
    assert.equal(a.state.stopped, 1);
    assert.equal(a.state.leadSignal?.aborted, true);
    assert.equal(a.elector.isLeader(), false);
  } finally {
    server.clearFailures();
    a.ac.abort();
  }
});
