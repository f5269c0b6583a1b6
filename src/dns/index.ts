// Cluster DNS: the server (ClusterDNS), its record logic (ClusterZone), the kube-dns Service that
// publishes it, and forwarding helpers.
export * from './cluster-zone.js';
export * from './cluster-dns.js';
export * from './dns-message.js';
export * from './forwarder.js';
export * from './kube-dns-service.js';
