// Root-CA publisher, as upstream's root-ca-cert-publisher: every active namespace gets a ConfigMap
// `kube-root-ca.crt` whose `ca.crt` is the API server's serving CA (what pods use, through the
// kube-api-access volume, to verify https://kubernetes.default.svc). A deleted or edited ConfigMap is
// put back: created again when gone, its data and description annotation restored when changed
// (other labels/annotations a user added are kept).
import type { KObject } from '../../api/types.js';
import { isStatusError } from '../../machinery/status.js';
import type { Informer, ResourceRef, RestClient } from '../../client/index.js';
import { WorkQueue, runWorkers, waitForCacheSync } from '../../client/index.js';
import type { ControllerContext } from '../context.js';

const namespacesRes: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };
const configMapsRes: ResourceRef = { group: '', version: 'v1', plural: 'configmaps' };

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
export const DESCRIPTION_ANNOTATION = 'kubernetes.io/description';
export const DESCRIPTION = 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';

export interface RootCACertOptions {
  client: RestClient;
  informerFor(res: ResourceRef, opts?: { fieldSelector?: string }): Informer;
  /** the CA bundle (PEM) to publish */
  caPem: string;
  workers?: number;
  onError?(err: unknown): void;
}

export class RootCACertPublisher {
  readonly queue = new WorkQueue<string>({ name: 'root-ca-cert-publisher' });
  private namespaces!: Informer;
  private configMaps!: Informer;

  constructor(private readonly opts: RootCACertOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    this.namespaces = this.opts.informerFor(namespacesRes);
    // only the kube-root-ca.crt ConfigMaps: the server filters the others out of the list and watch
    this.configMaps = this.opts.informerFor(configMapsRes, { fieldSelector: `metadata.name=${ROOT_CA_CONFIGMAP}` });
    const nsChanged = (o: KObject): void => { if (!o.metadata?.deletionTimestamp) this.queue.add(o.metadata!.name!); };
    const cmChanged = (o: KObject): void => { if (o.metadata?.name === ROOT_CA_CONFIGMAP && o.metadata.namespace) this.queue.add(o.metadata.namespace); };
    const offs = [
      this.namespaces.addEventHandler({ onAdd: nsChanged, onUpdate: (_a, o) => nsChanged(o) }),
      this.configMaps.addEventHandler({ onUpdate: (_a, o) => cmChanged(o), onDelete: cmChanged }),
    ];
    signal.addEventListener('abort', () => offs.forEach((f) => f()), { once: true });
    if (!(await waitForCacheSync(signal, this.namespaces, this.configMaps))) return;
    await runWorkers(this.queue, this.opts.workers ?? 2, (ns) => this.sync(ns), signal, {
      onError: (ns, e) => { if (this.opts.onError) this.opts.onError(e); else console.error(`root-ca-cert-publisher: ${ns}:`, e); },
    });
  }

  async sync(ns: string): Promise<void> {
    const namespace = this.namespaces.indexer.getByKey(ns);
    if (!namespace || namespace.metadata?.deletionTimestamp) return;
    const cur = this.configMaps.indexer.getByKey(`${ns}/${ROOT_CA_CONFIGMAP}`);
    const data = { 'ca.crt': this.opts.caPem };
    try {
      if (!cur) {
        await this.opts.client.create(configMapsRes, ns, {
          apiVersion: 'v1', kind: 'ConfigMap',
          metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { [DESCRIPTION_ANNOTATION]: DESCRIPTION } },
          data,
        } as KObject);
        return;
      }
      const curData = (cur as { data?: Record<string, string> }).data ?? {};
      const same = Object.keys(curData).length === 1 && curData['ca.crt'] === this.opts.caPem && (cur as { binaryData?: object }).binaryData === undefined
        && cur.metadata?.annotations?.[DESCRIPTION_ANNOTATION] === DESCRIPTION;
      if (same) return;
      const next = JSON.parse(JSON.stringify(cur)) as KObject & { data?: Record<string, string>; binaryData?: unknown };
      next.data = data;
      delete next.binaryData;
      next.metadata = { ...next.metadata, annotations: { ...(next.metadata?.annotations ?? {}), [DESCRIPTION_ANNOTATION]: DESCRIPTION } };
      await this.opts.client.update(configMapsRes, ns, next);
    } catch (e) {
      // cache behind (AlreadyExists / Conflict: the informer event requeues), or the namespace is going away
      if (isStatusError(e, 'AlreadyExists') || isStatusError(e, 'Conflict') || isStatusError(e, 'Forbidden') || isStatusError(e, 'NotFound')) {
        if (isStatusError(e, 'AlreadyExists') || isStatusError(e, 'Conflict')) this.queue.addAfter(ns, 500);
        return;
      }
      throw e;
    }
  }
}

/** Runs the publisher on the shared informers; without a CA (opts.caPem) it does nothing. */
export async function start(ctx: ControllerContext, signal: AbortSignal, opts: Partial<RootCACertOptions> = {}): Promise<void> {
  if (!opts.caPem) return;
  await new RootCACertPublisher({ client: ctx.client, informerFor: (r, o) => ctx.informers.informerFor(r, o), caPem: opts.caPem, ...opts }).run(signal);
}
