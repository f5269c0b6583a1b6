import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodePorts } from './node-ports.js';
import { makeNode, makePod, nodeInfo } from '../../testing/fixtures.js';
import { PodInfo } from '../../node-info.js';

function withPort(name: string, hostPort: number, protocol: 'TCP' | 'UDP' = 'TCP', hostIP?: string) {
  return makePod(name, { node: 'n1', spec: { containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 80, hostPort, protocol, hostIP }] }] } });
}

test('NodePorts: a hostPort already used on the node (same protocol, overlapping IP) conflicts', () => {
  const p = new NodePorts();
  const ni = nodeInfo(makeNode('n1'), withPort('used', 8080));
  assert.deepEqual(p.filter(new PodInfo(withPort('a', 8080)), ni)?.reasons, ["node(s) didn't have free ports for the requested pod ports"]);
  assert.equal(p.filter(new PodInfo(withPort('b', 8081)), ni), null);
  assert.equal(p.filter(new PodInfo(withPort('c', 8080, 'UDP')), ni), null);
  assert.notEqual(p.filter(new PodInfo(withPort('d', 8080, 'TCP', '10.0.0.1')), ni), null, '0.0.0.0 overlaps every IP');
  const specific = nodeInfo(makeNode('n1'), withPort('used', 9000, 'TCP', '10.0.0.1'));
  assert.equal(p.filter(new PodInfo(withPort('e', 9000, 'TCP', '10.0.0.2')), specific), null);
  assert.equal(p.filter(new PodInfo(makePod('noports')), ni), null);
});
