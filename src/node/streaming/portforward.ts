// `kubectl port-forward` on the node agent: the upgrade requests the streaming server receives at
// /portForward/{ns}/{pod}. Three wire forms, chosen from the request:
//
//  1. WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` (what kubectl 1.32 tries first): every
//     binary message carries raw SPDY/3.1 bytes (boundaries mean nothing), so the WebSocket is turned
//     into a byte stream (ws's createWebSocketStream) and the SPDY session runs on top.
//  2. `Upgrade: SPDY/3.1` + `X-Stream-Protocol-Version: portforward.k8s.io` (kubectl's fallback): the
//     same SPDY session straight on the socket.
//  3. WebSocket with a channel subprotocol (v4.channel.k8s.io, v5…, or none) and `?port=`/`?ports=`:
//     kubelet's older channel protocol, used by @kubernetes/client-node's PortForward. Port i gets
//     channel 2i (data) and 2i+1 (error); each channel starts with the port as 2 little-endian bytes.
//
// SPDY port-forward (1, 2): per forwarded connection the client opens two streams with headers
// streamtype=error|data, port, requestid. We reply to both; once the pair is complete we connect with
// backend.portForward(ns, pod, port) and copy both ways. When the target closes we send FIN on data and
// on error (the client then resets them). A failure (e.g. connection refused) is written to the error
// stream — kubectl prints it and ends the whole port-forward, so nothing else is ever written there.
// Framing, ping echo and flow control are in spdy.ts.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import { errors, isStatusError } from '../../machinery/status.js';
import type { StreamingBackend } from './backend.js';
import { acceptWebSocket, offeredProtocols, refuseUpgrade } from './exec-ws.js';
import { SpdySession, type SpdyStream } from './spdy.js';
import type { PortForwardUpgradeParams } from './backend.js';
export type { PortForwardUpgradeParams } from './backend.js';


const SPDY_WS_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';
const SPDY_PROTOCOL = 'portforward.k8s.io';
const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
/** how long one half of a stream pair waits for the other */
const PAIR_TIMEOUT_MS = 30_000;

export function handlePortForwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, p: PortForwardUpgradeParams): void {
  socket.on('error', () => { /* reported through the session */ });
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  if (upgrade === 'websocket') {
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    if (offered.includes(SPDY_WS_PROTOCOL)) {
      acceptWebSocket(req, socket, head, SPDY_WS_PROTOCOL, (ws) => {
        const transport = createWebSocketStream(ws);
        transport.on('error', () => { /* the session sees the close */ });
        serveSpdy(new SpdySession(transport), p);
      });
      return;
    }
    const ports = portsFromQuery(req.url ?? '');
    if (ports === null || ports.length === 0) {
      refuseUpgrade(socket, errors.badRequest(ports === null ? 'invalid port in query' : 'query parameter "port" is required').toStatus());
      return;
    }
    const chosen = CHANNEL_PROTOCOLS.find((x) => offered.includes(x)) ?? (offered.length === 0 ? '' : undefined);
    if (chosen === undefined) {
      refuseUpgrade(socket, errors.badRequest(`unable to upgrade: no supported WebSocket subprotocol (offered: ${offered.join(', ')}; supported: ${[SPDY_WS_PROTOCOL, ...CHANNEL_PROTOCOLS].join(', ')})`).toStatus());
      return;
    }
    acceptWebSocket(req, socket, head, chosen, (ws) => serveChannels(ws, ports, p, chosen === 'v5.channel.k8s.io'));
    return;
  }
  if (upgrade === 'spdy/3.1') {
    const offered = offeredProtocols(req.headers['x-stream-protocol-version']);
    if (!offered.includes(SPDY_PROTOCOL)) {
      refuseUpgrade(socket, errors.forbidden(`unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server supports ["${SPDY_PROTOCOL}"]`).toStatus());
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${SPDY_PROTOCOL}\r\n\r\n`,
    );
    serveSpdy(new SpdySession(socket, head), p);
    return;
  }
  refuseUpgrade(socket, errors.badRequest('unable to upgrade: missing upgrade headers in request (expected websocket or SPDY/3.1)').toStatus());
}

function parsePort(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,5}$/.test(s.trim())) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** `port` (kubelet's name) or `ports` (the API's), repeated or comma-separated; null if one is bad. */
function portsFromQuery(url: string): number[] | null {
  const q = new URL(url, 'http://x').searchParams;
  const out: number[] = [];
  for (const v of [...q.getAll('port'), ...q.getAll('ports')]) {
    for (const part of v.split(',')) {
      if (!part.trim()) continue;
      const n = parsePort(part);
      if (n === null) return null;
      out.push(n);
    }
  }
  return out;
}

function message(e: unknown): string {
  return isStatusError(e) ? e.message : (e as Error)?.message ?? String(e);
}

// ---------------------------------------------------------------------------------------------------
// SPDY stream pairs

interface Pair { error?: SpdyStream; data?: SpdyStream; timer?: NodeJS.Timeout }

function serveSpdy(session: SpdySession, p: PortForwardUpgradeParams): void {
  const pairs = new Map<string, Pair>();
  session.on('close', () => {
    for (const pair of pairs.values()) if (pair.timer) clearTimeout(pair.timer);
    pairs.clear();
  });
  session.on('stream', (s: SpdyStream) => {
    s.on('error', () => { /* reset by the peer */ });
    const type = s.headers.streamtype;
    if (type !== 'error' && type !== 'data') { s.reset(); return; }
    s.reply();
    // clients that predate requestid open error then data, two ids apart
    const key = s.headers.requestid ?? String(type === 'error' ? s.id : s.id - 2);
    const pair = pairs.get(key) ?? {};
    if (pair[type]) { s.reset(); return; }
    pair[type] = s;
    if (type === 'error') s.resume(); // the client only half-closes it
    if (pair.error && pair.data) {
      if (pair.timer) clearTimeout(pair.timer);
      pairs.delete(key);
      void forwardPair(pair.error, pair.data, p);
    } else {
      pairs.set(key, pair);
      pair.timer = setTimeout(() => {
        pairs.delete(key);
        pair.error?.reset();
        pair.data?.reset();
      }, PAIR_TIMEOUT_MS);
      pair.timer.unref();
    }
  });
}

async function forwardPair(errorStream: SpdyStream, data: SpdyStream, p: PortForwardUpgradeParams): Promise<void> {
  const port = parsePort(data.headers.port);
  const fail = (text: string): void => {
    if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.end(text);
    if (!data.destroyed && !data.writableEnded) data.end();
    data.resume();
  };
  if (port === null) {
    fail(`invalid port ${JSON.stringify(data.headers.port ?? '')}`);
    return;
  }
  let target: Duplex;
  try {
    target = await p.backend.portForward(p.namespace, p.pod, port);
  } catch (e) {
    fail(`error forwarding port ${port} to pod ${p.namespace}/${p.pod}: ${message(e)}`);
    return;
  }
  if (data.destroyed) { target.destroy(); return; }
  target.on('error', () => { /* ends in close */ });
  data.pipe(target); // the client's FIN half-closes the target
  target.pipe(data); // the target's end is our FIN on data
  target.once('close', () => {
    if (!data.destroyed && !data.writableEnded) data.end();
    if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.end();
  });
  // a reset (or the session going away) drops the target connection
  data.once('close', () => target.destroy());
}

// ---------------------------------------------------------------------------------------------------
// channel protocol (client-node)

function serveChannels(ws: WebSocket, ports: number[], p: PortForwardUpgradeParams, v5: boolean): void {
  const targets: (Duplex | null)[] = ports.map(() => null);
  const pending: Buffer[][] = ports.map(() => []);
  const halfClosed = ports.map(() => false);
  let open = ports.length;
  const send = (ch: number, payload: Buffer, cb?: () => void): void => {
    if (ws.readyState !== ws.OPEN) { cb?.(); return; }
    const msg = Buffer.allocUnsafe(payload.length + 1);
    msg[0] = ch;
    payload.copy(msg, 1);
    ws.send(msg, { binary: true }, () => cb?.());
  };
  const done = (): void => {
    if (--open === 0 && ws.readyState === ws.OPEN) ws.close(1000);
  };
  ws.on('error', () => { /* followed by close */ });
  ws.on('close', () => { for (const t of targets) t?.destroy(); });
  ws.on('message', (msg: Buffer, isBinary: boolean) => {
    if (!isBinary || msg.length === 0) return;
    const ch = msg[0];
    if (ch === 255 && v5) {
      const i = msg[1] / 2;
      if (Number.isInteger(i) && i < ports.length) {
        halfClosed[i] = true;
        targets[i]?.end();
      }
      return;
    }
    if (ch % 2 !== 0 || ch / 2 >= ports.length) return; // only data channels carry input
    const i = ch / 2;
    const payload = Buffer.from(msg.subarray(1));
    const t = targets[i];
    if (t) {
      if (!t.write(payload) && !ws.isPaused) {
        ws.pause();
        t.once('drain', () => ws.resume());
      }
    } else pending[i].push(payload);
  });
  ports.forEach((port, i) => {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    send(2 * i, portBytes);
    send(2 * i + 1, portBytes);
    p.backend.portForward(p.namespace, p.pod, port).then((t) => {
      if (ws.readyState !== ws.OPEN) { t.destroy(); return; }
      targets[i] = t;
      t.on('error', () => { /* ends in close */ });
      for (const b of pending[i].splice(0)) t.write(b);
      if (halfClosed[i]) t.end();
      t.on('data', (d: Buffer) => {
        t.pause();
        send(2 * i, d, () => t.resume());
      });
      t.once('close', done);
    }, (e: unknown) => {
      send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${p.namespace}/${p.pod}: ${message(e)}`));
      done();
    });
  });
}
