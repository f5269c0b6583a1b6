// What every controller is given: one API client, informers shared by all controllers (one per
// resource, so N controllers watching pods cost one watch), a clock and event recorders.
import type { KObject } from '../api/types.js';
import {
  type Clock, EventRecorder, Informer, type IndexFunc, type InformerOptions, type ResourceRef, RestClient,
  realClock, waitForCacheSync,
} from '../client/index.js';

export interface ControllerContext {
  client: RestClient;
  informers: SharedInformers;
  clock?: Clock;
  /** an event recorder whose source.component is `component` (e.g. 'deployment-controller') */
  recorder(component: string): EventRecorder;
}

export interface SharedInformerOptions {
  /** extra indexes; added to the shared informer (names must not clash across controllers) */
  indexers?: Record<string, IndexFunc>;
  /** only the objects matching this field selector (e.g. `metadata.name=x`), filtered by the server:
   *  an informer of its own, shared only with callers asking for the same selector */
  fieldSelector?: string;
}

/** Options for the whole factory. */
export interface SharedInformersOptions {
  client: RestClient;
  clock?: Clock;
  /** resync period for every informer; default none */
  resyncPeriodMs?: number;
  onError?: InformerOptions['onError'];
}

const refKey = (r: ResourceRef): string => `${r.group}/${r.version}/${r.plural}`;

/**
 * One Informer per resource (all namespaces), shared by every controller that asks for it.
 * Ask with informerFor() before start(); informers asked for after start() are started at once.
 */
export class SharedInformers {
  private readonly informers = new Map<string, Informer>();
  /** metadata-only informers (metadataInformerFor), by resource */
  private readonly metadataInformers = new Map<string, Informer>();
  private readonly runs: Promise<void>[] = [];
  private signal?: AbortSignal;

  constructor(private readonly opts: SharedInformersOptions) {}

  informerFor<T extends KObject = KObject>(res: ResourceRef, opts: SharedInformerOptions = {}): Informer<T> {
    const key = opts.fieldSelector ? `${refKey(res)}?fieldSelector=${opts.fieldSelector}` : refKey(res);
    let inf = this.informers.get(key);
    if (!inf) {
      inf = this.make(res, { fieldSelector: opts.fieldSelector });
      this.informers.set(key, inf);
    }
    if (opts.indexers) {
      const fresh: Record<string, IndexFunc> = {};
      for (const [name, fn] of Object.entries(opts.indexers)) {
        try { inf.indexer.indexKeys(name, ''); } catch { fresh[name] = fn; }
      }
      if (Object.keys(fresh).length) inf.indexer.addIndexers(fresh);
    }
    return inf as unknown as Informer<T>;
  }

  /**
   * An informer whose objects carry at least their metadata, for controllers that read nothing else
   * (the garbage collector, as upstream's runs on metadata informers): the shared full informer when
   * one was asked for already, else one that lists and watches metadata only (PartialObjectMetadata),
   * so that a resource no other controller watches costs its metadata per event rather than the whole
   * object. A full informer asked for later is a second watch.
   */
  metadataInformerFor(res: ResourceRef): Informer {
    const key = refKey(res);
    const full = this.informers.get(key);
    if (full) return full;
    let inf = this.metadataInformers.get(key);
    if (!inf) {
      inf = this.make(res, { metadataOnly: true });
      this.metadataInformers.set(key, inf);
    }
    return inf;
  }

  /** a new informer over all namespaces with the factory's options, started at once if the factory runs */
  private make(res: ResourceRef, extra: { fieldSelector?: string; metadataOnly?: boolean }): Informer {
    const inf = new Informer<KObject>({
      client: this.opts.client, resource: { group: res.group, version: res.version, plural: res.plural },
      clock: this.opts.clock, resyncPeriodMs: this.opts.resyncPeriodMs, onError: this.opts.onError, ...extra,
    });
    if (this.signal && !this.signal.aborted) this.runs.push(inf.run(this.signal));
    return inf;
  }

  /** Starts every informer asked for so far (and later ones as they are asked for). Returns at once. */
  start(signal: AbortSignal): void {
    if (this.signal) return;
    this.signal = signal;
    for (const inf of [...this.informers.values(), ...this.metadataInformers.values()]) this.runs.push(inf.run(signal));
  }

  /** Resolves true when every informer asked for so far has synced; false if signal aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    return waitForCacheSync(signal, ...this.informers.values(), ...this.metadataInformers.values());
  }

  /** Resolves once every started informer has stopped (after the start signal aborted). */
  async stopped(): Promise<void> { await Promise.all(this.runs); }
}

/** A ControllerContext over one client, with recorders cached per component. */
export function newControllerContext(client: RestClient, opts: { clock?: Clock; resyncPeriodMs?: number } = {}): ControllerContext {
  const clock = opts.clock ?? realClock;
  const informers = new SharedInformers({ client, clock, resyncPeriodMs: opts.resyncPeriodMs });
  const recorders = new Map<string, EventRecorder>();
  return {
    client, informers, clock,
    recorder(component: string): EventRecorder {
      let r = recorders.get(component);
      if (!r) recorders.set(component, (r = new EventRecorder({ client, component, clock })));
      return r;
    },
  };
}
