import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RestClient } from './rest-client.js';
import { FakeClock } from './clock.js';
import { EventRecorder, eventsResource, type CoreEvent } from './event-recorder.js';
import { FakeApiServer } from './testing/fake-apiserver.js';

let server: FakeApiServer;
let client: RestClient;
before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url });
});
after(async () => { client.close(); await server.close(); });

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'ev', uid: 'uid-1', resourceVersion: '7' } };
const events = (ns: string) => (server.listObjects(eventsResource) as CoreEvent[]).filter((e) => e.metadata?.namespace === ns);

test('the same event twice within the window patches count and lastTimestamp of one Event', async () => {
  const clock = new FakeClock(Date.UTC(2025, 4, 6, 7, 8, 9));
  const rec = new EventRecorder({ client, component: 'default-scheduler', host: 'node-a', clock });
  rec.event(pod, 'Warning', 'FailedScheduling', '0/3 nodes are available');
  await rec.flush();
  clock.step(5000);
  rec.event(pod, 'Warning', 'FailedScheduling', '0/3 nodes are available');
  await rec.flush();

  const evs = events('ev');
  assert.equal(evs.length, 1);
  const e = evs[0]!;
  assert.match(e.metadata!.name!, /^web-1\.[0-9a-f]{16}$/);
  assert.equal(e.count, 2);
  assert.equal(e.firstTimestamp, '2025-05-06T07:08:09Z');
  assert.equal(e.lastTimestamp, '2025-05-06T07:08:14Z');
  assert.deepEqual(e.involvedObject, { kind: 'Pod', namespace: 'ev', name: 'web-1', uid: 'uid-1', apiVersion: 'v1', resourceVersion: '7' });
  assert.deepEqual(e.source, { component: 'default-scheduler', host: 'node-a' });
  assert.equal(e.reportingComponent, 'default-scheduler');
  assert.equal(e.type, 'Warning');
  const patch = server.requests.find((r) => r.method === 'PATCH')!;
  assert.equal(patch.url, `/api/v1/namespaces/ev/events/${e.metadata!.name}`);

  // a different message is a different event; so is a repeat after the window
  rec.event(pod, 'Warning', 'FailedScheduling', '0/4 nodes are available');
  await rec.flush();
  assert.equal(events('ev').length, 2);
  clock.step(11 * 60_000);
  rec.event(pod, 'Warning', 'FailedScheduling', '0/3 nodes are available');
  await rec.flush();
  assert.equal(events('ev').length, 3);
  assert.deepEqual(events('ev').map((x) => x.count).sort(), [1, 1, 2]);
});

test('events about cluster-scoped objects go to the default namespace', async () => {
  const rec = new EventRecorder({ client, component: 'kubelet' });
  rec.event({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-z', uid: 'n-uid' } }, 'Normal', 'NodeReady', 'Node node-z status is now: NodeReady');
  await rec.flush();
  const e = events('default').find((x) => x.involvedObject.name === 'node-z')!;
  assert.equal(e.reason, 'NodeReady');
  assert.equal(e.count, 1);
});

test('recording never throws into the caller: unreachable server, full queue', async () => {
  const dead = new RestClient({ server: 'http://127.0.0.1:1' });
  const errors: unknown[] = [];
  const rec = new EventRecorder({ client: dead, component: 'x', maxQueue: 2, maxAttempts: 1, onError: (e) => errors.push(e) });
  for (let i = 0; i < 4; i++) rec.event(pod, 'Normal', 'Tick', `n=${i}`);
  assert.equal(rec.dropped, 1, 'one being written, two queued, one dropped');
  await rec.flush();
  assert.equal(errors.length, 4, 'three failed writes and one drop reported');
  rec.event({ metadata: {} }, 'Normal', 'NoName', 'ignored');
  dead.close();
});
