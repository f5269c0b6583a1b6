// The Service health checks kube-proxy serves for LoadBalancer Services with externalTrafficPolicy
// Local: an HTTP server on each such Service's spec.healthCheckNodePort answers any path with
//
//   200 (this node has local endpoints) or 503 (it has none)
//   {"service":{"namespace":"ns","name":"web"},"localEndpoints":N,"serviceProxyHealthy":true}
//
// plus kube-proxy's `X-Content-Type-Options: nosniff` and `X-Load-Balancing-Endpoint-Weight: N`
// headers, so an external load balancer sends traffic only to nodes that can serve it without a
// second hop. The proxy calls sync() after every rule write with the wanted set; servers for ports
// no longer wanted are closed, new ones opened, and counts of kept ones updated in place. A port
// that cannot be bound (in use) is logged and tried again at the next sync.
import { createServer, type Server } from 'node:http';

export interface HealthCheckTarget { port: number; namespace: string; name: string; localEndpoints: number }

export class HealthCheckServers {
  private readonly servers = new Map<number, { server: Server; target: HealthCheckTarget; listening: Promise<boolean> }>();

  constructor(private readonly bindAddress: string, private readonly log: (msg: string) => void) {}

  /** The ports served now (bound or being bound). */
  ports(): number[] { return [...this.servers.keys()].sort((a, b) => a - b); }

  /** Makes the served set exactly `targets` (one per port; a later duplicate port is ignored). */
  sync(targets: Iterable<HealthCheckTarget>): void {
    const want = new Map<number, HealthCheckTarget>();
    for (const t of targets) if (!want.has(t.port)) want.set(t.port, t);
    for (const [port, s] of this.servers) if (!want.has(port)) { this.servers.delete(port); s.server.close(); }
    for (const [port, t] of want) {
      const cur = this.servers.get(port);
      if (cur) { cur.target = t; continue; }
      this.open(t);
    }
  }

  /** Resolves once every server is bound or has failed (tests). */
  async ready(): Promise<void> { await Promise.all([...this.servers.values()].map((s) => s.listening)); }

  close(): void {
    for (const s of this.servers.values()) s.server.close();
    this.servers.clear();
  }

  private open(t: HealthCheckTarget): void {
    const entry = { target: t } as { server: Server; target: HealthCheckTarget; listening: Promise<boolean> };
    entry.server = createServer((req, res) => {
      const cur = entry.target;
      const body = JSON.stringify({ service: { namespace: cur.namespace, name: cur.name }, localEndpoints: cur.localEndpoints, serviceProxyHealthy: true });
      res.writeHead(cur.localEndpoints > 0 ? 200 : 503, {
        'Content-Type': 'application/json',
        'X-Content-Type-Options': 'nosniff',
        'X-Load-Balancing-Endpoint-Weight': String(cur.localEndpoints),
      });
      res.end(body);
      req.resume();
    });
    entry.server.keepAliveTimeout = 5_000;
    entry.listening = new Promise((resolve) => {
      entry.server.once('error', (e: NodeJS.ErrnoException) => {
        this.log(`health check for ${t.namespace}/${t.name} cannot listen on ${this.bindAddress}:${t.port}: ${e.code ?? e.message}; retrying at the next sync`);
        if (this.servers.get(t.port) === entry) this.servers.delete(t.port);
        resolve(false);
      });
      entry.server.listen(t.port, this.bindAddress, () => resolve(true));
    });
    this.servers.set(t.port, entry);
  }
}
