// `kyb simulate-nodes`: adds simulated nodes to a running cluster until SIGINT/SIGTERM.
//   kyb simulate-nodes --kubeconfig PATH --count N [--prefix P] [--cpu 32] [--memory 256Gi] [--pods 110]
//     [--ephemeral-storage 1Ti] [--label k=v]... [--heartbeat-interval 10s] [--lease-duration 40]
//     [--pod-start-delay 0s] [--pod-cidr-base 10.42] [--node-ip-base 172.18] [--context NAME]
import { RestClient } from '../../client/rest-client.js';
import { SimulatedNodes, type SimulatedNodesOptions } from './simulated-nodes.js';

export const SIMULATE_NODES_USAGE = `Usage: kyb simulate-nodes --kubeconfig PATH --count N [options]

Registers N simulated nodes that heartbeat and report their pods Running, until interrupted.

Options:
  --kubeconfig PATH        kubeconfig of the cluster (default $KUBECONFIG)
  --context NAME           kubeconfig context (default: current)
  --count N                number of nodes (required)
  --prefix P               node name prefix (default sim-node-)
  --cpu Q                  cpu capacity per node (default 32)
  --memory Q               memory capacity per node (default 256Gi)
  --pods N                 pod capacity per node (default 110)
  --ephemeral-storage Q    ephemeral-storage capacity per node (default 1Ti)
  --label K=V              extra node label (repeatable)
  --heartbeat-interval D   Lease renewal period, e.g. 10s, 500ms (default 10s)
  --lease-duration S       Lease leaseDurationSeconds (default 40)
  --pod-start-delay D      time before a bound pod is reported Running (default 0s)
  --pod-cidr-base A.B      first two octets of the nodes' pod CIDRs (default 10.42)
  --node-ip-base A.B       first two octets of the nodes' InternalIPs (default 172.18)
`;

/** Parses `500ms`, `10s`, `2m`, or a bare number of milliseconds. */
export function parseDurationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(s)} (use e.g. 500ms, 10s, 2m)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

export interface SimulateNodesArgs {
  kubeconfig: string;
  context?: string;
  options: SimulatedNodesOptions;
}

/** Parses the command's arguments (without the `simulate-nodes` word). Throws with a message on bad input. */
export function parseSimulateNodesArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): SimulateNodesArgs {
  const o: SimulatedNodesOptions = { count: NaN };
  const capacity: NonNullable<SimulatedNodesOptions['capacity']> = {};
  const labels: Record<string, string> = {};
  let kubeconfig = env.KUBECONFIG?.split(':')[0] ?? '';
  let context: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]!;
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) { value = flag.slice(eq + 1); flag = flag.slice(0, eq); }
    const next = (): string => {
      if (value !== undefined) return value;
      const v = argv[++i];
      if (v === undefined) throw new Error(`flag ${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--kubeconfig': kubeconfig = next(); break;
      case '--context': context = next(); break;
      case '--count': o.count = Number(next()); break;
      case '--prefix': o.namePrefix = next(); break;
      case '--cpu': capacity.cpu = next(); break;
      case '--memory': capacity.memory = next(); break;
      case '--pods': capacity.pods = next(); break;
      case '--ephemeral-storage': capacity['ephemeral-storage'] = next(); break;
      case '--label': {
        const kv = next();
        const j = kv.indexOf('=');
        if (j <= 0) throw new Error(`--label wants key=value, got ${JSON.stringify(kv)}`);
        labels[kv.slice(0, j)] = kv.slice(j + 1);
        break;
      }
      case '--heartbeat-interval': o.heartbeatIntervalMs = parseDurationMs(next()); break;
      case '--lease-duration': o.leaseDurationSeconds = Number(next()); break;
      case '--pod-start-delay': o.podStartDelayMs = parseDurationMs(next()); break;
      case '--pod-cidr-base': o.podCIDRBase = next(); break;
      case '--node-ip-base': o.nodeIPBase = next(); break;
      case '-h': case '--help': throw new Error(SIMULATE_NODES_USAGE);
      default: throw new Error(`unknown flag ${flag}\n\n${SIMULATE_NODES_USAGE}`);
    }
  }
  if (!Number.isInteger(o.count) || o.count <= 0) throw new Error(`--count must be a positive integer\n\n${SIMULATE_NODES_USAGE}`);
  if (!kubeconfig) throw new Error(`--kubeconfig is required (or set KUBECONFIG)\n\n${SIMULATE_NODES_USAGE}`);
  if (o.leaseDurationSeconds !== undefined && !(o.leaseDurationSeconds > 0)) throw new Error('--lease-duration must be a positive number of seconds');
  if (Object.keys(capacity).length) o.capacity = capacity;
  if (Object.keys(labels).length) o.labels = labels;
  return { kubeconfig, context, options: o };
}

/** `kyb simulate-nodes …`: runs until SIGINT/SIGTERM (or until signal aborts, when given). */
export async function runSimulatedNodesCommand(argv: string[], signal?: AbortSignal): Promise<void> {
  const args = parseSimulateNodesArgs(argv);
  const client = RestClient.fromKubeconfig(args.kubeconfig, args.context);
  const sim = new SimulatedNodes(client, args.options);
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  const started = Date.now();
  const names = sim.nodeNames();
  console.error(`simulating ${names.length} nodes (${names[0]} … ${names[names.length - 1]}) against ${client.options.server}`);
  const progress = setInterval(() => {
    if (sim.stats.nodesRegistered >= names.length) {
      console.error(`${sim.stats.nodesRegistered} nodes registered in ${Date.now() - started} ms; serving pods (Ctrl-C to stop)`);
      clearInterval(progress);
    }
  }, 200);
  try {
    await sim.run(ac.signal);
  } finally {
    clearInterval(progress);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    signal?.removeEventListener('abort', stop);
    client.close();
  }
}
