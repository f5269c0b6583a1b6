// `kyb server`: the control plane in one process.
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { openStore } from '../storage/index.js';
import { startApiServer, type ApiServer } from '../apiserver/server.js';
import { ensurePki, ensureToken } from '../apiserver/pki.js';
import { ServiceCIDR, formatIPv4 } from '../apiserver/service-alloc.js';
import { internalIP } from '../node/host-info.js';
import { ensureServiceAccountKey } from '../apiserver/serviceaccount-token.js';
import { defaultTolerations } from '../apiserver/admission.js';
import { parseGoDuration } from '../machinery/duration.js';
import { renderKubeconfig, writeKubeconfig } from '../apiserver/kubeconfig.js';
import { parseFlags, usage, type FlagSpec } from './flags.js';
import { startComponents } from './components.js';
import { parseMetricResolution } from '../node/stats/metric-resolution.js'; // metrics.k8s.io
import { metricsRoute, collectProcessMetrics, type MetricJSON } from '../apiserver/metrics.js'; // prometheus
import { instrumentStore } from '../apiserver/store-metrics.js'; // prometheus

export const serverFlags: FlagSpec = {
  'data-dir': { type: 'string', help: 'state directory' },
  'https-listen-port': { type: 'number', default: 6443, help: 'API server port' },
  'bind-address': { type: 'string', default: '0.0.0.0', help: 'address the API server listens on' },
  'advertise-address': { type: 'string', help: "address pods and other hosts reach the API server at, in default/kubernetes' endpoints (default: the bind address, or for 0.0.0.0 the node's internal IP)" },
  'write-kubeconfig': { type: 'string', help: 'where to write the admin kubeconfig (default <data-dir>/kubeconfig.yaml)' },
  'write-kubeconfig-mode': { type: 'string', default: '0600', help: 'file mode of the kubeconfig' },
  token: { type: 'string', help: 'admin bearer token (default: generated once, kept in <data-dir>/token)' },
  'datastore-endpoint': { type: 'string', default: '', help: 'sqlite:///path/state.db (default) or memory://' },
  'tls-san': { type: 'list', default: [], help: 'extra host names or IPs for the serving certificate' },
  disable: { type: 'list', default: [], help: 'components to switch off (scheduler, controllers, agent, or a controller name)' },
  'disable-agent': { type: 'boolean', help: 'do not run a node agent (containers) on this host' },
  'cluster-cidr': { type: 'string', default: '10.42.0.0/16', help: 'pod network; each node gets a /24 of it' },
  'service-cidr': { type: 'string', default: '10.43.0.0/16', help: 'Service ClusterIP range (the first address is the kubernetes Service)' },
  'service-node-port-range': { type: 'string', default: '30000-32767', help: 'port range for NodePort Services' },
  'cluster-dns': { type: 'string', default: '10.43.0.10', help: "DNS server written into pods' resolv.conf" },
  'cluster-domain': { type: 'string', default: 'cluster.local', help: 'cluster domain' },
  'cluster-dns-upstream': { type: 'string', default: 'host', help: "where cluster DNS forwards other names: 'host' (the host's resolv.conf), 'none', or a comma-separated list of IPs" },
  'node-name': { type: 'string', help: "this host's node name (default: the host name)" },
  'private-registry': { type: 'string', help: 'registries.yaml for the agent (mirrors, auth, insecure registries)' },
  'disable-kube-proxy': { type: 'boolean', help: 'run no service proxy on this host' },
  'proxy-table': { type: 'string', help: "(hidden) the proxy's nftables table / iptables chain prefix (default 'kybernetes')" },
  'agent-run-dir': { type: 'string', default: '/run/kybernetes', help: '(hidden) runc state and conmon exit files of the agent' },
  'cgroup-parent': { type: 'string', default: '/kybernetes', help: '(hidden) cgroup under which the agent puts pods' },
  'pod-bridge': { type: 'string', default: 'kyb0', help: '(hidden) name of the pod network bridge' },
  'metric-resolution': { type: 'string', default: '15s', help: 'how often the agent samples pod and node CPU/memory for metrics.k8s.io (e.g. 15s, 1s)' }, // metrics.k8s.io
  'simulate-nodes': { type: 'number', default: 0, help: 'run N simulated (kwok-style) nodes that accept pods without containers' },
  profile: { type: 'string', default: 'default', help: "timing profile: 'default' (upstream timings) or 'fast' (node grace 8 s, default tolerations 10 s)" },
  'default-not-ready-toleration-seconds': { type: 'number', help: 'tolerationSeconds added to pods for the not-ready:NoExecute taint (default 300; 10 with --profile fast)' },
  'default-unreachable-toleration-seconds': { type: 'number', help: 'tolerationSeconds added to pods for the unreachable:NoExecute taint (default 300; 10 with --profile fast)' },
  'horizontal-pod-autoscaler-sync-period': { type: 'string', default: '15s', help: 'how often the HPA controller evaluates every HorizontalPodAutoscaler' },
  'horizontal-pod-autoscaler-tolerance': { type: 'number', default: 0.1, help: 'HPA: the minimum change of the usage-to-target ratio that scales' },
  'horizontal-pod-autoscaler-downscale-stabilization': { type: 'string', default: '5m0s', help: 'HPA: how far back scale-down recommendations are looked at (default window)' },
  'horizontal-pod-autoscaler-cpu-initialization-period': { type: 'string', default: '5m0s', help: 'HPA: after a pod starts, how long its CPU samples may be skipped' },
  'horizontal-pod-autoscaler-initial-readiness-delay': { type: 'string', default: '30s', help: 'HPA: after a pod starts, how long readiness changes count as initial' },
  'scheduler-profile': { type: 'string', default: 'LeastAllocated', help: 'scheduler scoring: LeastAllocated or MostAllocated (bin packing)' },
  'components-in-process': { type: 'boolean', help: 'run controllers and scheduler on the API server thread instead of a worker thread' },
  'watch-cache-size': { type: 'number', default: 10000, help: '(hidden) events kept per resource for watch resumption' },
  cleanup: { type: 'boolean', help: "stop and remove this host's pods, containers, pod network, service rules and cgroups, then exit" },
  help: { type: 'boolean', help: 'show this help' },
};

/** `kyb server --cleanup`: removes what the server's node agent made on this host (needs no API). */
export async function cleanupServerHost(argv: string[]): Promise<void> {
  const f = parseFlags(argv, serverFlags);
  const dataDir = (f['data-dir'] as string | undefined) ?? defaultDataDir();
  const { cleanupAgent } = await import('./agent.js');
  await cleanupAgent({
    server: '', token: '', dataDir: join(dataDir, 'agent'), nodeName: f['node-name'] as string | undefined,
    runRoot: f['agent-run-dir'] as string, cgroupParent: f['cgroup-parent'] as string, bridge: f['pod-bridge'] as string,
    proxyTableName: f['proxy-table'] as string | undefined, log: (m) => process.stderr.write(`kyb: ${m}\n`),
  });
}

export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/kybernetes' : join(homedir(), '.kybernetes');
}

export interface RunningServer { api: ApiServer; kubeconfigPath: string; dataDir: string; token: string; caPem: string; stop(): Promise<void> }

export async function startServer(argv: string[]): Promise<RunningServer> {
  const f = parseFlags(argv, serverFlags);
  if (f.help) { process.stdout.write(usage('server', serverFlags)); process.exit(0); }
  const dataDir = (f['data-dir'] as string | undefined) ?? defaultDataDir();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const sans = f['tls-san'] as string[];
  const bind = f['bind-address'] as string;
  const wildcard = bind === '0.0.0.0' || bind === '::';
  const advertise = (f['advertise-address'] as string | undefined) ?? (wildcard ? internalIP() : bind === 'localhost' ? '127.0.0.1' : bind);
  const pki = ensurePki(dataDir, {
    hostnames: [hostname(), ...sans], ips: [...(wildcard || bind === 'localhost' ? [] : [bind]), advertise],
    serviceIP: formatIPv4(new ServiceCIDR(f['service-cidr'] as string).first), clusterDomain: f['cluster-domain'] as string,
  });
  const token = ensureToken(dataDir, f.token as string | undefined);
  const tolDefault = f.profile === 'fast' ? 10 : 300;
  defaultTolerations.notReadySeconds = (f['default-not-ready-toleration-seconds'] as number | undefined) ?? tolDefault;
  defaultTolerations.unreachableSeconds = (f['default-unreachable-toleration-seconds'] as number | undefined) ?? tolDefault;
  const store = instrumentStore(openStore(f['datastore-endpoint'] as string, dataDir)); // prometheus
  collectProcessMetrics(); // prometheus: process metrics on the main thread only
  const workerMetrics: { get?: () => Promise<MetricJSON[][]> } = {}; // prometheus: set once the worker runs
  const port = f['https-listen-port'] as number;
  // the components (worker thread) reach the API through a Unix socket in the data dir: no TLS and
  // no loopback TCP on every request and watch event; TCP when the path is too long for a socket
  const localSocket = join(dataDir, 'api.sock');
  const useLocalSocket = Buffer.byteLength(localSocket) < 100;
  const api = await startApiServer({
    store, port, host: bind, advertiseAddress: advertise, localSocket: useLocalSocket ? localSocket : undefined,
    watchCacheSize: f['watch-cache-size'] as number,
    serviceCIDR: f['service-cidr'] as string, serviceNodePortRange: f['service-node-port-range'] as string,
    tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.clientCaCert },
    serviceAccountKey: ensureServiceAccountKey(dataDir),
    tokens: [{ token, user: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] } }],
    routes: [metricsRoute({ sources: async () => (await workerMetrics.get?.()) ?? [] })], // prometheus
  });
  const kubeconfigPath = (f['write-kubeconfig'] as string | undefined) ?? join(dataDir, 'kubeconfig.yaml');
  const host = wildcard ? '127.0.0.1' : bind;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${api.port}`;
  writeKubeconfig(kubeconfigPath, renderKubeconfig({ server, caPem: pki.serverCaCert, token, clientCertPem: pki.adminCert, clientKeyPem: pki.adminKey }), parseInt(f['write-kubeconfig-mode'] as string, 8));
  const disabled = f.disable as string[];
  const agentOn = !f['disable-agent'] && !disabled.includes('agent');
  const components = startComponents({
    server: `https://127.0.0.1:${api.port}`, socketPath: useLocalSocket ? localSocket : undefined, caPem: pki.serverCaCert, token,
    disable: disabled,
    controllerOptions: {
      horizontalpodautoscaling: {
        syncPeriodMs: parseGoDuration(f['horizontal-pod-autoscaler-sync-period'] as string),
        tolerance: f['horizontal-pod-autoscaler-tolerance'] as number,
        downscaleStabilizationMs: parseGoDuration(f['horizontal-pod-autoscaler-downscale-stabilization'] as string),
        cpuInitializationPeriodMs: parseGoDuration(f['horizontal-pod-autoscaler-cpu-initialization-period'] as string),
        initialReadinessDelayMs: parseGoDuration(f['horizontal-pod-autoscaler-initial-readiness-delay'] as string),
      },
      nodeipam: { clusterCIDR: f['cluster-cidr'] as string }, rootcacert: { caPem: pki.serverCaCert } },
    ...(agentOn ? {
      agent: {
        server: `https://127.0.0.1:${api.port}`, caPem: pki.serverCaCert, token,
        dataDir: join(dataDir, 'agent'), nodeName: f['node-name'] as string | undefined,
        clusterCIDR: f['cluster-cidr'] as string, disableProxy: f['disable-kube-proxy'] as boolean | undefined,
        proxyTableName: f['proxy-table'] as string | undefined,
        runRoot: f['agent-run-dir'] as string, cgroupParent: f['cgroup-parent'] as string, bridge: f['pod-bridge'] as string,
        clusterDNS: [f['cluster-dns'] as string], clusterDomain: f['cluster-domain'] as string,
        registriesConfig: f['private-registry'] as string | undefined,
        metricResolutionMs: parseMetricResolution(f['metric-resolution'] as string), // metrics.k8s.io
        labels: { 'node-role.kubernetes.io/control-plane': 'true', 'node-role.kubernetes.io/master': 'true' },
      },
      dns: {
        clusterIP: f['cluster-dns'] as string, clusterDomain: f['cluster-domain'] as string, clusterCIDR: f['cluster-cidr'] as string,
        nodeName: (f['node-name'] as string | undefined) ?? hostname().toLowerCase(),
        upstream: f['cluster-dns-upstream'] === 'host' ? 'host' as const : f['cluster-dns-upstream'] === 'none' ? [] : (f['cluster-dns-upstream'] as string).split(',').map((x) => x.trim()).filter(Boolean),
      },
    } : {}),
    simulateNodes: f['simulate-nodes'] as number,
    profile: f.profile === 'fast' ? 'fast' : 'default',
    schedulerProfile: f['scheduler-profile'] === 'MostAllocated' ? 'MostAllocated' : 'LeastAllocated',
  }, f['components-in-process'] as boolean);
  workerMetrics.get = () => components.metrics(); // prometheus
  process.stderr.write(`kyb server: API at ${server}, kubeconfig ${kubeconfigPath}, data ${dataDir}\n`);
  return {
    api, kubeconfigPath, dataDir, token, caPem: pki.serverCaCert,
    async stop() { await components.stop(); await api.close(); await store.close(); },
  };
}
