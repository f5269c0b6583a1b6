// The controller manager: the registry of controllers (one literal array) and the loop that runs
// the enabled ones with shared informers, under a Lease so two servers never run them at once.
import { hostname } from 'node:os';
import { setMaxListeners } from 'node:events';
import { randomUUID } from 'node:crypto';
import { EventRecorder, LeaderElector, RestClient } from '../client/index.js';
import { SharedInformers, type ControllerContext } from './context.js';
import * as namespace from './namespace/namespace-controller.js';
import * as garbagecollector from './garbagecollector/garbage-collector.js';
import * as serviceaccount from './serviceaccount/serviceaccount-controller.js';
import * as replicaset from './replicaset/replicaset-controller.js';
import * as deployment from './deployment/deployment-controller.js';
import * as nodelifecycle from './nodelifecycle/node-lifecycle-controller.js';
import * as podgc from './podgc/podgc-controller.js';
import * as nodeipam from './nodeipam/nodeipam-controller.js';
import * as endpoint from './endpoints/endpoints-controller.js';
import * as endpointslice from './endpointslice/endpointslice-controller.js';
import * as servicelb from './servicelb/servicelb-controller.js';
import * as rootcacert from './rootcacert/rootcacert-controller.js';
import * as horizontalpodautoscaling from './horizontalpodautoscaler/horizontal-controller.js';

export interface ControllerEntry {
  name: string;
  start(ctx: ControllerContext, signal: AbortSignal, opts?: Record<string, unknown>): Promise<void>;
}

export const controllers: ControllerEntry[] = [
  { name: 'namespace', start: namespace.start },
  { name: 'garbagecollector', start: garbagecollector.start },
  { name: 'serviceaccount', start: serviceaccount.start },
  { name: 'replicaset', start: replicaset.start },
  { name: 'deployment', start: deployment.start },
  { name: 'nodelifecycle', start: nodelifecycle.start },
  { name: 'podgc', start: podgc.start },
  { name: 'nodeipam', start: nodeipam.start },
  { name: 'endpoint', start: endpoint.start },
  { name: 'endpointslice', start: endpointslice.start },
  { name: 'servicelb', start: servicelb.start },
  { name: 'rootcacert', start: rootcacert.start },
  { name: 'horizontalpodautoscaling', start: horizontalpodautoscaling.start },
];

export interface ControllerManagerOptions {
  /** controller names to skip */
  disabled?: Set<string>;
  /** per-controller options, by name */
  options?: Record<string, Record<string, unknown>>;
  /** run under a Lease (default true) */
  leaderElect?: boolean;
}

/** Runs every enabled controller until signal aborts. */
export async function runControllers(client: RestClient, signal: AbortSignal, opts: ControllerManagerOptions = {}): Promise<void> {
  const run = async (s: AbortSignal) => {
    setMaxListeners(0, s); // every shared informer listens on it
    const informers = new SharedInformers({ client });
    const recorders: EventRecorder[] = [];
    const ctx: ControllerContext = {
      client, informers,
      recorder(component) { const r = new EventRecorder({ client, component }); recorders.push(r); return r; },
    };
    informers.start(s);
    const runs = controllers.filter((c) => !opts.disabled?.has(c.name)).map((c) =>
      c.start(ctx, s, opts.options?.[c.name]).catch((e) => { process.stderr.write(`controller ${c.name}: ${(e as Error).stack ?? e}\n`); }));
    await Promise.all(runs);
    for (const r of recorders) r.close();
    await informers.stopped();
  };
  if (opts.leaderElect === false) { await run(signal); return; }
  await leaderElected(client, 'kube-controller-manager', signal, run);
}

/** Runs `work` while holding kube-system/<name>; competes again when leadership is lost. */
export async function leaderElected(client: RestClient, name: string, signal: AbortSignal, work: (s: AbortSignal) => Promise<void>): Promise<void> {
  const identity = `${hostname()}_${randomUUID()}`;
  while (!signal.aborted) {
    const el = new LeaderElector({ client, namespace: 'kube-system', name, identity, onStartedLeading: work });
    await el.run(signal);
  }
}
