// The node's Service proxy: Services + EndpointSlices → nftables or iptables rules. See
// service-proxy.ts for the design, nft-backend.ts and iptables-backend.ts for the rule layouts.
export { ServiceProxy, healthCheckTarget, SERVICES, ENDPOINT_SLICES, SERVICE_PROXY_NAME_LABEL, type ServiceProxyOptions, type SyncReport, type ProxyCleanupOptions } from './service-proxy.js';
export type { BackendName, PlanChange, ProxyBackend } from './backend.js';
export { NftBackend } from './nft-backend.js';
export { IptablesBackend } from './iptables-backend.js';
export { buildServicePlans, type ServicePortPlan, type Endpoint } from './service-model.js';
export { RouteLocalnet, DEFAULT_STATE_DIR } from './route-localnet.js';
export { HealthCheckServers, type HealthCheckTarget } from './health-check.js';
