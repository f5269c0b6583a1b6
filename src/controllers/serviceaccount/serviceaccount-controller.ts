// ServiceAccount controller: every active namespace has a `default` ServiceAccount (created when a
// namespace appears, created again when someone deletes it), as upstream's serviceaccounts-controller.
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { Informer, ResourceRef, RestClient } from '../../client/index.js';
import { WorkQueue, runWorkers, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';

const namespacesRes: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };
const serviceAccountsRes: ResourceRef = { group: '', version: 'v1', plural: 'serviceaccounts' };

export interface ServiceAccountControllerOptions {
  client: RestClient;
  informerFor(res: ResourceRef): Informer;
  /** the accounts every namespace gets (default ['default']) */
  accounts?: string[];
  workers?: number;
  onError?(err: unknown): void;
}

export class ServiceAccountController {
  readonly queue = new WorkQueue<string>({ name: 'serviceaccount' });
  private namespaces!: Informer;
  private accounts!: Informer;

  constructor(private readonly opts: ServiceAccountControllerOptions) {}

  private get names(): string[] { return this.opts.accounts ?? ['default']; }

  async run(signal: AbortSignal): Promise<void> {
    this.namespaces = this.opts.informerFor(namespacesRes);
    this.accounts = this.opts.informerFor(serviceAccountsRes);
    const nsChanged = (o: KObject): void => { if (!o.metadata?.deletionTimestamp) this.queue.add(o.metadata!.name!); };
    const offs = [
      this.namespaces.addEventHandler({ onAdd: nsChanged, onUpdate: (_a, o) => nsChanged(o) }),
      this.accounts.addEventHandler({
        onDelete: (sa) => { if (this.names.includes(sa.metadata?.name ?? '') && sa.metadata?.namespace) this.queue.add(sa.metadata.namespace); },
      }),
    ];
    signal.addEventListener('abort', () => offs.forEach((f) => f()), { once: true });
    if (!(await waitForCacheSync(signal, this.namespaces, this.accounts))) return;
    await runWorkers(this.queue, this.opts.workers ?? 2, (ns) => this.sync(ns), signal, {
      onError: (ns, e) => { if (this.opts.onError) this.opts.onError(e); else console.error(`serviceaccount controller: ${ns}:`, e); },
    });
  }

  async sync(ns: string): Promise<void> {
    const namespace = this.namespaces.indexer.getByKey(ns);
    if (!namespace || namespace.metadata?.deletionTimestamp) return;
    for (const name of this.names) {
      if (this.accounts.indexer.getByKey(`${ns}/${name}`)) continue;
      try {
        await this.opts.client.create(serviceAccountsRes, ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
      } catch (e) {
        // already there (cache behind), or the namespace is going away
        if (isStatusError(e, 'AlreadyExists') || isStatusError(e, 'Forbidden') || isStatusError(e, 'NotFound')) continue;
        throw e;
      }
    }
  }
}

/** Runs the ServiceAccount controller on the shared informers; resolves when signal aborts and its work has stopped. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<ServiceAccountControllerOptions> = {}): Promise<void> {
  await new ServiceAccountController({ client: ctx.client, informerFor: (r) => ctx.informers.informerFor(r), ...opts }).run(signal);
}
