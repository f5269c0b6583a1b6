import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultColumns, defaultRow, formatLabelSelector, printers } from './printers.js';
import type { KObject } from './types.js';

const now = new Date('2025-06-01T12:00:00Z');
/** An RFC 3339 timestamp `sec` seconds before now. */
const ago = (sec: number) => new Date(now.getTime() - sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function cells(kind: string, obj: KObject): unknown[] {
  const p = printers[kind];
  assert.ok(p, `printer for ${kind}`);
  const row = p.row(obj, now);
  assert.equal(row.length, p.columns.length, `${kind}: one cell per column`);
  return row;
}
const names = (kind: string) => printers[kind]!.columns.map((c) => (c.priority ? `${c.name}¹` : c.name));

// ---------------------------------------------------------------------------------------------
// Pod

const podMeta = (name: string, extra: Record<string, unknown> = {}) =>
  ({ name, namespace: 'default', creationTimestamp: ago(300), ...extra });

test('pod columns are kubectl get pods -o wide', () => {
  assert.deepEqual(names('Pod'), ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP¹', 'Node¹', 'Nominated Node¹', 'Readiness Gates¹']);
  assert.equal(printers.Pod!.columns[0]!.format, 'name');
});

test('running pod', () => {
  const pod = {
    kind: 'Pod', metadata: podMeta('web'),
    spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'nginx' }] },
    status: {
      phase: 'Running', podIP: '10.244.0.5', podIPs: [{ ip: '10.244.0.5' }],
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, state: { running: { startedAt: ago(290) } } }],
    },
  };
  assert.deepEqual(cells('Pod', pod), ['web', '1/1', 'Running', '0', '5m', '10.244.0.5', 'node-1', '<none>', '<none>']);
});

test('pending pod that is creating its containers, and one not yet scheduled', () => {
  const creating = {
    metadata: podMeta('web'),
    spec: { nodeName: 'node-1', containers: [{ name: 'a' }, { name: 'b' }] },
    status: {
      phase: 'Pending',
      containerStatuses: [
        { name: 'a', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
        { name: 'b', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
      ],
    },
  };
  assert.deepEqual(cells('Pod', creating).slice(0, 5), ['web', '0/2', 'ContainerCreating', '0', '5m']);

  const unscheduled = { metadata: podMeta('web', { creationTimestamp: ago(3) }), spec: { containers: [{ name: 'a' }] }, status: { phase: 'Pending' } };
  assert.deepEqual(cells('Pod', unscheduled), ['web', '0/1', 'Pending', '0', '3s', '<none>', '<none>', '<none>', '<none>']);

  const gated = {
    metadata: podMeta('web'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated' }] },
  };
  assert.equal(cells('Pod', gated)[2], 'SchedulingGated');
});

test('crash-looping pod shows restarts with the time of the last one', () => {
  const pod = {
    metadata: podMeta('crash', { creationTimestamp: ago(3600) }),
    spec: { nodeName: 'node-1', containers: [{ name: 'app' }] },
    status: {
      phase: 'Running',
      containerStatuses: [{
        name: 'app', ready: false, restartCount: 4,
        state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 1m20s' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(150) } },
      }],
    },
  };
  assert.deepEqual(cells('Pod', pod).slice(0, 5), ['crash', '0/1', 'CrashLoopBackOff', '4 (2m30s ago)', '60m']);
});

test('image pull failure and OOM kill reasons', () => {
  const pull = {
    metadata: podMeta('p'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Pending', containerStatuses: [{ name: 'a', restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff' } } }] },
  };
  assert.equal(cells('Pod', pull)[2], 'ImagePullBackOff');
  const oom = {
    metadata: podMeta('p'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Running', containerStatuses: [{ name: 'a', restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] },
  };
  assert.equal(cells('Pod', oom)[2], 'OOMKilled');
  const noReason = {
    metadata: podMeta('p'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Failed', containerStatuses: [{ name: 'a', restartCount: 0, state: { terminated: { exitCode: 3 } } }] },
  };
  assert.equal(cells('Pod', noReason)[2], 'ExitCode:3');
});

test('completed and failed pods', () => {
  const done = {
    metadata: podMeta('job-x'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Succeeded', containerStatuses: [{ name: 'a', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] },
  };
  assert.deepEqual(cells('Pod', done).slice(0, 4), ['job-x', '0/1', 'Completed', '0']);
  const failed = {
    metadata: podMeta('job-y'), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Failed', containerStatuses: [{ name: 'a', ready: false, restartCount: 0, state: { terminated: { exitCode: 1, reason: 'Error' } } }] },
  };
  assert.equal(cells('Pod', failed)[2], 'Error');
  // a sidecar-like second container still running turns Completed back into Running
  const mixed = {
    metadata: podMeta('m'), spec: { containers: [{ name: 'a' }, { name: 'b' }] },
    status: {
      phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [
        { name: 'a', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
        { name: 'b', ready: true, restartCount: 0, state: { running: {} } },
      ],
    },
  };
  assert.deepEqual(cells('Pod', mixed).slice(1, 3), ['1/2', 'Running']);
});

test('terminating pod, and a pod on a lost node', () => {
  const running = {
    phase: 'Running',
    containerStatuses: [{ name: 'a', ready: true, restartCount: 0, state: { running: {} } }],
  };
  const terminating = {
    metadata: podMeta('t', { deletionTimestamp: ago(1) }), spec: { containers: [{ name: 'a' }] }, status: running,
  };
  assert.deepEqual(cells('Pod', terminating).slice(1, 3), ['1/1', 'Terminating']);
  const finished = {
    metadata: podMeta('t', { deletionTimestamp: ago(1) }), spec: { containers: [{ name: 'a' }] },
    status: { phase: 'Succeeded', containerStatuses: [{ name: 'a', restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] },
  };
  assert.equal(cells('Pod', finished)[2], 'Completed');
  const lost = { metadata: podMeta('l'), spec: { containers: [{ name: 'a' }] }, status: { phase: 'Running', reason: 'NodeLost' } };
  assert.equal(cells('Pod', lost)[2], 'NodeLost');
  const lostDeleting = { ...lost, metadata: podMeta('l', { deletionTimestamp: ago(1) }) };
  assert.equal(cells('Pod', lostDeleting)[2], 'Unknown');
});

test('init containers', () => {
  const spec = { initContainers: [{ name: 'i1' }, { name: 'i2' }], containers: [{ name: 'app' }] };
  const first = {
    metadata: podMeta('p'), spec,
    status: {
      phase: 'Pending',
      initContainerStatuses: [
        { name: 'i1', restartCount: 0, state: { running: {} } },
        { name: 'i2', restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } },
      ],
      containerStatuses: [{ name: 'app', restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }],
    },
  };
  assert.deepEqual(cells('Pod', first).slice(1, 4), ['0/1', 'Init:0/2', '0']);

  const second = {
    metadata: podMeta('p'), spec,
    status: {
      phase: 'Pending',
      initContainerStatuses: [
        { name: 'i1', restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
        { name: 'i2', restartCount: 0, state: { running: {} } },
      ],
    },
  };
  assert.equal(cells('Pod', second)[2], 'Init:1/2');

  const crashing = {
    metadata: podMeta('p'), spec,
    status: {
      phase: 'Pending',
      initContainerStatuses: [{
        name: 'i1', restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, finishedAt: ago(60) } },
      }],
    },
  };
  assert.deepEqual(cells('Pod', crashing).slice(1, 4), ['0/1', 'Init:CrashLoopBackOff', '3 (60s ago)']);

  const failed = {
    metadata: podMeta('p'), spec,
    status: { phase: 'Pending', initContainerStatuses: [{ name: 'i1', restartCount: 0, state: { terminated: { exitCode: 2 } } }] },
  };
  assert.equal(cells('Pod', failed)[2], 'Init:ExitCode:2');
  const errored = {
    metadata: podMeta('p'), spec,
    status: { phase: 'Pending', initContainerStatuses: [{ name: 'i1', restartCount: 0, state: { terminated: { exitCode: 1, reason: 'Error' } } }] },
  };
  assert.equal(cells('Pod', errored)[2], 'Init:Error');
});

test('sidecar (restartable init) containers count toward ready and total', () => {
  const pod = {
    metadata: podMeta('p'),
    spec: { initContainers: [{ name: 'proxy', restartPolicy: 'Always' }], containers: [{ name: 'app' }] },
    status: {
      phase: 'Running', conditions: [{ type: 'Initialized', status: 'True' }, { type: 'Ready', status: 'True' }],
      initContainerStatuses: [{ name: 'proxy', ready: true, started: true, restartCount: 1, state: { running: {} }, lastState: { terminated: { exitCode: 1, finishedAt: ago(600) } } }],
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, state: { running: {} } }],
    },
  };
  assert.deepEqual(cells('Pod', pod).slice(1, 4), ['2/2', 'Running', '1 (10m ago)']);
});

test('readiness gates cell counts true gate conditions', () => {
  const pod = {
    metadata: podMeta('p'),
    spec: { containers: [{ name: 'a' }], readinessGates: [{ conditionType: 'example.com/lb' }, { conditionType: 'example.com/dns' }] },
    status: { phase: 'Running', nominatedNodeName: 'node-2', conditions: [{ type: 'example.com/lb', status: 'True' }, { type: 'example.com/dns', status: 'False' }] },
  };
  assert.deepEqual(cells('Pod', pod).slice(7), ['node-2', '1/2']);
});

// ---------------------------------------------------------------------------------------------
// Node

test('node status, roles and wide cells', () => {
  assert.deepEqual(names('Node'), ['Name', 'Status', 'Roles', 'Age', 'Version', 'Internal-IP¹', 'External-IP¹', 'OS-Image¹', 'Kernel-Version¹', 'Container-Runtime¹']);
  const node = {
    metadata: {
      name: 'node-1', creationTimestamp: ago(3 * 86400),
      labels: { 'node-role.kubernetes.io/control-plane': '', 'node-role.kubernetes.io/master': '', 'kubernetes.io/hostname': 'node-1' },
    },
    status: {
      conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: 'True' }],
      addresses: [{ type: 'Hostname', address: 'node-1' }, { type: 'InternalIP', address: '192.168.1.10' }],
      nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.1.0-18-amd64', containerRuntimeVersion: 'runc://1.1.12' },
    },
  };
  assert.deepEqual(cells('Node', node), [
    'node-1', 'Ready', 'control-plane,master', '3d', 'v1.32.0',
    '192.168.1.10', '<none>', 'Debian GNU/Linux 12 (bookworm)', '6.1.0-18-amd64', 'runc://1.1.12',
  ]);

  const notReady = { metadata: { name: 'n2', labels: { 'kubernetes.io/role': 'worker' } }, status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } };
  assert.deepEqual(cells('Node', notReady).slice(0, 5), ['n2', 'NotReady', 'worker', '<unknown>', '']);
  assert.deepEqual(cells('Node', notReady).slice(7), ['<unknown>', '<unknown>', '<unknown>']);

  const cordoned = { metadata: { name: 'n3' }, spec: { unschedulable: true }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
  assert.deepEqual(cells('Node', cordoned).slice(1, 3), ['Ready,SchedulingDisabled', '<none>']);

  const fresh = { metadata: { name: 'n4' }, spec: { unschedulable: true } };
  assert.equal(cells('Node', fresh)[1], 'Unknown,SchedulingDisabled');
});

// ---------------------------------------------------------------------------------------------
// Service, Endpoints

test('service types', () => {
  assert.deepEqual(names('Service'), ['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age', 'Selector¹']);
  const meta = { name: 'web', namespace: 'default', creationTimestamp: ago(7200) };
  const clusterIP = {
    metadata: meta,
    spec: { type: 'ClusterIP', clusterIP: '10.43.0.10', clusterIPs: ['10.43.0.10'], selector: { app: 'web', tier: 'fe' }, ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }, { port: 53, protocol: 'UDP' }] },
  };
  assert.deepEqual(cells('Service', clusterIP), ['web', 'ClusterIP', '10.43.0.10', '<none>', '80/TCP,53/UDP', '120m', 'app=web,tier=fe']);

  const nodePort = { metadata: meta, spec: { type: 'NodePort', clusterIPs: ['10.43.0.11'], ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }], externalIPs: ['1.2.3.4'] } };
  assert.deepEqual(cells('Service', nodePort), ['web', 'NodePort', '10.43.0.11', '1.2.3.4', '80:30080/TCP', '120m', '<none>']);

  const lbPending = { metadata: meta, spec: { type: 'LoadBalancer', clusterIPs: ['10.43.0.12'], ports: [{ port: 443, nodePort: 31443, protocol: 'TCP' }] } };
  assert.deepEqual(cells('Service', lbPending).slice(1, 5), ['LoadBalancer', '10.43.0.12', '<pending>', '443:31443/TCP']);
  const lbReady = { ...lbPending, status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }, { hostname: 'lb.example.com' }] } } };
  assert.equal(cells('Service', lbReady)[3], '203.0.113.9,lb.example.com');

  const external = { metadata: meta, spec: { type: 'ExternalName', externalName: 'db.example.com' } };
  assert.deepEqual(cells('Service', external).slice(1, 5), ['ExternalName', '<none>', 'db.example.com', '<none>']);

  const headless = { metadata: meta, spec: { clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 5432, protocol: 'TCP' }] } };
  assert.deepEqual(cells('Service', headless).slice(1, 5), ['ClusterIP', 'None', '<none>', '5432/TCP']);
});

test('endpoints and endpoint slices list three addresses then a count', () => {
  const ep = {
    metadata: { name: 'web', creationTimestamp: ago(10) },
    subsets: [{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3' }, { ip: '10.0.0.4' }], ports: [{ port: 80 }, { port: 443 }] }],
  };
  assert.deepEqual(cells('Endpoints', ep), ['web', '10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 5 more...', '10s']);
  assert.equal(cells('Endpoints', { metadata: { name: 'x' } })[1], '<none>');
  assert.equal(cells('Endpoints', { metadata: { name: 'x' }, subsets: [{ addresses: [{ ip: 'fd00::1' }], ports: [{ port: 80 }] }] })[1], '[fd00::1]:80');

  const slice = {
    metadata: { name: 'web-abc', creationTimestamp: ago(10) }, addressType: 'IPv4',
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'https' }],
    endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }],
  };
  assert.deepEqual(cells('EndpointSlice', slice), ['web-abc', 'IPv4', '80,https', '10.0.0.1,10.0.0.2', '10s']);
  assert.deepEqual(cells('EndpointSlice', { metadata: { name: 'e' }, addressType: 'IPv4' }).slice(2, 4), ['<unset>', '<unset>']);
});

// ---------------------------------------------------------------------------------------------
// apps, batch, autoscaling

test('deployment, replica set, stateful set and daemon set', () => {
  assert.deepEqual(names('Deployment'), ['Name', 'Ready', 'Up-to-date', 'Available', 'Age', 'Containers¹', 'Images¹', 'Selector¹']);
  const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27' }, { name: 'log', image: 'busybox' }] } };
  const dep = {
    metadata: { name: 'web', creationTimestamp: ago(45) },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['fe', 'be'] }] }, template },
    status: { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
  };
  assert.deepEqual(cells('Deployment', dep), ['web', '2/3', 3, 2, '45s', 'nginx,log', 'nginx:1.27,busybox', 'app=web,tier in (be,fe)']);
  assert.deepEqual(cells('Deployment', { metadata: { name: 'new' }, spec: { replicas: 1, selector: { matchLabels: { a: 'b' } } } }).slice(1, 4), ['0/1', 0, 0]);

  const rs = { metadata: { name: 'web-5d4f', creationTimestamp: ago(45) }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template }, status: { replicas: 3, readyReplicas: 1 } };
  assert.deepEqual(cells('ReplicaSet', rs), ['web-5d4f', 3, 3, 1, '45s', 'nginx,log', 'nginx:1.27,busybox', 'app=web']);

  const sts = { metadata: { name: 'db', creationTimestamp: ago(45) }, spec: { replicas: 2, template }, status: { readyReplicas: 2 } };
  assert.deepEqual(cells('StatefulSet', sts), ['db', '2/2', '45s', 'nginx,log', 'nginx:1.27,busybox']);

  const ds = {
    metadata: { name: 'agent', creationTimestamp: ago(45) },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: { spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, containers: [{ name: 'a', image: 'agent:1' }] } } },
    status: { desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 1, updatedNumberScheduled: 2, numberAvailable: 1 },
  };
  assert.deepEqual(cells('DaemonSet', ds), ['agent', 2, 2, 1, 2, 1, 'kubernetes.io/os=linux', '45s', 'a', 'agent:1', 'app=agent']);
});

test('job status, completions and duration; cron job', () => {
  const job = {
    metadata: { name: 'pi', creationTimestamp: ago(600) },
    spec: { completions: 1, parallelism: 1, selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u1' } }, template: { spec: { containers: [{ name: 'pi', image: 'perl' }] } } },
    status: { succeeded: 1, startTime: ago(600), completionTime: ago(540), conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True' }] },
  };
  assert.deepEqual(cells('Job', job), ['pi', 'Complete', '1/1', '60s', '10m', 'pi', 'perl', 'batch.kubernetes.io/controller-uid=u1']);
  const running = { metadata: { name: 'w', creationTimestamp: ago(200) }, spec: { parallelism: 3 }, status: { startTime: ago(200), active: 3 } };
  assert.deepEqual(cells('Job', running).slice(1, 4), ['Running', '0/1 of 3', '3m20s']);
  const suspended = { metadata: { name: 's' }, spec: { completions: 5, suspend: true }, status: { conditions: [{ type: 'Suspended', status: 'True' }] } };
  assert.deepEqual(cells('Job', suspended).slice(1, 4), ['Suspended', '0/5', '']);

  const cj = {
    metadata: { name: 'hello', creationTimestamp: ago(3600) },
    spec: { schedule: '*/5 * * * *', suspend: false, jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }] } } } } },
    status: { active: [{ name: 'hello-1' }], lastScheduleTime: ago(120) },
  };
  assert.deepEqual(cells('CronJob', cj), ['hello', '*/5 * * * *', '<none>', 'False', 1, '2m', '60m', 'c', 'busybox', '<none>']);
});

test('horizontal pod autoscaler targets', () => {
  const base = { metadata: { name: 'web', creationTimestamp: ago(60) } };
  const v2 = {
    ...base,
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 1, maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    },
    status: { currentReplicas: 2, currentMetrics: [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 30, averageValue: '120m' } } }] },
  };
  assert.deepEqual(cells('HorizontalPodAutoscaler', v2), ['web', 'Deployment/web', 'cpu: 30%/50%', '1', 10, 2, '60s']);

  const unknown = { ...v2, status: { currentReplicas: 0 } };
  assert.equal(cells('HorizontalPodAutoscaler', unknown)[2], 'cpu: <unknown>/50%');

  const many = {
    ...base,
    spec: {
      scaleTargetRef: { kind: 'StatefulSet', name: 'db' }, maxReplicas: 4,
      metrics: [
        { type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '500Mi' } } },
        { type: 'Pods', pods: { metric: { name: 'qps' }, target: { type: 'AverageValue', averageValue: '10' } } },
        { type: 'External', external: { metric: { name: 'queue' }, target: { type: 'Value', value: '30' } } },
      ],
    },
    status: { currentMetrics: [{ type: 'Resource', resource: { name: 'memory', current: { averageValue: '200Mi' } } }] },
  };
  assert.deepEqual(cells('HorizontalPodAutoscaler', many).slice(1, 6), ['StatefulSet/db', 'memory: 200Mi/500Mi, <unknown>/10 + 1 more...', '<unset>', 4, 0]);

  const none = { ...base, spec: { scaleTargetRef: { kind: 'Deployment', name: 'x' }, maxReplicas: 3 } };
  assert.equal(cells('HorizontalPodAutoscaler', none)[2], '<none>');

  const v1 = { ...base, apiVersion: 'autoscaling/v1', spec: { scaleTargetRef: { kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 80 }, status: { currentReplicas: 2, currentCPUUtilizationPercentage: 12 } };
  assert.deepEqual(cells('HorizontalPodAutoscaler', v1).slice(2, 6), ['cpu: 12%/80%', '2', 5, 2]);
});

// ---------------------------------------------------------------------------------------------
// Events

test('core/v1 event columns and cells', () => {
  assert.deepEqual(names('Event'), ['Last Seen', 'Type', 'Reason', 'Object', 'Subobject¹', 'Source¹', 'Message', 'First Seen¹', 'Count¹', 'Name¹']);
  assert.equal(printers.Event!.columns[9]!.format, 'name');
  const ev = {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name: 'web.17f1', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'web', fieldPath: 'spec.containers{app}' },
    reason: 'Pulled', type: 'Normal', message: 'Container image "nginx" already present on machine\n',
    source: { component: 'kubelet', host: 'node-1' },
    firstTimestamp: ago(600), lastTimestamp: ago(30), count: 3,
  };
  assert.deepEqual(cells('Event', ev), [
    '30s', 'Normal', 'Pulled', 'pod/web', 'spec.containers{app}', 'kubelet, node-1',
    'Container image "nginx" already present on machine', '10m', 3, 'web.17f1',
  ]);

  const newStyle = {
    metadata: { name: 'e2' }, involvedObject: { kind: 'Node' }, reason: 'Scheduled', type: 'Normal', message: 'm',
    eventTime: '2025-06-01T11:57:00.123456Z', reportingComponent: 'default-scheduler', reportingInstance: 'sched-1',
  };
  assert.deepEqual(cells('Event', newStyle), ['2m59s', 'Normal', 'Scheduled', 'node', '', 'default-scheduler, sched-1', 'm', '2m59s', 1, 'e2']);

  const series = { ...newStyle, series: { count: 7, lastObservedTime: '2025-06-01T11:59:50.000000Z' } };
  assert.deepEqual(cells('Event', series).slice(0, 1).concat(cells('Event', series).slice(7, 9)), ['10s', '2m59s', 7]);
});

test('events.k8s.io/v1 event uses its own field names', () => {
  const ev = {
    apiVersion: 'events.k8s.io/v1', kind: 'Event',
    metadata: { name: 'web.1' },
    regarding: { kind: 'Deployment', name: 'web' }, reason: 'ScalingReplicaSet', type: 'Normal',
    note: 'Scaled up replica set web-5d4f to 3', reportingController: 'deployment-controller',
    eventTime: null, deprecatedFirstTimestamp: ago(90), deprecatedLastTimestamp: ago(90), deprecatedCount: 1,
    deprecatedSource: { component: 'deployment-controller' },
  };
  assert.deepEqual(cells('Event', ev), ['90s', 'Normal', 'ScalingReplicaSet', 'deployment/web', '', 'deployment-controller', 'Scaled up replica set web-5d4f to 3', '90s', 1, 'web.1']);
});

// ---------------------------------------------------------------------------------------------
// The rest

test('simple kinds', () => {
  const m = (name: string) => ({ name, creationTimestamp: ago(5) });
  assert.deepEqual(cells('Namespace', { metadata: m('default'), status: { phase: 'Active' } }), ['default', 'Active', '5s']);
  assert.deepEqual(cells('ConfigMap', { metadata: m('cm'), data: { a: '1', b: '2' }, binaryData: { c: 'AA==' } }), ['cm', 3, '5s']);
  assert.deepEqual(cells('Secret', { metadata: m('s'), type: 'Opaque', data: { a: 'MQ==' } }), ['s', 'Opaque', 1, '5s']);
  assert.deepEqual(cells('ServiceAccount', { metadata: m('default') }), ['default', 0, '5s']);
  assert.deepEqual(cells('Lease', { metadata: m('node-1'), spec: { holderIdentity: 'node-1' } }), ['node-1', 'node-1', '5s']);
  assert.deepEqual(cells('RoleBinding', {
    metadata: m('rb'), roleRef: { kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'User', name: 'alice' }, { kind: 'User', name: 'bob' }, { kind: 'Group', name: 'devs' }, { kind: 'ServiceAccount', namespace: 'ci', name: 'builder' }],
  }), ['rb', 'ClusterRole/view', '5s', 'alice, bob', 'devs', 'ci/builder']);
  assert.deepEqual(cells('PodDisruptionBudget', { metadata: m('pdb'), spec: { minAvailable: '50%' }, status: { disruptionsAllowed: 1 } }), ['pdb', '50%', 'N/A', 1, '5s']);
  assert.deepEqual(cells('PriorityClass', { metadata: m('high'), value: 1000000, preemptionPolicy: 'PreemptLowerPriority' }), ['high', 1000000, false, '5s', 'PreemptLowerPriority']);
  assert.deepEqual(cells('StorageClass', {
    metadata: { ...m('local-path'), annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'rancher.io/local-path', volumeBindingMode: 'WaitForFirstConsumer',
  }), ['local-path (default)', 'rancher.io/local-path', 'Delete', 'WaitForFirstConsumer', false, '5s']);
  assert.deepEqual(cells('Ingress', {
    metadata: m('ing'), spec: { ingressClassName: 'nginx', rules: [{ host: 'a.example.com' }, { host: 'b.example.com' }], tls: [{ hosts: ['a.example.com'] }] },
    status: { loadBalancer: { ingress: [{ ip: '10.0.0.9' }] } },
  }), ['ing', 'nginx', 'a.example.com,b.example.com', '10.0.0.9', '80, 443', '5s']);
  assert.deepEqual(cells('NetworkPolicy', { metadata: m('deny'), spec: { podSelector: {} } }), ['deny', '<none>', '5s']);
  assert.deepEqual(cells('ControllerRevision', {
    metadata: { ...m('web-7b9'), ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'u', controller: true }] }, revision: 2,
  }), ['web-7b9', 'statefulset.apps/web', 2, '5s']);
  assert.deepEqual(cells('ResourceQuota', {
    metadata: m('q'), status: { hard: { 'limits.cpu': '2', 'requests.cpu': '1', pods: '10' }, used: { 'requests.cpu': '500m', pods: '3' } },
  }), ['q', '5s', 'pods: 3/10, requests.cpu: 500m/1', 'limits.cpu: 0/2']);
  assert.deepEqual(cells('PersistentVolumeClaim', {
    metadata: m('data'), spec: { volumeName: 'pv-1', storageClassName: 'local-path', resources: { requests: { storage: '1Gi' } } },
    status: { phase: 'Bound', capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'] },
  }), ['data', 'Bound', 'pv-1', '1Gi', 'RWO', 'local-path', '<unset>', '5s', '<unset>']);
  assert.deepEqual(cells('PersistentVolume', {
    metadata: m('pv-1'), spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany', 'ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', claimRef: { namespace: 'default', name: 'data' }, storageClassName: 'local-path', volumeMode: 'Filesystem' },
    status: { phase: 'Bound' },
  }), ['pv-1', '1Gi', 'RWO,RWX', 'Delete', 'Bound', 'default/data', 'local-path', '<unset>', '', '5s', 'Filesystem']);
});

test('label selector formatting', () => {
  assert.equal(formatLabelSelector(undefined), '<none>');
  assert.equal(formatLabelSelector({}), '<none>');
  assert.equal(formatLabelSelector({
    matchLabels: { b: '2', a: '1' },
    matchExpressions: [{ key: 'c', operator: 'NotIn', values: ['y', 'x'] }, { key: 'd', operator: 'Exists' }, { key: 'aa', operator: 'DoesNotExist' }],
  }), 'a=1,!aa,b=2,c notin (x,y),d');
  assert.equal(formatLabelSelector({ matchExpressions: [{ key: 'c', operator: 'Bogus' }] }), '<error>');
});

test('kinds without a printer get Name and Created At', () => {
  assert.deepEqual(defaultColumns.map((c) => [c.name, c.type, c.format]), [['Name', 'string', 'name'], ['Created At', 'date', '']]);
  assert.deepEqual(defaultRow({ metadata: { name: 'admin', creationTimestamp: '2025-05-01T10:00:00Z' } }, now), ['admin', '2025-05-01T10:00:00Z']);
  for (const kind of ['Role', 'ClusterRole', 'LimitRange']) assert.equal(printers[kind], undefined);
});

test('every printer has a name column and one cell per column for an empty object', () => {
  for (const [kind, p] of Object.entries(printers)) {
    const row = p.row({ metadata: { name: 'x' } }, now);
    assert.equal(row.length, p.columns.length, kind);
    assert.ok(p.columns.some((c) => c.name === 'Name'), kind);
  }
});
