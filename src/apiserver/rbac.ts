// Authorization: RBAC, as upstream's authorizer chain with `--authorization-mode=RBAC` decides.
//
// A request is allowed when the user is in the group system:masters (upstream's privileged-group
// short cut, so the admin, the node agents and `kyb server`'s own components cost nothing here), or
// when some rule reaches it: the rules of the ClusterRoles bound to the user by ClusterRoleBindings,
// and, for a request in a namespace, those of the Roles and ClusterRoles bound by RoleBindings in that
// namespace. Subjects match by User name, by Group (one of the user's groups), or by ServiceAccount
// (user `system:serviceaccount:<namespace>:<name>`). Everything else is denied: 403 Forbidden with
// upstream's wording. The policy is read from the watch cache, so a new binding counts at once.
//
// A rule matches a resource request when its verbs, apiGroups and resources cover the request ('*'
// for any; `pods/log` for a subresource, `*/scale` for a subresource of any resource) and its
// resourceNames, when it has any, include the object's name. A non-resource request (discovery,
// /version, /openapi, /metrics) is matched by nonResourceURLs, exactly or by a prefix ending in '*',
// with the lower-case HTTP method as the verb. ClusterRole aggregation is not evaluated: the default
// admin, edit and view roles are written with their rules in place.
//
// At start the server writes upstream's bootstrap policy where it is missing: cluster-admin bound to
// system:masters; system:discovery, system:basic-user and system:public-info-viewer bound to
// authenticated users (the last one to unauthenticated ones too); and the user-facing roles admin,
// edit and view, for users to bind.
import type { KObject, ResourceDef } from '../api/types.js';
import { findResource } from '../api/resources.js';
import type { UserInfo } from './auth.js';
import type { Registry } from './registry.js';
import type { RequestInfo } from './request.js';
import { isStatusError, StatusError } from '../machinery/status.js';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject { kind: string; name: string; namespace?: string; apiGroup?: string }
interface RoleRef { kind: string; name: string; apiGroup?: string }
type Binding = KObject & { subjects?: Subject[]; roleRef?: RoleRef };
type Role = KObject & { rules?: PolicyRule[] };

/** What a request asks to do, in authorization terms (upstream's authorizer.Attributes). */
export type Attributes =
  | { resourceRequest: true; verb: string; apiGroup: string; resource: string; subresource?: string; name?: string; namespace?: string }
  | { resourceRequest: false; verb: string; path: string };

export interface Decision { allowed: boolean; reason?: string }

export const MASTERS = 'system:masters';

/** The authorization attributes of an HTTP request (resource requests per parseRequestInfo). */
export function requestAttributes(method: string, path: string, info: RequestInfo | undefined, query: URLSearchParams): Attributes {
  if (!info?.resource) return { resourceRequest: false, verb: method.toLowerCase(), path };
  const def = findResource(info.group, info.version, info.resource);
  // a Namespace named in the path is its own namespace (upstream's RequestInfo does the same), so a
  // RoleBinding in it can grant reading it
  const namespace = def && !def.namespaced ? (def.kind === 'Namespace' && info.name ? info.name : undefined) : info.namespace;
  const sub = info.subresource?.split('/')[0];
  let verb: string;
  switch (method) {
    case 'GET': case 'HEAD':
      if (sub === 'exec' || sub === 'attach' || sub === 'portforward') verb = 'create'; // a WebSocket upgrade is a GET
      else verb = info.name ? 'get' : (query.get('watch') === 'true' || query.get('watch') === '1') ? 'watch' : 'list';
      break;
    case 'POST': verb = 'create'; break;
    case 'PUT': verb = 'update'; break;
    case 'PATCH': verb = 'patch'; break;
    case 'DELETE': verb = info.name ? 'delete' : 'deletecollection'; break;
    default: verb = method.toLowerCase();
  }
  return { resourceRequest: true, verb, apiGroup: info.group, resource: info.resource, subresource: sub, name: info.name, namespace };
}

function has(list: string[] | undefined, v: string): boolean {
  return !!list && (list.includes('*') || list.includes(v));
}

/** Whether one rule covers the request (upstream's RuleAllows). */
export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) {
    return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  const want = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceOk = (rule.resources ?? []).some((r) => r === '*' || r === want || (!!a.subresource && r === `*/${a.subresource}`));
  if (!resourceOk) return false;
  if (rule.resourceNames?.length) return !!a.name && rule.resourceNames.includes(a.name);
  return true;
}

function subjectMatches(s: Subject, user: UserInfo, bindingNamespace: string | undefined): boolean {
  switch (s.kind) {
    case 'User': return s.name === user.username;
    case 'Group': return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace || bindingNamespace;
      return !!ns && user.username === `system:serviceaccount:${ns}:${s.name}`;
    }
    default: return false;
  }
}

export class RbacAuthorizer {
  private readonly defs: { crb: ResourceDef; cr: ResourceDef; rb: ResourceDef; r: ResourceDef };

  constructor(private readonly registry: Registry) {
    const d = (plural: string) => findResource('rbac.authorization.k8s.io', 'v1', plural)!;
    this.defs = { crb: d('clusterrolebindings'), cr: d('clusterroles'), rb: d('rolebindings'), r: d('roles') };
  }

  authorize(user: UserInfo, a: Attributes): Decision {
    if (user.groups.includes(MASTERS)) return { allowed: true };
    const namespace = a.resourceRequest ? a.namespace : undefined;
    let found: string | undefined;
    this.visitRules(user, namespace, (rule, via) => {
      if (!ruleAllows(rule, a)) return false;
      found = via;
      return true;
    });
    return found ? { allowed: true, reason: `RBAC: allowed by ${found}` } : { allowed: false };
  }

  /** every rule that applies to the user in the namespace (cluster-wide ones included) */
  rulesFor(user: UserInfo, namespace: string | undefined): PolicyRule[] {
    if (user.groups.includes(MASTERS)) return [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];
    const out: PolicyRule[] = [];
    this.visitRules(user, namespace, (rule) => { out.push(rule); return false; });
    return out;
  }

  /** calls fn for each rule bound to the user until it returns true */
  private visitRules(user: UserInfo, namespace: string | undefined, fn: (rule: PolicyRule, via: string) => boolean): void {
    const cache = (def: ResourceDef) => this.registry.resourceCache(def).objects;
    const clusterRole = (name: string) => cache(this.defs.cr).get(this.registry.key(this.defs.cr, undefined, name))?.obj as Role | undefined;
    for (const e of cache(this.defs.crb).values()) {
      const b = e.obj as Binding;
      if (b.roleRef?.kind !== 'ClusterRole' || !b.subjects?.some((s) => subjectMatches(s, user, undefined))) continue;
      for (const rule of clusterRole(b.roleRef.name)?.rules ?? []) {
        if (fn(rule, `ClusterRoleBinding "${b.metadata?.name}" of ClusterRole "${b.roleRef.name}"`)) return;
      }
    }
    if (!namespace) return;
    const prefix = `${this.registry.storagePrefix(this.defs.rb)}${namespace}/`;
    for (const [key, e] of cache(this.defs.rb)) {
      if (!key.startsWith(prefix)) continue;
      const b = e.obj as Binding;
      if (!b.roleRef || !b.subjects?.some((s) => subjectMatches(s, user, namespace))) continue;
      const role = b.roleRef.kind === 'ClusterRole' ? clusterRole(b.roleRef.name)
        : b.roleRef.kind === 'Role' ? cache(this.defs.r).get(this.registry.key(this.defs.r, namespace, b.roleRef.name))?.obj as Role | undefined
        : undefined;
      for (const rule of role?.rules ?? []) {
        if (fn(rule, `RoleBinding "${b.metadata?.name}/${namespace}" of ${b.roleRef.kind} "${b.roleRef.name}"`)) return;
      }
    }
  }
}

/** 403 with upstream's wording (its forbidden message from the authorizer attributes). */
export function forbidden(user: UserInfo, a: Attributes): StatusError {
  if (!a.resourceRequest) {
    return new StatusError(403, 'Forbidden', `forbidden: User "${user.username}" cannot ${a.verb} path "${a.path}"`, {});
  }
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource; // upstream's GroupResource
  const subject = a.name ? `${qualified} "${a.name}"` : qualified;
  return new StatusError(403, 'Forbidden',
    `${subject} is forbidden: User "${user.username}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" ${scope}`,
    { ...(a.name ? { name: a.name } : {}), ...(a.apiGroup ? { group: a.apiGroup } : {}), kind: a.resource });
}

// ------------------------------------------------------------------------------------ bootstrap

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const BOOTSTRAP_META = { labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } };

/** view: read most namespaced things, not Secrets (upstream's view, aggregation written out) */
const VIEW_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'pods/log', 'pods/status', 'replicationcontrollers', 'replicationcontrollers/scale', 'replicationcontrollers/status', 'serviceaccounts', 'services', 'services/status', 'bindings', 'events', 'limitranges', 'namespaces', 'namespaces/status', 'resourcequotas', 'resourcequotas/status'], verbs: READ },
  { apiGroups: ['apps'], resources: ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status'], verbs: READ },
  { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers', 'horizontalpodautoscalers/status'], verbs: READ },
  { apiGroups: ['batch'], resources: ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status'], verbs: READ },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingresses/status', 'networkpolicies'], verbs: READ },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets', 'poddisruptionbudgets/status'], verbs: READ },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: READ },
  { apiGroups: ['metrics.k8s.io'], resources: ['pods', 'nodes'], verbs: READ },
];
/** edit: view plus writes of workloads, config and Secrets, and exec/attach/port-forward */
const EDIT_RULES: PolicyRule[] = [
  ...VIEW_RULES,
  { apiGroups: [''], resources: ['secrets'], verbs: [...READ, ...WRITE] },
  { apiGroups: [''], resources: ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'services/proxy'], verbs: ['create', 'get'] },
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  { apiGroups: [''], resources: ['configmaps', 'endpoints', 'events', 'persistentvolumeclaims', 'pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services'], verbs: WRITE },
  { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
  { apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale'], verbs: WRITE },
  { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: WRITE },
  { apiGroups: ['batch'], resources: ['cronjobs', 'jobs'], verbs: WRITE },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: WRITE },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'networkpolicies'], verbs: WRITE },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: WRITE },
];
/** admin: edit plus Roles and RoleBindings in the namespace */
const ADMIN_RULES: PolicyRule[] = [
  ...EDIT_RULES,
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings', 'roles'], verbs: [...READ, ...WRITE] },
  { apiGroups: ['authorization.k8s.io'], resources: ['localsubjectaccessreviews'], verbs: ['create'] },
];

export const BOOTSTRAP_CLUSTER_ROLES: Record<string, PolicyRule[]> = {
  'cluster-admin': [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, { nonResourceURLs: ['*'], verbs: ['*'] }],
  'system:discovery': [{ nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'], verbs: ['get'] }],
  'system:basic-user': [
    { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
  ],
  'system:public-info-viewer': [{ nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] }],
  admin: ADMIN_RULES,
  edit: EDIT_RULES,
  view: VIEW_RULES,
};

export const BOOTSTRAP_CLUSTER_ROLE_BINDINGS: Record<string, Subject[]> = {
  'cluster-admin': [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: MASTERS }],
  'system:discovery': [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
  'system:basic-user': [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
  'system:public-info-viewer': [
    { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' },
    { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' },
  ],
};

/** Writes the bootstrap ClusterRoles and ClusterRoleBindings that are missing (existing ones are kept). */
export async function ensureBootstrapPolicy(registry: Registry): Promise<void> {
  const cr = findResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
  const crb = findResource('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings')!;
  const create = async (def: ResourceDef, obj: KObject) => {
    try { await registry.create(def, undefined, obj); } catch (e) { if (!isStatusError(e, 'AlreadyExists')) throw e; }
  };
  for (const [name, rules] of Object.entries(BOOTSTRAP_CLUSTER_ROLES)) {
    if (registry.peek(cr, undefined, name)) continue;
    await create(cr, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name, ...BOOTSTRAP_META }, rules } as KObject);
  }
  for (const [name, subjects] of Object.entries(BOOTSTRAP_CLUSTER_ROLE_BINDINGS)) {
    if (registry.peek(crb, undefined, name)) continue;
    await create(crb, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name, ...BOOTSTRAP_META },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects,
    } as KObject);
  }
}

// ----------------------------------------------------------------------------------- impersonation

/**
 * The user a request acts as when it carries `Impersonate-User` / `Impersonate-Group` /
 * `Impersonate-Uid` headers (`kubectl --as`, `--as-group`), as upstream's impersonation filter: the
 * requester needs `impersonate` on users (or serviceaccounts, for `system:serviceaccount:<ns>:<name>`),
 * groups and uids, and the request then runs as that user, with `system:authenticated` added (and a
 * service account's groups when no group is given). undefined when there is nothing to impersonate.
 */
export function impersonate(
  headers: Record<string, string | string[] | undefined>, requester: UserInfo,
  authorize: (a: Attributes) => boolean,
): UserInfo | undefined {
  const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);
  const name = one(headers['impersonate-user']);
  const groupsRaw = headers['impersonate-group'];
  const groups = (Array.isArray(groupsRaw) ? groupsRaw : groupsRaw !== undefined ? [groupsRaw] : []).flatMap((g) => g.split(',').map((x) => x.trim())).filter(Boolean);
  const uid = one(headers['impersonate-uid']);
  if (name === undefined && groups.length === 0 && uid === undefined) return undefined;
  if (!name) throw new StatusError(500, 'InternalError', 'Internal error occurred: requested impersonation of groups or uid without impersonating a user', {});
  const checks: Attributes[] = [];
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
  checks.push(sa
    ? { resourceRequest: true, verb: 'impersonate', apiGroup: '', resource: 'serviceaccounts', name: sa[2], namespace: sa[1] }
    : { resourceRequest: true, verb: 'impersonate', apiGroup: '', resource: 'users', name });
  for (const g of groups) checks.push({ resourceRequest: true, verb: 'impersonate', apiGroup: '', resource: 'groups', name: g });
  if (uid) checks.push({ resourceRequest: true, verb: 'impersonate', apiGroup: 'authentication.k8s.io', resource: 'uids', name: uid });
  for (const a of checks) if (!authorize(a)) throw forbidden(requester, a);
  const all = groups.length ? [...groups] : sa ? ['system:serviceaccounts', `system:serviceaccounts:${sa[1]}`] : [];
  if (name !== 'system:anonymous' && !all.includes('system:authenticated')) all.push('system:authenticated');
  return { username: name, groups: all, ...(uid ? { uid } : {}) };
}

/**
 * The user a request acts as, allowed to make it: impersonation applied, then RBAC unless that user
 * is in system:masters (or there is no authorizer). Throws 403 Forbidden. `info` is asked for only
 * when a check is needed. Used by the request handler and by the upgrade path alike.
 */
export function authorizeRequest(
  authorizer: RbacAuthorizer | undefined, requester: UserInfo,
  req: { method?: string; headers: Record<string, string | string[] | undefined> },
  path: string, query: string | URLSearchParams, info: () => RequestInfo | undefined,
): UserInfo {
  const user = impersonate(req.headers, requester, (a) => !authorizer || authorizer.authorize(requester, a).allowed) ?? requester;
  if (authorizer && !user.groups.includes(MASTERS)) {
    const a = requestAttributes(req.method ?? 'GET', path, info(), typeof query === 'string' ? new URLSearchParams(query) : query);
    if (!authorizer.authorize(user, a).allowed) throw forbidden(user, a);
  }
  return user;
}
