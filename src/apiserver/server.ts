// The API server: store → watch cache → registry → HTTPS handler. `startApiServer` is used by
// `kyb server` and by the tests (which may ask for plain HTTP and a memory store).
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { chmodSync, rmSync } from 'node:fs';
import type { Store } from '../storage/store.js';
import { resources, findResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { isStatusError } from '../machinery/status.js';
import { WatchCache } from './watch-cache.js';
import { Registry, NAMESPACE_DEF } from './registry.js';
import { Discovery } from './discovery.js';
import { ApiHandler, type HandlerOptions } from './handler.js';
import { Authenticator, type UserInfo } from './auth.js';
import { TunnelServer } from './tunnel.js'; // streaming: node tunnels
import { StreamingProxy } from './streaming-proxy.js'; // streaming: pods/log|exec|attach|portforward
import { installServiceAllocation } from './service-alloc.js'; // services: ClusterIP/NodePort allocation, default/kubernetes
import { installServiceAccountTokens } from './serviceaccount-admission.js'; // service-account tokens
import { MetricsApi } from './metrics-api.js'; // metrics.k8s.io
import { instrumentHandler, instrumentUpgrade, metricsRoute } from './metrics.js'; // prometheus
import { RbacAuthorizer, ensureBootstrapPolicy } from './rbac.js'; // rbac

export interface ApiServerOptions {
  store: Store;
  port?: number; // 0 = any
  host?: string;
  tls?: { cert: string; key: string; clientCa?: string };
  /** bearer tokens accepted, with their users */
  tokens?: { token: string; user: UserInfo }[];
  /** when false, requests need no credentials (tests over plain HTTP only) */
  requireAuth?: boolean;
  subresourceHandlers?: HandlerOptions['subresourceHandlers'];
  /** authenticated routes outside the registry (see HandlerOptions.routes) */
  routes?: HandlerOptions['routes'];
  /** events kept per resource for watch resumption (default 10000); older resourceVersions get 410 */
  watchCacheSize?: number;
  /** services: the ClusterIP range (default 10.43.0.0/16) and the NodePort range (default 30000-32767) */
  serviceCIDR?: string;
  serviceNodePortRange?: string;
  /** service-account signing key (PEM): enables serviceaccounts/token, JWT authentication and the
   *  kube-api-access volume admission */
  serviceAccountKey?: string;
  /** the address default/kubernetes' endpoints name (what pods reach at the Service's ClusterIP); default: host */
  advertiseAddress?: string;
  /**
   * Also serve the API over plain HTTP on this Unix socket (made mode 0600; a stale one is replaced),
   * for `kyb server`'s own components in their worker thread: the same handler and credentials,
   * without TLS and the loopback TCP stack on every request and watch event of the scheduler and
   * the controllers.
   */
  localSocket?: string;
  /** 'RBAC' (default): roles and bindings decide, as upstream's `--authorization-mode=RBAC`;
   *  'AlwaysAllow': every authenticated user may do everything */
  authorization?: 'RBAC' | 'AlwaysAllow';
}

export interface ApiServer {
  url: string;
  port: number;
  registry: Registry;
  handler: ApiHandler;
  server: Server;
  /** node agents' tunnels (streaming: logs, exec, attach, port-forward) */
  tunnels: TunnelServer;
  close(): Promise<void>;
}

export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const cache = new WatchCache(opts.store, '/registry/', opts.watchCacheSize);
  await cache.start();
  const registry = new Registry(opts.store, cache);
  const services = installServiceAllocation(registry, { serviceCIDR: opts.serviceCIDR, nodePortRange: opts.serviceNodePortRange }); // services
  NAMESPACE_DEF.def = findResource('', 'v1', 'namespaces');
  const auth = new Authenticator(opts.requireAuth ?? true);
  for (const t of opts.tokens ?? []) auth.addToken(t.token, t.user);
  const host = opts.host ?? '127.0.0.1';
  const discovery = new Discovery(resources, { autoscaling: 'v2' }, `${host}:${opts.port ?? 6443}`);
  let ready = false;
  // streaming: pod log/exec/attach/portforward are proxied to the pod's node agent over its tunnel
  const tunnels = new TunnelServer();
  const authorizer = opts.authorization === 'AlwaysAllow' ? undefined : new RbacAuthorizer(registry); // rbac
  const streaming = new StreamingProxy({ registry, tunnels, auth, authorizer });
  const saTokens = opts.serviceAccountKey ? installServiceAccountTokens(registry, auth, opts.serviceAccountKey) : undefined; // service-account tokens
  const subresourceHandlers = { ...streaming.subresourceHandlers, ...saTokens?.subresourceHandlers, ...opts.subresourceHandlers };
  const routes = [...(opts.routes ?? [])];
  routes.push(new MetricsApi({ registry, tunnels })); // metrics.k8s.io: after opts.routes, which may override it
  routes.push(metricsRoute()); // prometheus: this thread's metrics at /metrics, unless opts.routes serves it
  const handler = new ApiHandler({ registry, discovery, auth, subresourceHandlers, routes, ready: () => ready, authorizer });
  const handle = instrumentHandler(handler.handle); // prometheus: apiserver_request_* metrics
  const server: Server = opts.tls
    ? (createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.clientCa, requestCert: !!opts.tls.clientCa, rejectUnauthorized: false }, handle) as unknown as Server)
    : createHttpServer(handle);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0; // watches are long
  server.on('upgrade', instrumentUpgrade(streaming.handleUpgrade)); // prometheus // streaming: node tunnels, exec/attach/portforward upgrades
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 6443, host, () => { server.off('error', reject); resolve(); });
  });
  const local = opts.localSocket ? await listenLocal(opts.localSocket, handle, instrumentUpgrade(streaming.handleUpgrade)) : undefined;
  await ensureSystemNamespaces(registry);
  if (authorizer) await ensureBootstrapPolicy(registry); // rbac
  await services.startKubernetesService({ port: (server.address() as AddressInfo).port, host, advertiseAddress: opts.advertiseAddress }); // services: default/kubernetes
  ready = true;
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url, port, registry, handler, server, tunnels,
    async close() {
      handler.closeWatches();
      services.stop(); // services
      streaming.close(); // upgraded connections are not closed by server.close()
      tunnels.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      if (local) {
        await new Promise<void>((resolve) => { local.close(() => resolve()); local.closeAllConnections?.(); });
        rmSync(opts.localSocket!, { force: true });
      }
      cache.stop();
    },
  };
}

async function ensureSystemNamespaces(registry: Registry): Promise<void> {
  const def = findResource('', 'v1', 'namespaces')!;
  for (const name of SYSTEM_NAMESPACES) {
    const obj: KObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } };
    try {
      await registry.create(def, undefined, obj);
    } catch (e) {
      if (!isStatusError(e, 'AlreadyExists')) throw e;
    }
  }
}

/** The plain-HTTP listener on a Unix socket (ApiServerOptions.localSocket). */
async function listenLocal(path: string, handle: (req: IncomingMessage, res: ServerResponse) => void, upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): Promise<Server> {
  rmSync(path, { force: true });
  const local = createHttpServer(handle);
  local.keepAliveTimeout = 65_000;
  local.headersTimeout = 66_000;
  local.requestTimeout = 0;
  local.on('upgrade', upgrade);
  await new Promise<void>((resolve, reject) => {
    local.once('error', reject);
    // the socket is made with the process's umask; narrow it before anyone can connect
    const old = process.umask(0o177);
    try { local.listen(path, () => { local.off('error', reject); resolve(); }); } finally { process.umask(old); }
  });
  chmodSync(path, 0o600);
  return local;
}
