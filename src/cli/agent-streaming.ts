// The agent's streaming path (logs, exec, attach, port-forward): a tunnel the agent dials out to the
// API server, carrying kubelet-style HTTP requests to the agent's streaming server.
import type { Agent } from '../node/agent.js';
import { createStreamingServer } from '../node/streaming/server.js';
import { TunnelClient } from '../node/streaming/tunnel-client.js';
import { handleExecUpgrade } from '../node/streaming/exec-ws.js';
import { handlePortForwardUpgrade } from '../node/streaming/portforward.js';

export interface StreamingConfig { agent: Agent; server: string; caPem?: string; token: string; nodeName: string; signal: AbortSignal; log(m: string): void }

export function startStreaming(cfg: StreamingConfig): { stop(): Promise<void> } {
  const server = createStreamingServer(cfg.agent, { handleExecUpgrade, handlePortForwardUpgrade });
  const ac = new AbortController();
  const abort = () => ac.abort();
  cfg.signal.addEventListener('abort', abort, { once: true });
  const tunnel = new TunnelClient({ server: cfg.server, nodeName: cfg.nodeName, token: cfg.token, caPem: cfg.caPem, handler: server, log: cfg.log });
  const run = tunnel.run(ac.signal);
  return { async stop() { cfg.signal.removeEventListener('abort', abort); ac.abort(); await run; server.close(); } };
}
