// Node tunnels: each node agent dials the API server (it may sit behind NAT, so the API server never
// dials it) with a WebSocket upgrade of `GET /kyb/v1/node-tunnel?node=<name>`, authenticated like any
// request. Over that one connection the API server opens a multiplexed stream (src/machinery/mux.ts)
// per logs/exec/attach/port-forward request and talks HTTP/1.1 on it to the agent's streaming server.
// One tunnel per node name: a new connection for the same node replaces the old one (an agent that
// restarted, or reconnected after a network change, wins over a half-dead connection).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { Mux, MAX_FRAME_PAYLOAD, NODE_TUNNEL_PATH } from '../machinery/mux.js';
import { errors, StatusError } from '../machinery/status.js';
import type { UserInfo } from './auth.js';

export { NODE_TUNNEL_PATH };

const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface TunnelServerOptions {
  /** WebSocket ping interval; a tunnel without a pong for one interval is dropped (default 15 s) */
  pingIntervalMs?: number;
}

/**
 * The registry of connected node tunnels. Events: 'connect' (nodeName), 'disconnect' (nodeName).
 */
export class TunnelServer extends EventEmitter {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_PAYLOAD + 1024 });
  private readonly tunnels = new Map<string, Mux>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(private readonly opts: TunnelServerOptions = {}) { super(); }

  /**
   * Accept a tunnel upgrade; the caller has authenticated `user`. Answers 400 for a missing or bad
   * `node` parameter, 403 when a node identity (`system:node:<name>`) asks for another node's tunnel.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, user: UserInfo): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const node = url.searchParams.get('node') ?? '';
    let err: StatusError | undefined;
    if (this.closed) err = errors.serviceUnavailable('the API server is shutting down');
    else if (!node) err = errors.badRequest('the node parameter is required');
    else if (node.length > 253 || !NODE_NAME_RE.test(node)) err = errors.badRequest(`invalid node name ${JSON.stringify(node)}`);
    else if (user.username.startsWith('system:node:') && user.username !== `system:node:${node}`) {
      err = errors.forbidden(`nodes "${node}" is forbidden: User "${user.username}" cannot open the tunnel of another node`);
    }
    if (err) { writeStatusToSocket(socket, err); return; }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.register(node, ws));
  }

  private register(node: string, ws: WebSocket): void {
    if (this.closed) { ws.terminate(); return; }
    const mux = new Mux(ws, { role: 'server', pingIntervalMs: this.opts.pingIntervalMs ?? 15_000, remoteAddress: `node/${node}` });
    // the API server never accepts streams from agents
    mux.on('stream', (s: Duplex) => s.destroy(new Error('streams are opened by the API server only')));
    const old = this.tunnels.get(node);
    this.tunnels.set(node, mux);
    if (old) old.close(new Error(`tunnel of node ${node} replaced by a new connection`));
    mux.on('close', () => {
      if (this.tunnels.get(node) === mux) {
        this.tunnels.delete(node);
        this.emit('disconnect', node);
      }
    });
    this.emit('connect', node);
    const ws_ = this.waiters.get(node);
    if (ws_) { this.waiters.delete(node); for (const w of ws_) w(); }
  }

  has(node: string): boolean { return this.tunnels.has(node); }
  nodes(): string[] { return [...this.tunnels.keys()]; }

  /**
   * A new stream to the node's agent, connected to its streaming server. Throws a 503 StatusError
   * when the node has no tunnel.
   */
  dial(node: string): Duplex {
    const mux = this.tunnels.get(node);
    if (!mux || mux.closed) {
      throw errors.serviceUnavailable(`no connection to the node agent of node "${node}": the agent has not connected to the API server (${NODE_TUNNEL_PATH}) or its connection was lost`);
    }
    return mux.open();
  }

  /** resolves once `node` has a tunnel (at once if it has one); rejects after `timeoutMs` */
  waitFor(node: string, timeoutMs = 10_000): Promise<void> {
    if (this.tunnels.has(node)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(node);
      if (!set) { set = new Set(); this.waiters.set(node, set); }
      const done = () => { clearTimeout(t); resolve(); };
      const t = setTimeout(() => { set!.delete(done); reject(new Error(`node ${node} did not connect its tunnel within ${timeoutMs} ms`)); }, timeoutMs);
      set.add(done);
    });
  }

  /** close the tunnel of `node` (e.g. its Node was deleted); the agent will dial again */
  drop(node: string, reason = 'dropped by the API server'): void {
    this.tunnels.get(node)?.close(new Error(reason));
  }

  /** drop every tunnel (server shutdown) */
  close(): void {
    this.closed = true;
    for (const mux of this.tunnels.values()) mux.close(new Error('the API server is shutting down'));
    this.tunnels.clear();
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  422: 'Unprocessable Entity', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

/** Answer a request whose socket was taken over for an upgrade with a Status error, and close it. */
export function writeStatusToSocket(socket: Duplex, err: StatusError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toStatus());
  socket.end(
    `HTTP/1.1 ${err.code} ${REASONS[err.code] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    'Cache-Control: no-cache, private\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' + body,
  );
  socket.on('error', () => {});
  setTimeout(() => socket.destroy(), 1000).unref();
}
