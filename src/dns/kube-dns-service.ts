// The `kube-dns` Service in kube-system that publishes the cluster DNS server at its well-known
// address (10.43.0.10 by default, what pods' resolv.conf names), so `kubectl get svc -n kube-system`
// shows it as on any cluster.
//
// The server is not a pod: it runs inside `kyb server` and listens on the node's own address. So the
// Service has no selector, and this module writes its endpoints itself — one EndpointSlice (managed by
// `dns.kybernetes.io`, owned by the Service) and, for `kubectl get/describe`, the Endpoints object
// (labelled skip-mirror so no mirroring controller copies it into a second slice). The Service proxy
// then treats 10.43.0.10:53 like any ClusterIP: it DNATs it to <node IP>:<port> where the server
// answers. spec.clusterIP is always set explicitly (it does not depend on ClusterIP allocation).
//
// Both functions create what is missing and repair what drifted (a changed clusterIP is immutable,
// so the Service is deleted and created again); they are idempotent and safe to call repeatedly.
import { isIPv4 } from 'node:net';
import type { KObject } from '../api/types.js';
import { isStatusError } from '../machinery/status.js';
import type { ResourceRef, RestClient } from '../client/index.js';
import type { ServiceObj, EndpointSliceObj } from './cluster-zone.js';
import { SERVICE_NAME_LABEL } from './cluster-zone.js';

export const DNS_NAMESPACE = 'kube-system';
export const DNS_SERVICE_NAME = 'kube-dns';
export const DNS_MANAGED_BY = 'dns.kybernetes.io';
export const DEFAULT_CLUSTER_DNS_IP = '10.43.0.10';

const SERVICES: ResourceRef = { group: '', version: 'v1', plural: 'services' };
const ENDPOINTS: ResourceRef = { group: '', version: 'v1', plural: 'endpoints' };
const SLICES: ResourceRef = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };
const NAMESPACES: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };

const LABELS = { 'k8s-app': 'kube-dns', 'kubernetes.io/cluster-service': 'true', 'kubernetes.io/name': 'KubeDNS', 'app.kubernetes.io/managed-by': 'kybernetes' };

interface PortSpec { name: string; port: number; protocol: string; targetPort: number }

function desiredPorts(targetPort: number): PortSpec[] {
  return [
    { name: 'dns', port: 53, protocol: 'UDP', targetPort },
    { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort },
  ];
}

async function getOrUndefined<T extends KObject>(client: RestClient, res: ResourceRef, ns: string, name: string): Promise<T | undefined> {
  try { return await client.get<T>(res, ns, name); } catch (e) { if (isStatusError(e, 'NotFound')) return undefined; throw e; }
}

async function ensureNamespace(client: RestClient): Promise<void> {
  if (await getOrUndefined(client, NAMESPACES, '', DNS_NAMESPACE)) return;
  try {
    await client.create(NAMESPACES, null, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DNS_NAMESPACE } });
  } catch (e) { if (!isStatusError(e, 'AlreadyExists')) throw e; }
}

function serviceDrifted(svc: ServiceObj, clusterIP: string, targetPort: number): boolean {
  const s = svc.spec ?? {};
  if ((s.type ?? 'ClusterIP') !== 'ClusterIP') return true;
  if (s.selector && Object.keys(s.selector).length > 0) return true;
  const want = desiredPorts(targetPort);
  const have = (s.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP', targetPort: p.targetPort }));
  if (have.length !== want.length) return true;
  for (let i = 0; i < want.length; i++) {
    const h = have[i], w = want[i];
    if (h.name !== w.name || h.port !== w.port || h.protocol !== w.protocol || Number(h.targetPort) !== w.targetPort) return true;
  }
  const labels = svc.metadata?.labels ?? {};
  if (Object.entries(LABELS).some(([k, v]) => labels[k] !== v)) return true;
  return s.clusterIP !== clusterIP;
}

/**
 * Creates or repairs kube-system/kube-dns: ClusterIP `clusterIP`, ports 53/UDP `dns` and 53/TCP
 * `dns-tcp` (targetPort: where the server listens, default 53), no selector. Creates kube-system if
 * missing. Resolves with the Service as stored.
 */
export async function ensureDnsService(client: RestClient, clusterIP = DEFAULT_CLUSTER_DNS_IP, opts: { targetPort?: number } = {}): Promise<ServiceObj> {
  if (!isIPv4(clusterIP)) throw new Error(`dns: cluster DNS address ${JSON.stringify(clusterIP)} is not an IPv4 address`);
  const targetPort = opts.targetPort ?? 53;
  await ensureNamespace(client);
  for (let attempt = 0; ; attempt++) {
    const cur = await getOrUndefined<ServiceObj>(client, SERVICES, DNS_NAMESPACE, DNS_SERVICE_NAME);
    try {
      if (!cur) {
        return await client.create<ServiceObj>(SERVICES, DNS_NAMESPACE, {
          apiVersion: 'v1', kind: 'Service',
          metadata: { name: DNS_SERVICE_NAME, namespace: DNS_NAMESPACE, labels: { ...LABELS }, annotations: { 'kybernetes.io/served-by': 'kyb server (built-in cluster DNS)' } },
          spec: {
            type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
            sessionAffinity: 'None', ports: desiredPorts(targetPort),
          },
        });
      }
      if (!serviceDrifted(cur, clusterIP, targetPort)) return cur;
      if (cur.spec?.clusterIP !== clusterIP) {
        // clusterIP is immutable: replace the Service (its slice goes with it through the owner reference)
        await client.delete(SERVICES, DNS_NAMESPACE, DNS_SERVICE_NAME, { preconditions: { uid: cur.metadata?.uid } });
        continue;
      }
      const next = structuredClone(cur);
      next.metadata = { ...next.metadata, labels: { ...(next.metadata?.labels ?? {}), ...LABELS } };
      next.spec = { ...next.spec, type: 'ClusterIP', ports: desiredPorts(targetPort) };
      delete next.spec.selector;
      return await client.update<ServiceObj>(SERVICES, DNS_NAMESPACE, next);
    } catch (e) {
      const retry = isStatusError(e, 'Conflict') || isStatusError(e, 'AlreadyExists') || isStatusError(e, 'NotFound');
      if (!retry || attempt >= 5) {
        if (isStatusError(e, 'Invalid') || isStatusError(e, 'AlreadyExists')) {
          throw new Error(`dns: cannot publish ${DNS_NAMESPACE}/${DNS_SERVICE_NAME} at ${clusterIP}: ${(e as Error).message}`);
        }
        throw e;
      }
    }
  }
}

export interface DnsEndpointsOptions {
  /** the node addresses the server listens on (IPv4) */
  addresses: string[];
  /** the port it listens on; default 53 */
  port?: number;
  nodeName?: string;
}

/**
 * Creates or repairs the endpoints of kube-dns: EndpointSlice kube-system/kube-dns (managed-by
 * dns.kybernetes.io) and Endpoints kube-system/kube-dns, both listing `addresses` with ports
 * dns/UDP and dns-tcp/TCP. The Service must exist (call ensureDnsService first); the slice is owned
 * by it so it goes away with it.
 */
export async function ensureDnsEndpoints(client: RestClient, o: DnsEndpointsOptions): Promise<void> {
  const addresses = [...new Set(o.addresses)].filter((a) => isIPv4(a) && !a.startsWith('127.') && a !== '0.0.0.0').sort();
  if (addresses.length === 0) throw new Error(`dns: no routable IPv4 address to publish for kube-dns (got ${JSON.stringify(o.addresses)}); pods could not reach a server on loopback`);
  const port = o.port ?? 53;
  const svc = await client.get<ServiceObj>(SERVICES, DNS_NAMESPACE, DNS_SERVICE_NAME);
  const owner = { apiVersion: 'v1', kind: 'Service', name: DNS_SERVICE_NAME, uid: svc.metadata!.uid!, controller: true, blockOwnerDeletion: true };
  const slice: EndpointSliceObj = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: {
      name: DNS_SERVICE_NAME, namespace: DNS_NAMESPACE,
      labels: { [SERVICE_NAME_LABEL]: DNS_SERVICE_NAME, 'endpointslice.kubernetes.io/managed-by': DNS_MANAGED_BY, 'k8s-app': 'kube-dns' },
      ownerReferences: [owner],
    },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false }, ...(o.nodeName ? { nodeName: o.nodeName } : {}) })),
    ports: [{ name: 'dns', port, protocol: 'UDP' }, { name: 'dns-tcp', port, protocol: 'TCP' }],
  };
  await upsert(client, SLICES, slice, (cur) => {
    const c = cur as EndpointSliceObj;
    return JSON.stringify([c.endpoints?.map((e) => [e.addresses, e.conditions?.ready, e.nodeName ?? null]), c.ports?.map((p) => [p.name, p.port, p.protocol]), c.metadata?.labels?.[SERVICE_NAME_LABEL], c.metadata?.ownerReferences?.[0]?.uid])
      === JSON.stringify([slice.endpoints.map((e) => [e.addresses, e.conditions?.ready, e.nodeName ?? null]), slice.ports!.map((p) => [p.name, p.port, p.protocol]), DNS_SERVICE_NAME, owner.uid]);
  });
  const endpoints: KObject = {
    apiVersion: 'v1', kind: 'Endpoints',
    metadata: { name: DNS_SERVICE_NAME, namespace: DNS_NAMESPACE, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true', 'k8s-app': 'kube-dns' }, ownerReferences: [owner] },
    subsets: [{
      addresses: addresses.map((ip) => ({ ip, ...(o.nodeName ? { nodeName: o.nodeName } : {}) })),
      ports: [{ name: 'dns', port, protocol: 'UDP' }, { name: 'dns-tcp', port, protocol: 'TCP' }],
    }],
  };
  await upsert(client, ENDPOINTS, endpoints, (cur) => JSON.stringify(cur.subsets) === JSON.stringify(endpoints.subsets) && (cur.metadata?.ownerReferences as { uid?: string }[] | undefined)?.[0]?.uid === owner.uid);
}

async function upsert(client: RestClient, res: ResourceRef, want: KObject, same: (cur: KObject) => boolean): Promise<void> {
  const ns = want.metadata!.namespace!, name = want.metadata!.name!;
  for (let attempt = 0; ; attempt++) {
    const cur = await getOrUndefined(client, res, ns, name);
    try {
      if (!cur) { await client.create(res, ns, want); return; }
      if (same(cur)) return;
      await client.update(res, ns, { ...want, metadata: { ...want.metadata, resourceVersion: cur.metadata?.resourceVersion } });
      return;
    } catch (e) {
      const retry = isStatusError(e, 'Conflict') || isStatusError(e, 'AlreadyExists') || isStatusError(e, 'NotFound');
      if (!retry || attempt >= 5) throw e;
    }
  }
}
