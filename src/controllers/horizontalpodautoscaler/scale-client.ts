// How the HPA controller reads and writes a target's replica count: through the `/scale` subresource
// (autoscaling/v1 Scale) of whatever `scaleTargetRef` names, as upstream's scale client does. The
// kind and the group of `apiVersion` are mapped to a resource with the resource table (upstream's
// RESTMapper): Deployments, ReplicaSets, StatefulSets and ReplicationControllers all have one.
import { resources } from '../../api/resources.js';
import { resourcePath, type ResourceRef } from '../../client/index.js';
import type { KObject } from '../../api/types.js';
import type { CrossVersionObjectReference, Scale } from './types.js';

export interface ScaleClient {
  /** The resource that kind/apiVersion name; throws (upstream's wording) when there is none. */
  resourceFor(ref: CrossVersionObjectReference): ResourceRef;
  getScale(res: ResourceRef, namespace: string, name: string): Promise<Scale>;
  /** PUT of the whole Scale (its resourceVersion is the precondition). */
  updateScale(res: ResourceRef, namespace: string, scale: Scale): Promise<Scale>;
}

/** Upstream's schema.ParseGroupVersion: '' → core, 'v1' → core/v1, 'apps/v1' → apps/v1. */
export function parseGroupVersion(apiVersion: string | undefined): { group: string; version: string } {
  const gv = apiVersion ?? '';
  if (gv === '' || gv === '/') return { group: '', version: '' };
  const parts = gv.split('/');
  if (parts.length === 1) return { group: '', version: parts[0]! };
  if (parts.length === 2) return { group: parts[0]!, version: parts[1]! };
  throw new Error(`unexpected GroupVersion string: ${gv}`);
}

/** The scalable resource for kind in apiVersion's group (any served version; the table's first wins). */
export function scaleResourceFor(ref: CrossVersionObjectReference): ResourceRef {
  const { group } = parseGroupVersion(ref.apiVersion);
  const def = resources.find((r) => r.group === group && r.kind === ref.kind && !r.virtual);
  if (!def) throw new Error(`no matches for kind "${ref.kind}" in group "${group}"`);
  return { group: def.group, version: def.version, plural: def.plural };
}

/** What the REST scale client needs of a client; RestClient fits. */
export interface ScaleTransport {
  getSubresource<R = unknown>(res: ResourceRef, ns: string | undefined | null, name: string, sub: string): Promise<R>;
  raw(method: string, path: string, body?: unknown, opts?: { contentType?: string }): Promise<unknown>;
}

export class RestScaleClient implements ScaleClient {
  constructor(private readonly client: ScaleTransport) {}

  resourceFor(ref: CrossVersionObjectReference): ResourceRef { return scaleResourceFor(ref); }

  getScale(res: ResourceRef, namespace: string, name: string): Promise<Scale> {
    return this.client.getSubresource<Scale>(res, namespace, name, 'scale');
  }

  async updateScale(res: ResourceRef, namespace: string, scale: Scale): Promise<Scale> {
    const body: KObject = { ...scale, apiVersion: 'autoscaling/v1', kind: 'Scale' };
    return (await this.client.raw('PUT', resourcePath(res, namespace, scale.metadata!.name!, 'scale'), body, { contentType: 'application/json' })) as Scale;
  }
}
