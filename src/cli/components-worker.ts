// Worker-thread entry for the components of `kyb server` (see components.ts). Besides 'stop' it
// answers `{ type: 'metrics', id }` with this thread's Prometheus metrics (getMetricsAsJSON), which
// the main thread merges into its /metrics. No process metrics here: the main thread has them.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'prom-client';
import { runComponents, type ComponentsConfig, type MetricsReply } from './components.js';

const ac = new AbortController();
parentPort?.on('message', (m: unknown) => {
  if (m === 'stop') { ac.abort(); return; }
  const req = m as { type?: string; id?: number } | null;
  if (req?.type === 'metrics' && typeof req.id === 'number') {
    const id = req.id;
    register.getMetricsAsJSON()
      .then((metrics) => parentPort?.postMessage({ type: 'metrics', id, metrics } satisfies MetricsReply))
      .catch((e: unknown) => {
        process.stderr.write(`kyb components: metrics: ${(e as Error).message}\n`);
        parentPort?.postMessage({ type: 'metrics', id, metrics: [] } satisfies MetricsReply);
      });
  }
});
runComponents(workerData as ComponentsConfig, ac.signal)
  .catch((e) => { process.stderr.write(`kyb components: ${(e as Error).stack ?? e}\n`); })
  .finally(() => { parentPort?.close(); process.exit(0); });
