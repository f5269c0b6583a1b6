// Worker-thread entry for the components of `kyb server` (see components.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { runComponents, type ComponentsConfig } from './components.js';

const ac = new AbortController();
parentPort?.on('message', (m) => { if (m === 'stop') ac.abort(); });
runComponents(workerData as ComponentsConfig, ac.signal)
  .catch((e) => { process.stderr.write(`kyb components: ${(e as Error).stack ?? e}\n`); })
  .finally(() => { parentPort?.close(); process.exit(0); });
