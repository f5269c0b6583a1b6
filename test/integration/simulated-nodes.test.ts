// Simulated nodes against an in-process API server (memory store, plain HTTP): nodes register Ready
// with capacity, Leases in kube-node-lease renew, bound pods turn Running+Ready with a pod IP,
// graceful deletion of a bound pod completes, a stopped heartbeat stops renewals and pod updates,
// and 1000 nodes register (time printed, not asserted).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { RestClient, type ResourceRef } from '../../src/client/rest-client.js';
import { isStatusError } from '../../src/machinery/status.js';
import type { KObject } from '../../src/api/types.js';
import { SimulatedNodes } from '../../src/node/simulated/simulated-nodes.js';
import { parseSimulateNodesArgs } from '../../src/node/simulated/cli.js';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const PODS: ResourceRef = { group: '', version: 'v1', plural: 'pods' };
const LEASES: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const renewTime = async (c: RestClient, node: string): Promise<string> =>
  ((await c.get(LEASES, 'kube-node-lease', node)).spec as { renewTime: string }).renewTime;

function pod(name: string, nodeName: string, extra: Record<string, unknown> = {}, annotations?: Record<string, string>): KObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', ...(annotations ? { annotations } : {}) },
    spec: { nodeName, containers: [{ name: 'app', image: 'nginx:1.27' }, { name: 'side', image: 'busybox:1.36' }], ...extra },
  };
}

describe('simulated nodes (3 nodes)', () => {
  let api: ApiServer;
  let client: RestClient;
  let sim: SimulatedNodes;
  const ac = new AbortController();
  let running: Promise<void>;

  before(async () => {
    api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
    client = new RestClient({ server: api.url });
    // one node exists already, without status: it is taken over and brought up to date
    await client.create(NODES, null, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'sim-node-2', labels: { keep: 'me' } } });
    sim = new SimulatedNodes(client, {
      count: 3, heartbeatIntervalMs: 200, capacity: { cpu: '8', memory: '32Gi' }, labels: { zone: 'z1' },
      nodeStatusReportIntervalMs: 400,
    });
    running = sim.run(ac.signal);
  });
  after(async () => {
    ac.abort();
    await running;
    client.close();
    await api.close();
  });

  test('nodes register Ready with capacity, addresses, node info and labels', async () => {
    assert.deepEqual(sim.nodeNames(), ['sim-node-0', 'sim-node-1', 'sim-node-2']);
    const nodes = await until('3 Ready nodes', async () => {
      const l = await client.list(NODES);
      const ready = l.items.filter((n) => (n.status as any)?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
      return ready.length === 3 ? l.items : undefined;
    });
    const cidrs = new Set<string>();
    for (const n of nodes) {
      const st = n.status as any;
      assert.equal(st.capacity.cpu, '8');
      assert.equal(st.capacity.memory, '32Gi');
      assert.equal(st.capacity.pods, '110');
      assert.equal(st.allocatable.cpu, '8');
      const ready = st.conditions.find((c: any) => c.type === 'Ready');
      assert.equal(ready.reason, 'KubeletReady');
      assert.equal(ready.message, 'kubelet is posting ready status');
      for (const t of ['MemoryPressure', 'DiskPressure', 'PIDPressure']) assert.equal(st.conditions.find((c: any) => c.type === t)?.status, 'False', t);
      assert.ok(st.addresses.some((a: any) => a.type === 'InternalIP' && /^\d+\.\d+\.\d+\.\d+$/.test(a.address)));
      assert.ok(st.addresses.some((a: any) => a.type === 'Hostname' && a.address === n.metadata!.name));
      assert.equal(st.nodeInfo.kubeletVersion, 'v1.32.0-kyb-sim');
      assert.equal(st.nodeInfo.containerRuntimeVersion, 'simulated://0.1');
      assert.equal(st.nodeInfo.operatingSystem, 'linux');
      assert.equal(st.nodeInfo.architecture, 'amd64');
      const labels = n.metadata!.labels!;
      assert.equal(labels['kubernetes.io/hostname'], n.metadata!.name);
      assert.equal(labels['kubernetes.io/os'], 'linux');
      assert.equal(labels['kubernetes.io/arch'], 'amd64');
      assert.equal(labels['node.kubernetes.io/instance-type'], 'simulated');
      assert.equal(labels['kybernetes.io/simulated'], 'true');
      assert.equal(labels.zone, 'z1');
      const podCIDR = (n.spec as any).podCIDR as string;
      assert.match(podCIDR, /^10\.42\.\d+\.0\/24$/);
      cidrs.add(podCIDR);
    }
    assert.equal(cidrs.size, 3, 'each node has its own pod CIDR');
    assert.equal(nodes.find((n) => n.metadata!.name === 'sim-node-2')!.metadata!.labels!.keep, 'me', 'the existing node kept its labels');
  });

  test('each node renews its Lease in kube-node-lease', async () => {
    const first = await until('lease of sim-node-0', () => client.get(LEASES, 'kube-node-lease', 'sim-node-0'));
    const spec = first.spec as any;
    assert.equal(spec.holderIdentity, 'sim-node-0');
    assert.equal(spec.leaseDurationSeconds, 40);
    assert.match(spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(first.metadata!.ownerReferences?.[0]?.kind, 'Node');
    await until('renewTime advancing', async () => (await renewTime(client, 'sim-node-0')) > spec.renewTime);
    for (const n of ['sim-node-1', 'sim-node-2']) await renewTime(client, n);
  });

  test('a pod bound to a node becomes Running and Ready with a pod IP from the node', async () => {
    await client.create(PODS, 'default', pod('web', 'sim-node-1'));
    const p = await until('pod web Running', async () => {
      const o = await client.get(PODS, 'default', 'web');
      return (o.status as any)?.phase === 'Running' ? o : undefined;
    });
    const st = p.status as any;
    const node = await client.get(NODES, null, 'sim-node-1');
    const cidr = (node.spec as any).podCIDR as string;
    assert.equal(st.podIP.split('.').slice(0, 3).join('.'), cidr.split('.').slice(0, 3).join('.'), `podIP ${st.podIP} in ${cidr}`);
    assert.equal(st.hostIP, (node.status as any).addresses.find((a: any) => a.type === 'InternalIP').address);
    assert.ok(st.startTime);
    for (const t of ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready', 'PodScheduled']) {
      assert.equal(st.conditions.find((c: any) => c.type === t)?.status, 'True', t);
    }
    assert.equal(st.containerStatuses.length, 2);
    for (const cs of st.containerStatuses) {
      assert.equal(cs.ready, true);
      assert.equal(cs.started, true);
      assert.equal(cs.restartCount, 0);
      assert.ok(cs.state.running.startedAt);
      assert.equal(cs.containerID, `simulated://${p.metadata!.uid}-${cs.name}`);
    }
    assert.equal(st.containerStatuses.find((c: any) => c.name === 'app').image, 'nginx:1.27');

    // a second pod on the same node gets another IP
    await client.create(PODS, 'default', pod('web2', 'sim-node-1'));
    const p2 = await until('pod web2 Running', async () => {
      const o = await client.get(PODS, 'default', 'web2');
      return (o.status as any)?.phase === 'Running' ? o : undefined;
    });
    assert.notEqual((p2.status as any).podIP, st.podIP);
  });

  test('deleting a bound pod (graceful on the server) completes: the pod disappears', async () => {
    await client.create(PODS, 'default', pod('doomed', 'sim-node-0'));
    await until('doomed Running', async () => ((await client.get(PODS, 'default', 'doomed')).status as any)?.phase === 'Running');
    await client.delete(PODS, 'default', 'doomed'); // no grace given: the pod's 30 s apply
    await until('doomed gone', async () => {
      try { await client.get(PODS, 'default', 'doomed'); return false; } catch (e) { return isStatusError(e, 'NotFound'); }
    });
  });

  test('a run-to-completion pod with the exit annotation reports Succeeded', async () => {
    await client.create(PODS, 'default', pod('job', 'sim-node-0', { restartPolicy: 'Never' }, { 'kybernetes.io/simulated-exit-after-ms': '50' }));
    const p = await until('job Succeeded', async () => {
      const o = await client.get(PODS, 'default', 'job');
      return (o.status as any)?.phase === 'Succeeded' ? o : undefined;
    });
    const cs = (p.status as any).containerStatuses;
    assert.ok(cs.every((c: any) => c.state.terminated?.exitCode === 0 && c.state.terminated.reason === 'Completed'));
    assert.equal((p.status as any).conditions.find((c: any) => c.type === 'Ready').status, 'False');
  });

  test('stopHeartbeat freezes the Lease and the node\'s pods; resumeHeartbeat brings them back', async () => {
    sim.stopHeartbeat('sim-node-2');
    // let any renewal already in flight land, then take the frozen value
    const other0 = await renewTime(client, 'sim-node-0');
    await until('sim-node-0 renewed once', async () => (await renewTime(client, 'sim-node-0')) > other0);
    const frozen = await renewTime(client, 'sim-node-2');
    await client.create(PODS, 'default', pod('stuck', 'sim-node-2'));
    // while sim-node-0 renews three more times, sim-node-2's lease stays still and its pod stays Pending
    for (let i = 0; i < 3; i++) {
      const before = await renewTime(client, 'sim-node-0');
      await until('sim-node-0 renewing', async () => (await renewTime(client, 'sim-node-0')) > before);
    }
    assert.equal(await renewTime(client, 'sim-node-2'), frozen);
    assert.notEqual(((await client.get(PODS, 'default', 'stuck')).status as any)?.phase, 'Running');

    sim.resumeHeartbeat('sim-node-2');
    await until('sim-node-2 renewing again', async () => (await renewTime(client, 'sim-node-2')) > frozen);
    await until('stuck Running after resume', async () => ((await client.get(PODS, 'default', 'stuck')).status as any)?.phase === 'Running');
  });
});

test('1000 simulated nodes register (time printed)', async () => {
  const api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  const client = new RestClient({ server: api.url });
  const sim = new SimulatedNodes(client, { count: 1000, onError: (e, d) => console.error(d, e) });
  const ac = new AbortController();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const running = sim.run(ac.signal);
  try {
    await until('1000 nodes registered', async () => sim.stats.nodesRegistered === 1000, 25_000);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const nodes = await client.list(NODES, null, { labelSelector: 'kybernetes.io/simulated=true' });
    const leases = await client.list(LEASES, 'kube-node-lease');
    console.log(`# 1000 simulated nodes (+ leases) registered in ${ms.toFixed(0)} ms (${(1000 / (ms / 1000)).toFixed(0)} nodes/s), CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (API server and simulator in one process)`);
    assert.equal(nodes.items.length, 1000);
    assert.equal(leases.items.length, 1000);
  } finally {
    ac.abort();
    await running;
    client.close();
    await api.close();
  }
});

test('simulate-nodes arguments', () => {
  const a = parseSimulateNodesArgs(['--kubeconfig', '/k', '--count', '5', '--prefix', 'x-', '--cpu=4', '--memory', '8Gi', '--pods', '20', '--label', 'a=b', '--heartbeat-interval', '2s'], {});
  assert.equal(a.kubeconfig, '/k');
  assert.deepEqual(a.options, { count: 5, namePrefix: 'x-', capacity: { cpu: '4', memory: '8Gi', pods: '20' }, labels: { a: 'b' }, heartbeatIntervalMs: 2000 });
  assert.throws(() => parseSimulateNodesArgs(['--kubeconfig', '/k'], {}), /--count/);
  assert.throws(() => parseSimulateNodesArgs(['--count', '1'], {}), /--kubeconfig/);
  assert.throws(() => parseSimulateNodesArgs(['--count', '1', '--kubeconfig', '/k', '--bogus'], {}), /unknown flag --bogus/);
});
