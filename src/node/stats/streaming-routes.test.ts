// The agent streaming server's metrics routes (src/node/streaming/server.ts) on a loopback port:
// GET /metrics/resource answers the backend's report as JSON (404 when it collects none), GET /metrics
// answers prom-client's default registry as Prometheus text, and writes are 405.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Counter, register } from 'prom-client';
import { errors } from '../../machinery/status.js';
import { createStreamingServer } from '../streaming/server.js';
import type { ResourceMetricsReport } from './resource-metrics.js';

const no = () => Promise.reject(errors.badRequest('no'));
const report: ResourceMetricsReport = { nodeName: 'n1', resolutionMs: 1000, pods: [] };
const servers = [
  createStreamingServer({ logSource: no, exec: no, attach: no, portForward: no, resourceMetrics: () => report }),
  createStreamingServer({ logSource: no, exec: no, attach: no, portForward: no }),
];
const ports: number[] = [];
for (const s of servers) { s.listen(0, '127.0.0.1'); await once(s, 'listening'); ports.push((s.address() as AddressInfo).port); }
const counter = new Counter({ name: 'kyb_test_streaming_routes_total', help: 'a test counter' });
after(() => { for (const s of servers) s.close(); register.removeSingleMetric('kyb_test_streaming_routes_total'); });

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET /metrics/resource: the report as JSON, or 404 without a collector', async () => {
  const r = await get(ports[0]!, '/metrics/resource');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  assert.deepEqual(JSON.parse(r.body), report);
  const none = await get(ports[1]!, '/metrics/resource');
  assert.equal(none.status, 404);
  assert.equal(JSON.parse(none.body).reason, 'NotFound');
  assert.equal((await get(ports[0]!, '/metrics/resource', 'POST')).status, 405);
});

test('GET /metrics: the default prom-client registry as Prometheus text', async () => {
  counter.inc(3);
  const r = await get(ports[1]!, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^# HELP kyb_test_streaming_routes_total a test counter\n# TYPE kyb_test_streaming_routes_total counter\nkyb_test_streaming_routes_total 3$/m);
});
