// Discovery documents (legacy and aggregated) and the OpenAPI v3 documents kubectl's validation
// needs, all derived from the resource table and built once at start. Groups served outside the
// registry are added to it here: metrics.k8s.io/v1beta1 (src/apiserver/metrics-api.ts), so that
// `kubectl top` and the HorizontalPodAutoscaler find it as they would find metrics-server.
import { createHash } from 'node:crypto';
import type { ResourceDef } from '../api/types.js';

/** metrics.k8s.io/v1beta1, as metrics-server registers it: nodes (cluster) and pods (namespaced), get/list. */
export const METRICS_RESOURCES: ResourceDef[] = [
  { group: 'metrics.k8s.io', version: 'v1beta1', kind: 'NodeMetrics', listKind: 'NodeMetricsList', plural: 'nodes', singular: '', namespaced: false, verbs: ['get', 'list'], strategy: {}, virtual: true },
  { group: 'metrics.k8s.io', version: 'v1beta1', kind: 'PodMetrics', listKind: 'PodMetricsList', plural: 'pods', singular: '', namespaced: true, verbs: ['get', 'list'], strategy: {}, virtual: true },
];

export interface GroupInfo { group: string; versions: string[] /* preferred first */ }

function groupsOf(resources: ResourceDef[], preferred: Record<string, string>): GroupInfo[] {
  const order: string[] = [];
  const versions = new Map<string, string[]>();
  for (const r of resources) {
    if (!versions.has(r.group)) { versions.set(r.group, []); order.push(r.group); }
    const vs = versions.get(r.group)!;
    if (!vs.includes(r.version)) vs.push(r.version);
  }
  return order.map((group) => {
    const vs = versions.get(group)!;
    const pref = preferred[group];
    if (pref && vs.includes(pref)) vs.sort((a, b) => (a === pref ? -1 : b === pref ? 1 : 0));
    return { group, versions: vs };
  });
}

function subresourceKind(r: ResourceDef, s: NonNullable<ResourceDef['subresources']>[number]) {
  return { group: s.group ?? r.group, version: s.version ?? r.version, kind: s.kind ?? r.kind };
}

export class Discovery {
  readonly groups: GroupInfo[];
  private readonly byGV = new Map<string, ResourceDef[]>();
  readonly apiVersions: string;
  readonly apiGroupList: string;
  readonly aggregatedApi: string;
  readonly aggregatedApis: string;
  readonly resourceLists = new Map<string, string>(); // 'v1' | 'apps/v1' → APIResourceList JSON
  readonly groupDocs = new Map<string, string>(); // 'apps' → APIGroup JSON
  readonly openapiIndex: string;
  readonly openapiDocs = new Map<string, { body: string; hash: string }>(); // 'api/v1' | 'apis/apps/v1'

  readonly resources: ResourceDef[];

  /** `extra`: resources served outside the registry (default: metrics.k8s.io), added after the table's */
  constructor(table: ResourceDef[], preferred: Record<string, string> = {}, serverAddress = '127.0.0.1:6443', extra: ResourceDef[] = METRICS_RESOURCES) {
    const same = (a: ResourceDef, b: ResourceDef) => a.group === b.group && a.version === b.version && a.plural === b.plural;
    const resources = [...table, ...extra.filter((e) => !table.some((r) => same(r, e)))];
    this.resources = resources;
    this.groups = groupsOf(resources, preferred);
    for (const r of resources) {
      const gv = r.group ? `${r.group}/${r.version}` : r.version;
      if (!this.byGV.has(gv)) this.byGV.set(gv, []);
      this.byGV.get(gv)!.push(r);
    }
    const core = this.groups.find((g) => g.group === '');
    this.apiVersions = JSON.stringify({ kind: 'APIVersions', versions: core?.versions ?? ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] });
    const named = this.groups.filter((g) => g.group !== '');
    const apiGroup = (g: GroupInfo) => ({
      name: g.group,
      versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
    });
    this.apiGroupList = JSON.stringify({ kind: 'APIGroupList', apiVersion: 'v1', groups: named.map(apiGroup) });
    for (const g of named) this.groupDocs.set(g.group, JSON.stringify({ kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(g) }));
    for (const [gv, defs] of this.byGV) this.resourceLists.set(gv, JSON.stringify(this.resourceList(gv, defs)));
    const agg = (gs: GroupInfo[]) => JSON.stringify({
      kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {},
      items: gs.map((g) => ({
        metadata: { name: g.group, creationTimestamp: null },
        versions: g.versions.map((v) => ({
          version: v,
          freshness: 'Current',
          resources: (this.byGV.get(g.group ? `${g.group}/${v}` : v) ?? []).map((r) => this.aggregatedResource(r)),
        })),
      })),
    });
    this.aggregatedApi = agg(core ? [core] : []);
    this.aggregatedApis = agg(named);
    // OpenAPI v3
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const [gv, defs] of this.byGV) {
      const p = gv.includes('/') ? `apis/${gv}` : `api/${gv}`;
      const body = JSON.stringify(this.openapiDoc(gv, defs));
      const hash = createHash('sha512').update(body).digest('hex').toUpperCase();
      this.openapiDocs.set(p, { body, hash });
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    }
    this.openapiIndex = JSON.stringify({ paths });
  }

  private resourceList(gv: string, defs: ResourceDef[]) {
    const resources: unknown[] = [];
    for (const r of defs) {
      const e: Record<string, unknown> = {
        name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs,
      };
      if (r.shortNames?.length) e.shortNames = r.shortNames;
      if (r.categories?.length) e.categories = r.categories;
      e.storageVersionHash = createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11);
      resources.push(e);
      for (const s of r.subresources ?? []) {
        const k = subresourceKind(r, s);
        const se: Record<string, unknown> = { name: `${r.plural}/${s.name}`, singularName: '', namespaced: r.namespaced, kind: k.kind, verbs: s.verbs };
        if (k.group !== r.group || k.version !== r.version) { se.group = k.group; se.version = k.version; }
        resources.push(se);
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
  }

  private aggregatedResource(r: ResourceDef) {
    const e: Record<string, unknown> = {
      resource: r.plural,
      responseKind: { group: r.group, version: r.version, kind: r.kind },
      scope: r.namespaced ? 'Namespaced' : 'Cluster',
      singularResource: r.singular,
      verbs: r.verbs,
    };
    if (r.shortNames?.length) e.shortNames = r.shortNames;
    if (r.categories?.length) e.categories = r.categories;
    if (r.subresources?.length) {
      e.subresources = r.subresources.map((s) => ({ subresource: s.name, responseKind: subresourceKind(r, s), verbs: s.verbs }));
    }
    return e;
  }

  private openapiDoc(gv: string, defs: ResourceDef[]) {
    const [group, version] = gv.includes('/') ? gv.split('/') : ['', gv];
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const paths: Record<string, unknown> = {};
    const schemas: Record<string, unknown> = {};
    const patchTypes = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];
    for (const r of defs) {
      if (r.virtual || !r.verbs.includes('patch')) continue;
      const gvk = { group, version, kind: r.kind };
      const p = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}/{name}` : `${base}/${r.plural}/{name}`;
      const schemaName = `io.k8s.kybernetes.${group || 'core'}.${version}.${r.kind}`;
      paths[p] = {
        patch: {
          description: `partially update the specified ${r.kind}`,
          operationId: `patch${r.kind}`,
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': gvk,
          parameters: [
            { name: 'dryRun', in: 'query', schema: { type: 'string' } },
            { name: 'fieldManager', in: 'query', schema: { type: 'string' } },
            { name: 'fieldValidation', in: 'query', schema: { type: 'string' } },
            { name: 'force', in: 'query', schema: { type: 'boolean' } },
          ],
          requestBody: { content: Object.fromEntries(patchTypes.map((t) => [t, { schema: { type: 'object' } }])), required: true },
          responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName}` } } } } },
        },
      };
      schemas[schemaName] = {
        type: 'object',
        description: `${r.kind} (schema details are validated by the server)`,
        'x-kubernetes-group-version-kind': [gvk],
        'x-kubernetes-preserve-unknown-fields': true,
      };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
  }
}
