// Issue 6, Prometheus metrics: a real `kyb server --simulate-nodes 2` serves /metrics over HTTPS to
// the admin token (401 without), in Prometheus text format 0.0.4, parsed here by a small strict
// parser (HELP/TYPE, samples with labels, histogram buckets non-decreasing with +Inf == _count).
// The text must hold the API server's request counters and latency histogram, store latency, and,
// from the components worker thread, the scheduler's attempts and the controllers' work queues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startCluster, fetchInsecure, type TestCluster } from './cluster.js';
import { requestLabels } from '../../src/apiserver/metrics.js';

// ------------------------------------------------------------------ a strict exposition-format parser

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { name: string; type: string; help?: string; samples: Sample[] }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  assert.match(s, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `bad value in: ${line}`);
  return Number(s);
}

/** Parses `name{a="b",c="d"} value [timestamp]`. */
function parseSample(line: string): Sample {
  let i = 0;
  while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
  const name = line.slice(0, i);
  assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') { i++; break; }
      const eq = line.indexOf('=', i);
      assert.ok(eq > i, `bad label in: ${line}`);
      const lname = line.slice(i, eq);
      assert.match(lname, LABEL_NAME, `bad label name ${lname} in: ${line}`);
      assert.equal(line[eq + 1], '"', `label value not quoted in: ${line}`);
      let j = eq + 2; let v = '';
      for (;;) {
        assert.ok(j < line.length, `unterminated label value in: ${line}`);
        const ch = line[j];
        if (ch === '\\') {
          const n = line[j + 1];
          assert.ok(n === '\\' || n === '"' || n === 'n', `bad escape in: ${line}`);
          v += n === 'n' ? '\n' : n; j += 2; continue;
        }
        if (ch === '"') { j++; break; }
        v += ch; j++;
      }
      assert.ok(!(lname in labels), `duplicate label ${lname} in: ${line}`);
      labels[lname] = v;
      i = j;
      if (line[i] === ',') { i++; continue; }
      assert.equal(line[i], '}', `expected , or } in: ${line}`);
    }
  }
  assert.equal(line[i], ' ', `expected a space before the value in: ${line}`);
  const rest = line.slice(i + 1).split(' ');
  assert.ok(rest.length === 1 || (rest.length === 2 && /^-?\d+$/.test(rest[1])), `bad value/timestamp in: ${line}`);
  return { name, labels, value: parseValue(rest[0], line) };
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const f = families.get(sample);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const h = families.get(sample.slice(0, -suffix.length));
    if (h && (h.type === 'histogram' || (h.type === 'summary' && suffix !== '_bucket'))) return h;
  }
  return undefined;
}

const seriesKey = (name: string, labels: Record<string, string>, omit?: string) =>
  name + JSON.stringify(Object.entries(labels).filter(([k]) => k !== omit).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Parses Prometheus text format 0.0.4 strictly; throws (assert) on anything malformed. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // another comment
      const [, kind, name, rest] = m;
      assert.match(name, METRIC_NAME, `bad name in: ${line}`);
      let f = families.get(name);
      if (!f) { f = { name, type: 'untyped', samples: [] }; families.set(name, f); }
      else assert.equal(f.samples.length, 0, `${kind} for ${name} after its samples`);
      if (kind === 'TYPE') {
        assert.ok(TYPES.has(rest), `bad type in: ${line}`);
        f.type = rest;
      } else {
        assert.equal(f.help, undefined, `second HELP for ${name}`);
        f.help = rest;
      }
      current = f;
      continue;
    }
    const s = parseSample(line);
    const f = familyOf(s.name, families);
    assert.ok(f, `sample ${s.name} has no HELP/TYPE`);
    assert.equal(f, current, `sample ${s.name} is not in its family's block`);
    if (f.type === 'histogram' && s.name.endsWith('_bucket')) assert.ok('le' in s.labels, `bucket without le: ${line}`);
    const k = seriesKey(s.name, s.labels);
    assert.ok(!series.has(k), `duplicate series: ${line}`);
    series.add(k);
    f.samples.push(s);
  }
  // histograms: per series, buckets non-decreasing in le, +Inf present and equal to _count
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const groups = new Map<string, { buckets: { le: number; v: number }[]; count?: number; sum?: number }>();
    const g = (labels: Record<string, string>) => {
      const k = seriesKey('', labels, 'le');
      return groups.get(k) ?? groups.set(k, { buckets: [] }).get(k)!;
    };
    for (const s of f.samples) {
      if (s.name === `${f.name}_bucket`) g(s.labels).buckets.push({ le: parseValue(s.labels.le, s.labels.le), v: s.value });
      else if (s.name === `${f.name}_count`) g(s.labels).count = s.value;
      else if (s.name === `${f.name}_sum`) g(s.labels).sum = s.value;
      else assert.fail(`unexpected sample ${s.name} in histogram ${f.name}`);
    }
    for (const [k, h] of groups) {
      assert.ok(h.buckets.length > 0 && h.count !== undefined && h.sum !== undefined, `${f.name}${k}: buckets, _sum and _count`);
      const sorted = [...h.buckets].sort((a, b) => a.le - b.le);
      for (let i = 1; i < sorted.length; i++) {
        assert.ok(sorted[i].le > sorted[i - 1].le, `${f.name}${k}: duplicate le`);
        assert.ok(sorted[i].v >= sorted[i - 1].v, `${f.name}${k}: bucket le=${sorted[i].le} below le=${sorted[i - 1].le}`);
      }
      const inf = sorted[sorted.length - 1];
      assert.equal(inf.le, Infinity, `${f.name}${k}: no +Inf bucket`);
      assert.equal(inf.v, h.count, `${f.name}${k}: +Inf bucket != _count`);
    }
  }
  return families;
}

/** Sum of a family's samples named `sample` whose labels include `match`. */
function total(families: Map<string, Family>, family: string, sample: string, match: Record<string, string> = {}): number {
  const f = families.get(family);
  if (!f) return 0;
  return f.samples.filter((s) => s.name === sample && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

function has(families: Map<string, Family>, family: string, sample: string, match: Record<string, string>): boolean {
  return !!families.get(family)?.samples.some((s) => s.name === sample && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

// ------------------------------------------------------------------ the cluster

let c: TestCluster;
let base: string;
let auth: Record<string, string>;
before(async () => {
  c = await startCluster(['--simulate-nodes', '2', '--profile', 'fast']);
  base = c.server.api.url;
  auth = { Authorization: `Bearer ${c.server.token}` };
});
after(async () => { await c?.stop(); });

async function scrape(): Promise<{ families: Map<string, Family>; contentType: string }> {
  const r = await fetchInsecure(`${base}/metrics`, { headers: auth });
  assert.equal(r.status, 200, r.text);
  return { families: parseExposition(r.text), contentType: String(r.headers['content-type']) };
}

async function eventually(check: (f: Map<string, Family>) => boolean, what: string, ms = 30_000): Promise<Map<string, Family>> {
  const end = Date.now() + ms;
  for (;;) {
    const { families } = await scrape();
    if (check(families)) return families;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('/metrics needs credentials', async () => {
  const none = await fetchInsecure(`${base}/metrics`);
  assert.equal(none.status, 401);
  const wrong = await fetchInsecure(`${base}/metrics`, { headers: { Authorization: 'Bearer not-the-token' } });
  assert.equal(wrong.status, 401);
  const other = await fetchInsecure(`${base}/metrics/nothing-here`, { headers: auth });
  assert.equal(other.status, 404);
});

test('/metrics with the admin token: valid Prometheus text with API, store, scheduler and work-queue metrics', async () => {
  const ns = `prom-${randomBytes(3).toString('hex')}`;
  const post = (path: string, body: unknown) => fetchInsecure(`${base}${path}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })).status, 201);
  const N = 7;
  for (let i = 0; i < N; i++) {
    const r = await post(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { i: String(i) } });
    assert.equal(r.status, 201, r.text);
  }
  const dep = await post(`/apis/apps/v1/namespaces/${ns}/deployments`, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] } } },
  });
  assert.equal(dep.status, 201, dep.text);

  const { contentType } = await scrape();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);

  // the scheduler (in the components worker) binds the deployment's 3 pods
  const f = await eventually((fs) => total(fs, 'scheduler_schedule_attempts_total', 'scheduler_schedule_attempts_total', { result: 'scheduled' }) >= 3, 'scheduled attempts');

  // API requests, by upstream's labels
  assert.equal(f.get('apiserver_request_total')?.type, 'counter');
  assert.ok(total(f, 'apiserver_request_total', 'apiserver_request_total', { verb: 'POST', resource: 'configmaps', code: '201', scope: 'namespace', component: 'apiserver' }) >= N);
  assert.ok(total(f, 'apiserver_request_total', 'apiserver_request_total', { verb: 'POST', group: 'apps', version: 'v1', resource: 'deployments', code: '201' }) >= 1);
  assert.ok(total(f, 'apiserver_request_total', 'apiserver_request_total', { verb: 'POST', resource: 'pods', subresource: 'binding', code: '201' }) >= 3, 'bindings');
  assert.equal(f.get('apiserver_request_duration_seconds')?.type, 'histogram');
  assert.ok(total(f, 'apiserver_request_duration_seconds', 'apiserver_request_duration_seconds_count', { verb: 'POST', resource: 'configmaps' }) >= N);
  assert.ok(!has(f, 'apiserver_request_duration_seconds', 'apiserver_request_duration_seconds_count', { verb: 'WATCH' }), 'watches are not in the latency histogram');
  // the informers of the controllers and the scheduler hold watches open
  assert.equal(f.get('apiserver_longrunning_requests')?.type, 'gauge');
  assert.ok(total(f, 'apiserver_longrunning_requests', 'apiserver_longrunning_requests', { verb: 'WATCH', resource: 'pods' }) >= 1);

  // store latency, by operation
  assert.equal(f.get('kyb_storage_operation_duration_seconds')?.type, 'histogram');
  assert.ok(total(f, 'kyb_storage_operation_duration_seconds', 'kyb_storage_operation_duration_seconds_count', { operation: 'create' }) >= N);

  // scheduler (worker thread)
  assert.equal(f.get('scheduler_scheduling_attempt_duration_seconds')?.type, 'histogram');
  assert.ok(total(f, 'scheduler_scheduling_attempt_duration_seconds', 'scheduler_scheduling_attempt_duration_seconds_count', { result: 'scheduled', profile: 'default-scheduler' }) >= 3);
  assert.ok(has(f, 'scheduler_pending_pods', 'scheduler_pending_pods', { queue: 'active' }));

  // controllers' work queues (worker thread), by name
  assert.equal(f.get('workqueue_depth')?.type, 'gauge');
  assert.ok(has(f, 'workqueue_depth', 'workqueue_depth', { name: 'deployment' }));
  assert.ok(has(f, 'workqueue_depth', 'workqueue_depth', { name: 'replicaset' }));
  assert.ok(total(f, 'workqueue_adds_total', 'workqueue_adds_total', { name: 'deployment' }) >= 1);
  assert.ok(total(f, 'workqueue_work_duration_seconds', 'workqueue_work_duration_seconds_count', { name: 'replicaset' }) >= 1);
  assert.ok(f.has('workqueue_queue_duration_seconds') && f.has('workqueue_retries_total'));

  // process metrics (main thread only), once
  assert.equal(f.get('process_cpu_user_seconds_total')?.samples.length, 1);
  assert.ok(f.has('process_start_time_seconds'), 'kept through the merge with the worker');
});

test('curl of /metrics with the admin token (CA verified) returns Prometheus text that parses', { skip: !existsSync('/usr/bin/curl') && 'needs curl' }, async () => {
  const ca = c.writeFile('ca.pem', c.server.caPem);
  const out = await new Promise<string>((resolve, reject) => {
    execFile('curl', ['-sS', '--fail', '--cacert', ca, '-H', `Authorization: Bearer ${c.server.token}`, `${base}/metrics`], { maxBuffer: 64 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`curl: ${stderr}`)) : resolve(stdout)));
  });
  const families = parseExposition(out);
  assert.ok(families.has('apiserver_request_total'), 'apiserver_request_total');
  assert.ok(families.has('process_resident_memory_bytes'), 'process metrics');
});

test('request labels follow kube-apiserver (verbs, scope, unknown resources)', () => {
  const l = (m: string, u: string, ct?: string) => { const x = requestLabels(m, u, ct); return [x.verb, x.resource, x.subresource, x.scope, x.longRunning]; };
  assert.deepEqual(l('GET', '/api/v1/namespaces/a/pods'), ['LIST', 'pods', '', 'namespace', false]);
  assert.deepEqual(l('GET', '/api/v1/pods?watch=true&resourceVersion=5'), ['WATCH', 'pods', '', 'cluster', true]);
  assert.deepEqual(l('GET', '/api/v1/namespaces/a/pods/p'), ['GET', 'pods', '', 'resource', false]);
  assert.deepEqual(l('GET', '/api/v1/namespaces/a/pods/p/log?follow=true'), ['GET', 'pods', 'log', 'resource', true]);
  assert.deepEqual(l('POST', '/api/v1/namespaces/a/pods/p/exec?command=ls'), ['CONNECT', 'pods', 'exec', 'resource', true]);
  assert.deepEqual(l('PATCH', '/apis/apps/v1/namespaces/a/deployments/d', 'application/apply-patch+yaml'), ['APPLY', 'deployments', '', 'resource', false]);
  assert.deepEqual(l('PATCH', '/apis/apps/v1/namespaces/a/deployments/d/status', 'application/merge-patch+json'), ['PATCH', 'deployments', 'status', 'resource', false]);
  assert.deepEqual(l('DELETE', '/api/v1/namespaces/a/configmaps'), ['DELETECOLLECTION', 'configmaps', '', 'namespace', false]);
  assert.deepEqual(l('DELETE', '/api/v1/nodes/n1'), ['DELETE', 'nodes', '', 'resource', false]);
  assert.deepEqual(l('GET', '/api/v1/nodes/n1/proxy/stats/summary'), ['CONNECT', 'nodes', 'proxy', 'resource', true]);
  assert.deepEqual(l('GET', '/api/v1/namespaces/a/pods//p'), ['GET', 'pods', '', 'resource', false]);
  assert.deepEqual(l('GET', '/apis/apps/v1/'), ['GET', '', '', '', false]);
  assert.deepEqual(l('PUT', '/api/v1/namespaces/a/status'), ['PUT', 'namespaces', 'status', 'resource', false]);
  // bounded label values: unknown resources and paths say nothing of their names
  assert.deepEqual(l('GET', '/apis/made.up/v1/whatever/x'), ['GET', '', '', '', false]);
  assert.deepEqual(l('GET', '/api/v1/namespaces/a/pods/p/%zz'), ['GET', '', '', '', false]);
  assert.deepEqual(l('BREW', '/version'), ['other', '', '', '', false]);
});
