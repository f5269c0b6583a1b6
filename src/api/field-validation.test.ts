import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelOf, unknownFields } from './field-validation.js';

test('every stored kind of the resource table has a schema', () => {
  assert.equal(modelOf('apps', 'v1', 'Deployment'), 'V1Deployment');
  assert.equal(modelOf('autoscaling', 'v2', 'HorizontalPodAutoscaler'), 'V2HorizontalPodAutoscaler');
  assert.equal(modelOf('', 'v1', 'Event'), 'CoreV1Event');
  assert.equal(modelOf('events.k8s.io', 'v1', 'Event'), 'EventsV1Event');
});

test('unknown fields are found through objects, arrays and maps; map keys and embedded objects are free', () => {
  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { 'any/key': 'v' }, annotationz: {} },
    spec: { containers: [{ name: 'a', image: 'x', env: [{ name: 'E', valu: '1' }] }], nodeSelector: { disk: 'ssd' } },
  };
  assert.deepEqual(unknownFields(pod, 'V1Pod'), ['metadata.annotationz', 'spec.containers[0].env[0].valu']);
  // an HPA's metrics, a ConfigMap's data map and an event's raw fields
  assert.deepEqual(unknownFields({ data: { 'a.b': 'c' }, binaryData: {} }, 'V1ConfigMap'), []);
  assert.deepEqual(unknownFields({ spec: { maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', targte: {} } }] } }, 'V2HorizontalPodAutoscaler'), ['spec.metrics[0].resource.targte']);
});

test('in patches, strategic-merge directives are not fields; elsewhere they are', () => {
  const p = { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'a', $patch: 'delete' }] } } } };
  assert.deepEqual(unknownFields(p, 'V1Deployment', { patch: true }), []);
  assert.deepEqual(unknownFields(p, 'V1Deployment'), ['spec.template.spec.$setElementOrder/containers', 'spec.template.spec.containers[0].$patch']);
});
