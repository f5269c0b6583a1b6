import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeResourcesFit } from './node-resources-fit.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo, computePodRequests } from '../../node-info.js';

test('NodeResourcesFit: cpu, memory and pod slots against allocatable minus requested', () => {
  const p = new NodeResourcesFit();
  const ni = nodeInfo(makeNode('n1', { cpu: '2', memory: '4Gi', pods: '3' }), makePod('x', { node: 'n1', cpu: '1500m', memory: '1Gi' }));
  assert.equal(p.filter(new PodInfo(makePod('a', { cpu: '500m', memory: '3Gi' })), ni), null);
  assert.deepEqual(p.filter(new PodInfo(makePod('b', { cpu: '501m', memory: '3Gi' })), ni)?.reasons, ['Insufficient cpu']);
  assert.deepEqual(p.filter(new PodInfo(makePod('c', { cpu: '1', memory: '5Gi' })), ni)?.reasons, ['Insufficient cpu', 'Insufficient memory']);
  ni.addPod(new PodInfo(makePod('y', { node: 'n1' })));
  ni.addPod(new PodInfo(makePod('z', { node: 'n1' })));
  const s = p.filter(new PodInfo(makePod('d')), ni);
  assert.equal(s?.code, 'Unschedulable');
  assert.deepEqual(s?.reasons, ['Too many pods']);
});

test('NodeResourcesFit: ephemeral-storage and extended resources', () => {
  const p = new NodeResourcesFit();
  const gpuNode = nodeInfo(makeNode('g', { extra: { 'nvidia.com/gpu': '2' } }));
  const plain = nodeInfo(makeNode('p'));
  const gpuPod = makePod('gpu', { spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { 'nvidia.com/gpu': '2', 'ephemeral-storage': '1Gi' } } }] } });
  assert.equal(p.filter(new PodInfo(gpuPod), gpuNode), null);
  assert.deepEqual(p.filter(new PodInfo(gpuPod), plain)?.reasons, ['Insufficient nvidia.com/gpu']);
  const disk = makePod('disk', { spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { 'ephemeral-storage': '200Gi' } } }] } });
  assert.deepEqual(p.filter(new PodInfo(disk), plain)?.reasons, ['Insufficient ephemeral-storage']);
});

test('pod requests: max(init containers, sum of containers) + overhead; sidecars add up', () => {
  const r = computePodRequests({
    metadata: { name: 'p' },
    spec: {
      overhead: { cpu: '50m' },
      initContainers: [
        { name: 'i1', image: 'x', resources: { requests: { cpu: '2', memory: '100Mi' } } },
        { name: 'side', image: 'x', restartPolicy: 'Always', resources: { requests: { cpu: '100m', memory: '50Mi' } } },
        { name: 'i2', image: 'x', resources: { requests: { cpu: '1', memory: '1Gi' } } },
      ],
      containers: [
        { name: 'a', image: 'x', resources: { requests: { cpu: '300m', memory: '200Mi' } } },
        { name: 'b', image: 'x', resources: { requests: { cpu: '200m', memory: '100Mi' } } },
      ],
    },
  });
  // cpu: max(i1 2000, side+i2 1100, containers 500 + side 100) + 50 overhead
  assert.equal(r.requests.milliCPU, 2050);
  // memory: max(i1 100Mi, side 50Mi + i2 1Gi, 300Mi + side 50Mi)
  assert.equal(r.requests.memory, 50 * 2 ** 20 + 2 ** 30);
  const none = computePodRequests(makePod('n'));
  assert.equal(none.requests.milliCPU, 0);
  assert.equal(none.nonZeroCPU, 100, 'scoring counts 100m for a container without requests');
  assert.equal(none.nonZeroMem, 200 * 2 ** 20);
});
