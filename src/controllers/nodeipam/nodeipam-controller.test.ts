// The node IPAM controller against the fake API server: ranges for new nodes, none handed out
// twice (also across a controller restart), release on delete, CIDRNotAvailable when exhausted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/types.js';
import { RestClient } from '../../client/index.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { newControllerContext } from '../context.js';
import { start } from './nodeipam-controller.js';

const nodes = { group: '', plural: 'nodes' };
const events = { group: '', plural: 'events' };
type NodeObj = KObject & { spec?: { podCIDR?: string; podCIDRs?: string[] } };

async function until<T>(f: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const node = (name: string, podCIDR?: string): KObject => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
});

function runController(server: FakeApiServer, opts: Record<string, unknown>) {
  const client = new RestClient({ server: server.url });
  const ctx = newControllerContext(client);
  const ac = new AbortController();
  const done = start(ctx, ac.signal, opts);
  return { async stop() { ac.abort(); await done; client.close(); } };
}

const cidrOf = (server: FakeApiServer, name: string) => (server.getObject(nodes, undefined, name) as NodeObj | undefined)?.spec?.podCIDR;

test('gives each node without a range its own /24, rebuilds the used set at start, releases on delete, reports exhaustion', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  // 10.42.0.0/22 holds four /24s; n0 already has one
  server.put(nodes, node('n0', '10.42.1.0/24'));
  server.put(nodes, node('n1'));
  server.put(nodes, node('n2'));
  let c = runController(server, { clusterCIDR: '10.42.0.0/22' });
  t.after(() => c.stop());

  const [c1, c2] = await until(() => { const a = cidrOf(server, 'n1'); const b = cidrOf(server, 'n2'); return a && b && [a, b]; }, 'ranges for n1 and n2');
  const n1 = server.getObject(nodes, undefined, 'n1') as NodeObj;
  assert.deepEqual(n1.spec!.podCIDRs, [n1.spec!.podCIDR]);
  assert.deepEqual([c1, c2, '10.42.1.0/24'].sort(), [...new Set([c1, c2, '10.42.1.0/24'])].sort(), 'all distinct');
  for (const c of [c1, c2]) assert.match(c, /^10\.42\.[0-3]\.0\/24$/);
  const patches = server.requests.filter((r) => r.method === 'PATCH');
  assert.equal(patches.length, 2);
  assert.equal(patches[0]!.headers['content-type'], 'application/merge-patch+json');

  server.put(nodes, node('n3'));
  const c3 = await until(() => cidrOf(server, 'n3'), 'a range for n3');
  assert.ok(![c1, c2, '10.42.1.0/24'].includes(c3));

  // the fifth node finds the cluster CIDR used up
  server.put(nodes, node('n4'));
  const ev = await until(() => server.listObjects(events).find((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === 'n4'), 'CIDRNotAvailable event') as KObject & Record<string, unknown>;
  assert.equal(ev.reason, 'CIDRNotAvailable');
  assert.equal(ev.type, 'Warning');
  assert.deepEqual((ev.involvedObject as Record<string, unknown>).kind, 'Node');
  assert.match(String(ev.message), /no free \/24 left in cluster CIDR 10\.42\.0\.0\/22/);
  assert.equal(cidrOf(server, 'n4'), undefined);

  // deleting n1 gives its range back, and the waiting node gets it
  server.remove(nodes, undefined, 'n1');
  assert.equal(await until(() => cidrOf(server, 'n4'), 'n4 gets the released range'), c1);

  // a new controller (e.g. after a leader change) rebuilds the used set from the nodes: it
  // patches nothing that has a range and hands out nothing twice
  await c.stop();
  const before = server.requests.filter((r) => r.method === 'PATCH').length;
  c = runController(server, { clusterCIDR: '10.42.0.0/22' });
  server.put(nodes, node('n5'));
  await until(() => server.listObjects(events).find((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === 'n5'), 'CIDRNotAvailable for n5');
  assert.equal(server.requests.filter((r) => r.method === 'PATCH').length, before);
  const all = server.listObjects(nodes).map((n) => (n as NodeObj).spec?.podCIDR).filter(Boolean);
  assert.equal(new Set(all).size, all.length, `no range twice: ${all.join(', ')}`);
});

test('defaults: 10.42.0.0/16 in /24s; a failed PATCH keeps the range for the same node', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  server.injectFailure({ method: 'PATCH', pathIncludes: '/nodes/a', status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, reason: 'InternalError', message: 'boom' }, times: 1 });
  server.put(nodes, node('a'));
  const errs: unknown[] = [];
  const c = runController(server, { onError: (_n: string, e: unknown) => errs.push(e) });
  t.after(() => c.stop());
  const got = await until(() => cidrOf(server, 'a'), 'a range for a after a retry');
  assert.equal(got, '10.42.0.0/24', 'the retry writes the range first handed out');
  assert.equal(server.requests.filter((r) => r.method === 'PATCH').length, 2);
  assert.match(String(errs[0]), /boom/);
  server.put(nodes, node('b'));
  assert.equal(await until(() => cidrOf(server, 'b'), 'a range for b'), '10.42.1.0/24');
});
