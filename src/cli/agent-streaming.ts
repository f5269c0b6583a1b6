// The agent's streaming path (logs, exec, attach, port-forward): a tunnel the agent dials out to the
// API server, carrying kubelet-style HTTP requests to the agent's streaming server.
import type { Agent } from '../node/agent.js';

export interface StreamingConfig { agent: Agent; server: string; caPem?: string; token: string; nodeName: string; signal: AbortSignal; log(m: string): void }

export function startStreaming(cfg: StreamingConfig): { stop(): Promise<void> } {
  void cfg;
  return { async stop() { /* not connected yet */ } };
}
