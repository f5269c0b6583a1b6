// Issue 5 (control plane, points 2 and 3) with real kubectl against `kyb server --simulate-nodes 2`:
// a Deployment exposed with `kubectl expose` gets Endpoints and EndpointSlices that read as upstream
// (`kubectl get endpoints,endpointslices`, `kubectl describe svc`), with a named targetPort resolved
// per pod; scaling down removes endpoints; a pod made unready moves to notReadyAddresses /
// ready=false; a deleting pod held by a finalizer shows terminating=true and serving per its
// readiness; a LoadBalancer Service gets the Ready nodes' addresses as EXTERNAL-IP.
//
// Simulated nodes report every pod bound to them Ready (and would put Ready back if a test flipped
// it), so the readiness cases use a pod bound to a Node this test registers and keeps alive itself
// (its Lease renewed every second) and whose status the test writes through the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RestClient, type ResourceRef } from '../../src/client/index.js';
import { isStatusError } from '../../src/machinery/status.js';
import { startCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
before(async () => { c = await startCluster(['--simulate-nodes', '2', '--profile', 'fast']); });
after(async () => { await c?.stop(); });

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const json = async (args: string[]): Promise<any> => JSON.parse((await c.kubectl([...args, '-o', 'json'])).stdout);
const ipSort = (ips: string[]): string[] => [...ips].sort();

async function webPods(): Promise<any[]> {
  return (await json(['get', 'pods', '-l', 'app=web'])).items.filter((p: any) => !p.metadata.deletionTimestamp && p.status?.podIP);
}
async function sliceEndpoints(svc: string): Promise<any[]> {
  return (await json(['get', 'endpointslices', '-l', `kubernetes.io/service-name=${svc}`])).items.flatMap((s: any) => s.endpoints ?? []);
}
async function readyAddresses(svc: string): Promise<string[]> {
  const ep = await json(['get', 'endpoints', svc]);
  return (ep.subsets ?? []).flatMap((s: any) => (s.addresses ?? []).map((a: any) => a.ip));
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 8080}
`;

test('kubectl expose: Endpoints and EndpointSlices read as upstream; scaling down removes endpoints; a deleting pod is terminating', async () => {
  await c.kubectl(['apply', '-f', c.writeFile('web.yaml', deployment)]);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
  await c.kubectl(['expose', 'deployment', 'web', '--port=80', '--target-port=http']);

  const pods = await waitFor('3 pods with IPs', async () => { const p = await webPods(); return p.length === 3 && p; });
  const ips = ipSort(pods.map((p) => p.status.podIP));
  await waitFor('3 ready addresses', async () => (await readyAddresses('web')).length === 3);

  // kubectl get endpoints: ENDPOINTS like 10.42.0.5:8080,10.42.1.3:8080,...
  const epOut = (await c.kubectl(['get', 'endpoints', 'web'])).stdout;
  assert.match(epOut, /^NAME\s+ENDPOINTS\s+AGE$/m);
  assert.match(epOut, new RegExp(`^web\\s+${ips.map((ip) => `${ip.replace(/\./g, '\\.')}:8080`).join(',')}\\s+\\S+$`, 'm'));
  const ep = await json(['get', 'endpoints', 'web']);
  assert.equal(ep.subsets.length, 1);
  assert.deepEqual(ep.subsets[0].ports, [{ port: 8080, protocol: 'TCP' }], 'the named targetPort resolved on the pods');
  for (const a of ep.subsets[0].addresses) {
    const p = pods.find((x) => x.status.podIP === a.ip);
    assert.deepEqual(a.targetRef, { kind: 'Pod', namespace: 'default', name: p.metadata.name, uid: p.metadata.uid });
    assert.equal(a.nodeName, p.spec.nodeName);
  }
  assert.ok(ep.metadata.annotations['endpoints.kubernetes.io/last-change-trigger-time']);
  const svc = await json(['get', 'service', 'web']);
  assert.deepEqual(ep.metadata.labels ?? {}, svc.metadata.labels ?? {}, 'the Service\'s labels');

  // kubectl get endpointslices
  const slices = await json(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=web']);
  assert.equal(slices.items.length, 1);
  const slice = slices.items[0];
  assert.match(slice.metadata.name, /^web-[a-z0-9]{5}$/);
  assert.equal(slice.metadata.labels['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
  assert.deepEqual(slice.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.equal(slice.addressType, 'IPv4');
  assert.deepEqual(slice.ports, [{ name: '', port: 8080, protocol: 'TCP' }]);
  for (const e of slice.endpoints) assert.deepEqual(e.conditions, { ready: true, serving: true, terminating: false });
  const sliceOut = (await c.kubectl(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=web'])).stdout;
  assert.match(sliceOut, /^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE$/m);
  const row = sliceOut.split('\n').find((l) => l.startsWith(slice.metadata.name))!;
  assert.match(row, /^web-\S+\s+IPv4\s+8080\s+\S+\s+\S+$/);
  assert.deepEqual(ipSort(row.split(/\s+/)[3]!.split(',')), ips);

  // kubectl describe svc
  const desc = (await c.kubectl(['describe', 'svc', 'web'])).stdout;
  assert.match(desc, /^TargetPort:\s+http\/TCP$/m);
  assert.match(desc, new RegExp(`^Endpoints:\\s+(\\S+)$`, 'm'));
  const listed = /^Endpoints:\s+(\S+)$/m.exec(desc)![1]!.split(',');
  assert.deepEqual(ipSort(listed), ips.map((ip) => `${ip}:8080`));

  // scaling down removes endpoints (and the right ones)
  await c.kubectl(['scale', 'deployment/web', '--replicas=2']);
  const kept = await waitFor('2 pods', async () => { const p = await webPods(); return p.length === 2 && (await json(['get', 'pods', '-l', 'app=web'])).items.length === 2 && p; });
  const keptIPs = ipSort(kept.map((p) => p.status.podIP));
  await waitFor('Endpoints of the 2 pods', async () => JSON.stringify(ipSort(await readyAddresses('web'))) === JSON.stringify(keptIPs));
  await waitFor('EndpointSlice of the 2 pods', async () => JSON.stringify(ipSort((await sliceEndpoints('web')).map((e) => e.addresses[0]))) === JSON.stringify(keptIPs));

  // a deleting pod held by a finalizer: gone from Endpoints, terminating in the slice, still serving (it is Ready)
  const victim = kept[0];
  await c.kubectl(['patch', 'pod', victim.metadata.name, '--type=merge', '-p', '{"metadata":{"finalizers":["kybernetes.io/test-hold"]}}']);
  await c.kubectl(['delete', 'pod', victim.metadata.name, '--wait=false']);
  const term = await waitFor('terminating endpoint', async () => (await sliceEndpoints('web')).find((e) => e.targetRef.name === victim.metadata.name && e.conditions.terminating));
  assert.deepEqual(term.conditions, { ready: false, serving: true, terminating: true });
  await waitFor('victim gone from Endpoints', async () => !(await readyAddresses('web')).includes(victim.status.podIP));
  const epNow = await json(['get', 'endpoints', 'web']);
  assert.ok(!(epNow.subsets ?? []).some((s: any) => (s.notReadyAddresses ?? []).some((a: any) => a.ip === victim.status.podIP)), 'terminating pods are nowhere in Endpoints');
  // its replacement comes in; releasing the finalizer lets the pod go, and its endpoint with it
  await c.kubectl(['patch', 'pod', victim.metadata.name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await waitFor('victim gone from the slice', async () => !(await sliceEndpoints('web')).some((e) => e.targetRef.name === victim.metadata.name));
  await waitFor('2 ready endpoints again', async () => (await sliceEndpoints('web')).filter((e) => e.conditions.ready).length === 2);
});

test('type LoadBalancer gets the Ready nodes\' InternalIPs as EXTERNAL-IP', async () => {
  await c.kubectl(['expose', 'deployment', 'web', '--name=web-lb', '--type=LoadBalancer', '--port=8081', '--target-port=http']);
  const nodes = (await json(['get', 'nodes'])).items
    .filter((n: any) => n.status.conditions.some((x: any) => x.type === 'Ready' && x.status === 'True'));
  const want = ipSort(nodes.map((n: any) => n.status.addresses.find((a: any) => a.type === 'InternalIP').address));
  assert.equal(want.length, 2);
  const out = await waitFor('an EXTERNAL-IP', async () => {
    const o = (await c.kubectl(['get', 'svc', 'web-lb'])).stdout;
    return /^web-lb\s+LoadBalancer\s+\S+\s+\d/m.test(o) && o;
  });
  assert.match(out, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/m);
  assert.equal(/^web-lb\s+LoadBalancer\s+\S+\s+(\S+)/m.exec(out)![1], want.join(','));
  const svc = await json(['get', 'svc', 'web-lb']);
  assert.deepEqual(svc.status.loadBalancer.ingress, want.map((ip) => ({ ip, ipMode: 'VIP' })));
  const desc = (await c.kubectl(['describe', 'svc', 'web-lb'])).stdout;
  assert.match(desc, new RegExp(`^LoadBalancer Ingress:\\s+${want[0]!.replace(/\./g, '\\.')}`, 'm'));
  const events = (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=web-lb,reason=UpdatedLoadBalancer'])).stdout;
  assert.match(events, /Updated LoadBalancer with new IPs: \[\] -> \[/);
});

test('a pod made unready moves to notReadyAddresses / ready=false; deleting it, it is terminating and not serving', async (t) => {
  const client = RestClient.fromKubeconfig(c.kubeconfig);
  t.after(() => client.close());
  const node = `manual-${Math.random().toString(36).slice(2, 7)}`;
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  // a Node kept alive by this test (the node lifecycle controller would otherwise mark it Unknown)
  await c.kubectl(['create', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'Node', metadata: { name: node },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.10' }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now(), lastTransitionTime: now() }] },
  }) });
  const leases: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };
  const renew = async (): Promise<void> => {
    const spec = { holderIdentity: node, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace('Z', '000Z') };
    try { await client.patch(leases, 'kube-node-lease', node, { spec }, 'merge'); } catch (e) {
      if (!isStatusError(e, 'NotFound')) throw e;
      await client.create(leases, 'kube-node-lease', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: node, namespace: 'kube-node-lease' }, spec });
    }
  };
  await renew();
  const timer = setInterval(() => { renew().catch(() => {}); }, 1000);
  t.after(() => clearInterval(timer));

  await c.kubectl(['create', 'service', 'clusterip', 'manual', '--tcp=80:http']);
  await c.kubectl(['create', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'manual-0', labels: { app: 'manual' } },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'nginx:1.27', ports: [{ name: 'http', containerPort: 9090 }] }] },
  }) });
  const setStatus = (ready: boolean) => c.kubectl(['patch', 'pod', 'manual-0', '--subresource=status', '--type=merge', '-p', JSON.stringify({
    status: {
      phase: 'Running', podIP: '10.42.200.5', podIPs: [{ ip: '10.42.200.5' }],
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now() }],
    },
  })]);
  await setStatus(true);
  await waitFor('manual-0 ready in Endpoints', async () => (await readyAddresses('manual')).includes('10.42.200.5'));
  assert.match((await c.kubectl(['get', 'endpoints', 'manual'])).stdout, /^manual\s+10\.42\.200\.5:9090\s+/m);

  // unready: notReadyAddresses, ready=false serving=false
  await setStatus(false);
  const ep = await waitFor('manual-0 not ready', async () => {
    const e = await json(['get', 'endpoints', 'manual']);
    return e.subsets?.[0]?.notReadyAddresses?.[0]?.ip === '10.42.200.5' && e;
  });
  assert.equal(ep.subsets[0].addresses, undefined);
  assert.deepEqual(ep.subsets[0].ports, [{ name: '80-http', port: 9090, protocol: 'TCP' }], 'the named targetPort resolved on this pod');
  // kubectl lists ready addresses only: an empty ENDPOINTS cell (upstream prints <none> only without subsets)
  assert.match((await c.kubectl(['get', 'endpoints', 'manual'])).stdout, /^manual\s+\d+[smh]$/m);
  const [e1] = await waitFor('slice endpoint not ready', async () => { const e = await sliceEndpoints('manual'); return e[0]?.conditions.ready === false && e; });
  assert.deepEqual(e1.conditions, { ready: false, serving: false, terminating: false });
  assert.equal(e1.nodeName, node);

  // deleting (held by a finalizer; no kubelet finishes it): terminating, not serving, and out of Endpoints
  await c.kubectl(['patch', 'pod', 'manual-0', '--type=merge', '-p', '{"metadata":{"finalizers":["kybernetes.io/test-hold"]}}']);
  await c.kubectl(['delete', 'pod', 'manual-0', '--wait=false']);
  const [e2] = await waitFor('slice endpoint terminating', async () => { const e = await sliceEndpoints('manual'); return e[0]?.conditions.terminating && e; });
  assert.deepEqual(e2.conditions, { ready: false, serving: false, terminating: true });
  await waitFor('Endpoints empty', async () => ((await json(['get', 'endpoints', 'manual'])).subsets ?? []).length === 0);
  await c.kubectl(['patch', 'pod', 'manual-0', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await c.kubectl(['delete', 'pod', 'manual-0', '--grace-period=0', '--force', '--ignore-not-found']);
  await c.kubectl(['delete', 'node', node]);
});

test('deleting a Service deletes its Endpoints; its EndpointSlices go with it', async () => {
  await c.kubectl(['delete', 'svc', 'web']);
  await waitFor('Endpoints gone', async () => (await c.kubectl(['get', 'endpoints', 'web', '--ignore-not-found'])).stdout.trim() === '');
  await waitFor('EndpointSlices gone', async () => (await json(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=web'])).items.length === 0);
});

test('--disable servicelb leaves LoadBalancer Services <pending> (the other controllers still run)', async (t) => {
  const d = await startCluster(['--disable', 'servicelb', '--simulate-nodes', '1', '--profile', 'fast']);
  t.after(() => d.stop());
  await d.kubectl(['create', 'deployment', 'lb', '--image=nginx:1.27', '--port=80']);
  await d.kubectl(['rollout', 'status', 'deployment/lb', '--timeout=60s']);
  await d.kubectl(['expose', 'deployment', 'lb', '--type=LoadBalancer', '--port=80']);
  // the Endpoints and EndpointSlice controllers act on the Service…
  await waitFor('Endpoints of lb', async () => /^lb\s+\d+\.\d+\.\d+\.\d+:80\s/m.test((await d.kubectl(['get', 'endpoints', 'lb'])).stdout));
  await waitFor('EndpointSlice of lb', async () => JSON.parse((await d.kubectl(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=lb', '-o', 'json'])).stdout).items[0]?.endpoints?.length === 1);
  // …while nothing gave it an ingress address
  assert.match((await d.kubectl(['get', 'svc', 'lb'])).stdout, /^lb\s+LoadBalancer\s+\S+\s+<pending>\s/m);
  assert.equal((await d.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=lb,reason=UpdatedLoadBalancer', '-o', 'name'])).stdout.trim(), '');
});
