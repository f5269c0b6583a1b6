import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaulters, defaultPullPolicy } from './defaults.js';
import type { KObject } from './types.js';

function apply(obj: KObject): KObject {
  defaulters[obj.kind!]!(obj);
  return obj;
}

const defaultedContainer = (name: string, image: string, pull: string) => ({
  name, image, imagePullPolicy: pull, resources: {},
  terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
});

test('image pull policy follows the tag', () => {
  assert.equal(defaultPullPolicy('nginx'), 'Always');
  assert.equal(defaultPullPolicy('nginx:latest'), 'Always');
  assert.equal(defaultPullPolicy('nginx:1.27'), 'IfNotPresent');
  assert.equal(defaultPullPolicy('localhost:5000/nginx'), 'Always');
  assert.equal(defaultPullPolicy('nginx@sha256:abc'), 'IfNotPresent');
});

test('minimal pod gets every upstream default', () => {
  const pod = apply({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' },
    spec: {
      containers: [{
        name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }],
        env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
        readinessProbe: { httpGet: { port: 80 } },
        resources: { limits: { cpu: '1' } },
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }],
      }],
      volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }, { name: 'scratch' }],
    },
  });
  assert.deepEqual(pod, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' },
    spec: {
      containers: [{
        ...defaultedContainer('web', 'nginx:1.27', 'IfNotPresent'),
        ports: [{ containerPort: 80, protocol: 'TCP' }],
        env: [{ name: 'NODE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } }],
        readinessProbe: { httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
        resources: { limits: { cpu: '1' }, requests: { cpu: '1' } },
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }],
      }],
      volumes: [{ name: 'cfg', configMap: { name: 'cfg', defaultMode: 420 } }, { name: 'scratch', emptyDir: {} }],
      dnsPolicy: 'ClusterFirst', restartPolicy: 'Always', securityContext: {}, terminationGracePeriodSeconds: 30,
      schedulerName: 'default-scheduler', enableServiceLinks: true, priority: 0, preemptionPolicy: 'PreemptLowerPriority',
    },
  });
});

test('values the client set are kept', () => {
  const pod = apply({ kind: 'Pod', spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', imagePullPolicy: 'Never' }] } });
  const spec = pod.spec as Record<string, any>;
  assert.equal(spec.restartPolicy, 'Never');
  assert.equal(spec.terminationGracePeriodSeconds, 0);
  assert.equal(spec.containers[0].imagePullPolicy, 'Never');
});

test('minimal deployment', () => {
  const d = apply({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } },
  });
  assert.deepEqual(d, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [defaultedContainer('web', 'nginx', 'Always')],
          dnsPolicy: 'ClusterFirst', restartPolicy: 'Always', securityContext: {}, terminationGracePeriodSeconds: 30, schedulerName: 'default-scheduler',
        },
      },
    },
  });
});

test('Recreate deployments get no rollingUpdate', () => {
  const d = apply({ kind: 'Deployment', spec: { strategy: { type: 'Recreate' } } });
  assert.deepEqual((d.spec as any).strategy, { type: 'Recreate' });
});

test('minimal service', () => {
  const svc = apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
  assert.deepEqual(svc, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: {
      selector: { app: 'web' },
      ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }],
      sessionAffinity: 'None', type: 'ClusterIP', internalTrafficPolicy: 'Cluster',
    },
  });
  const np = apply({ kind: 'Service', spec: { type: 'NodePort', ports: [{ port: 80, targetPort: 'http' }] } });
  assert.equal((np.spec as any).externalTrafficPolicy, 'Cluster');
  assert.equal((np.spec as any).ports[0].targetPort, 'http');
});

test('job templates keep restartPolicy unset; job and cronjob defaults', () => {
  const job = apply({ kind: 'Job', spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } } });
  const s = job.spec as any;
  assert.equal(s.template.spec.restartPolicy, undefined);
  assert.deepEqual([s.completions, s.parallelism, s.backoffLimit, s.completionMode, s.suspend, s.podReplacementPolicy], [1, 1, 6, 'NonIndexed', false, 'TerminatingOrFailed']);
  const cj = apply({ kind: 'CronJob', spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { containers: [] } } } } } });
  const c = cj.spec as any;
  assert.deepEqual([c.concurrencyPolicy, c.suspend, c.successfulJobsHistoryLimit, c.failedJobsHistoryLimit], ['Allow', false, 3, 1]);
});

test('statefulset and daemonset strategies', () => {
  const sts = apply({ kind: 'StatefulSet', spec: { volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: {} }] } }).spec as any;
  assert.deepEqual(sts.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
  assert.equal(sts.podManagementPolicy, 'OrderedReady');
  assert.deepEqual(sts.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Retain', whenScaled: 'Retain' });
  assert.deepEqual(sts.volumeClaimTemplates[0], { metadata: { name: 'data' }, spec: { volumeMode: 'Filesystem' }, status: { phase: 'Pending' } });
  const ds = apply({ kind: 'DaemonSet', spec: {} }).spec as any;
  assert.deepEqual(ds, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } }, revisionHistoryLimit: 10 });
});

test('namespace, secret stringData, replication controller selector', () => {
  const ns = apply({ kind: 'Namespace', metadata: { name: 'dev' } });
  assert.deepEqual(ns, { kind: 'Namespace', metadata: { name: 'dev', labels: { 'kubernetes.io/metadata.name': 'dev' } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  const sec = apply({ kind: 'Secret', data: { a: 'eA==' }, stringData: { b: 'hi' } });
  assert.deepEqual(sec, { kind: 'Secret', type: 'Opaque', data: { a: 'eA==', b: 'aGk=' } });
  const rc = apply({ kind: 'ReplicationController', metadata: { name: 'r' }, spec: { template: { metadata: { labels: { app: 'r' } }, spec: { containers: [] } } } });
  assert.deepEqual((rc.spec as any).selector, { app: 'r' });
  assert.deepEqual(rc.metadata!.labels, { app: 'r' });
  assert.equal((rc.spec as any).replicas, 1);
});
