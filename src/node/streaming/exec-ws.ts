// `kubectl exec` / `kubectl attach` (and `kubectl cp`, which is exec of tar) on the node agent: the
// upgrade requests the streaming server receives at /exec/{ns}/{pod}/{container} and /attach/...
//
// WebSocket, subprotocol v5.channel.k8s.io (what kubectl ≥ 1.30 speaks; v4 is accepted too, for older
// clients and @kubernetes/client-node). Every message is binary: one channel byte, then payload.
//   0 stdin (in) · 1 stdout · 2 stderr · 3 error: one metav1.Status, then the close · 4 resize (in,
//   `{"Width":w,"Height":h}`) · 255 close (in, v5): `[255, 0]` = the client closed stdin.
// Which streams exist comes from the query (stdin/stdout/stderr/tty); with a tty stderr is merged.
// The end of a session is: the remaining output, the Status on channel 3 (Success, or Failure with
// reason NonZeroExitCode and a cause {reason: ExitCode, message: "<code>"} so kubectl exits with the
// command's code), then a Close frame 1000 — kubectl only treats a clean close as the end; a dropped
// connection loses the exit code. Pings are answered by `ws` (RFC 6455 pong with the same payload).
// The upgrade happens first and backend errors (StatusError: pod/container not found, not running,
// runc could not start the command) travel as the Status on channel 3, which kubectl prints.
//
// SPDY/3.1 fallback (kubectl retries with `POST … Upgrade: SPDY/3.1` when the WebSocket upgrade is
// refused): answered with protocol v4.channel.k8s.io; the client opens one stream per channel with
// header `streamtype` = error|stdin|stdout|stderr|resize; we reply to each, wait until all the query
// asked for are there, then run the same session; the Status goes on the error stream, and the session
// ends with FIN on every stream and GOAWAY. Framing is in spdy.ts.
//
// When the client goes away first: an exec'd process is killed; an attach only lets go (its stdin view
// is ended and its output views destroyed; the backend decides what that means for the container).
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errors, isStatusError, type Status } from '../../machinery/status.js';
import type { ExecProcess, StreamingBackend } from './backend.js';
import { SpdySession, type SpdyStream } from './spdy.js';
import type { ExecUpgradeParams } from './backend.js';
export type { ExecUpgradeParams } from './backend.js';


const WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const SPDY_PROTOCOL = 'v4.channel.k8s.io';
const CH_STDIN = 0;
const CH_STDOUT = 1;
const CH_STDERR = 2;
const CH_ERROR = 3;
const CH_RESIZE = 4;
const CH_CLOSE = 255;
/** how long the SPDY client gets to open the streams the query announced */
const SPDY_STREAM_TIMEOUT_MS = 30_000;

/** A metav1.Status as kubelet writes it on the error channel. */
type WireStatus = Partial<Status> & { metadata: Record<string, unknown>; status: 'Success' | 'Failure' };

// ---------------------------------------------------------------------------------------------------
export function handleExecUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, p: ExecUpgradeParams): void {
  socket.on('error', () => { /* a reset connection is reported through the session */ });
  if (!p.stdin && !p.stdout && !p.stderr) {
    refuseUpgrade(socket, errors.badRequest('you must specify at least 1 of stdin, stdout, stderr').toStatus());
    return;
  }
  if (!p.attach && p.command.length === 0) {
    refuseUpgrade(socket, errors.badRequest('you must specify at least one command for the container').toStatus());
    return;
  }
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  if (upgrade === 'websocket') {
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    const chosen = WS_PROTOCOLS.find((x) => offered.includes(x));
    if (!chosen) {
      // any non-101 makes kubectl retry with SPDY
      refuseUpgrade(socket, errors.badRequest(`unable to upgrade: no supported WebSocket subprotocol (offered: ${offered.join(', ') || 'none'}; supported: ${WS_PROTOCOLS.join(', ')})`).toStatus());
      return;
    }
    acceptWebSocket(req, socket, head, chosen, (ws) => {
      void runSession(wsIO(ws, p, chosen === 'v5.channel.k8s.io'), p);
    });
    return;
  }
  if (upgrade === 'spdy/3.1') {
    spdyExec(req, socket, head, p);
    return;
  }
  refuseUpgrade(socket, errors.badRequest('unable to upgrade: missing upgrade headers in request (expected websocket or SPDY/3.1)').toStatus());
}

// ---------------------------------------------------------------------------------------------------
// helpers shared with the port-forward handler

/** The list in a Sec-WebSocket-Protocol / X-Stream-Protocol-Version header (possibly repeated). */
export function offeredProtocols(h: string | string[] | undefined): string[] {
  const list = Array.isArray(h) ? h : h ? [h] : [];
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** Answer an upgrade request with an HTTP error carrying a Status body, and close. */
export function refuseUpgrade(socket: Duplex, status: Status): void {
  const body = JSON.stringify(status);
  const code = status.code || 500;
  if (!socket.destroyed && socket.writable) {
    socket.end(
      `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** the subprotocol to answer with, per upgrade request (see acceptWebSocket) */
const chosenProtocol = new WeakMap<IncomingMessage, string>();
let wss: WebSocketServer | null = null;

/**
 * Complete a WebSocket upgrade answering with `protocol` (which the caller checked the client offered).
 * ws validates offered subprotocols as RFC 7230 tokens, and kubectl's `SPDY/3.1+portforward.k8s.io`
 * is not one ('/' is not a token character), so the header is taken off the request and the chosen
 * protocol is added to the 101 response ourselves.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string, cb: (ws: WebSocket) => void): void {
  if (!wss) {
    wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
    wss.on('headers', (headers: string[], r: IncomingMessage) => {
      const p = chosenProtocol.get(r);
      if (p) headers.push(`Sec-WebSocket-Protocol: ${p}`);
    });
  }
  delete req.headers['sec-websocket-protocol'];
  if (protocol) chosenProtocol.set(req, protocol);
  wss.handleUpgrade(req, socket, head, cb);
}

export function errorStatus(e: unknown): Status {
  if (isStatusError(e)) return e.toStatus();
  return errors.internal((e as Error)?.message ?? String(e)).toStatus();
}

// ---------------------------------------------------------------------------------------------------
// the session, independent of the wire protocol

interface SessionIO {
  /** client-facing sinks; null when the client did not ask for that stream */
  stdout: Writable | null;
  stderr: Writable | null;
  stdin: Readable | null;
  onResize(cb: (cols: number, rows: number) => void): void;
  /** send the final status and close the connection gracefully */
  finish(status: WireStatus): void;
  /** the client went away before finish() */
  readonly gone: boolean;
  onGone(cb: () => void): void;
}

const SUCCESS: WireStatus = { metadata: {}, status: 'Success' };

function exitStatus(code: number, command: string[]): WireStatus {
  if (code === 0) return SUCCESS;
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** Copy src into sink (or discard it); resolves when src is over and sink has taken everything. */
function forward(src: Readable, sink: Writable | null): Promise<void> {
  return new Promise((resolve) => {
    let ended = false;
    src.on('error', () => { /* ends like a close */ });
    if (!sink) {
      src.on('end', resolve);
      src.on('close', resolve);
      src.resume();
      return;
    }
    const endSink = (): void => {
      if (ended) return;
      ended = true;
      if (sink.writableEnded || sink.destroyed) { resolve(); return; }
      sink.end(() => resolve());
      sink.once('close', resolve);
    };
    src.pipe(sink, { end: false });
    src.once('end', endSink);
    // destroyed without an end (an attach view let go of, an error): end the sink all the same
    src.once('close', () => setImmediate(endSink));
  });
}

async function runSession(io: SessionIO, p: ExecUpgradeParams): Promise<void> {
  let proc: ExecProcess;
  try {
    proc = p.attach
      ? await p.backend.attach(p.namespace, p.pod, p.container, { tty: p.tty, stdin: p.stdin })
      : await p.backend.exec(p.namespace, p.pod, p.container, p.command, { tty: p.tty, stdin: p.stdin });
  } catch (e) {
    io.stdin?.resume();
    io.finish(errorStatus(e));
    return;
  }
  const abandon = (): void => {
    if (p.attach) {
      proc.stdin?.end();
      proc.stdout.destroy();
      proc.stderr?.destroy();
    } else {
      proc.kill();
      proc.stdin?.destroy();
    }
  };
  if (io.gone) { abandon(); return; }
  io.onGone(abandon);

  if (io.stdin) {
    if (proc.stdin) {
      proc.stdin.on('error', () => { /* the process stopped reading */ });
      io.stdin.pipe(proc.stdin);
    } else io.stdin.resume();
  }
  io.onResize((cols, rows) => proc.resize?.(cols, rows));

  const outputs = [forward(proc.stdout, io.stdout)];
  // with a tty there is no stderr (it is merged into stdout by the terminal)
  if (proc.stderr) outputs.push(forward(proc.stderr, p.tty ? null : io.stderr));
  let status: WireStatus;
  try {
    const code = await proc.exited;
    status = p.attach ? SUCCESS : exitStatus(code, p.command);
  } catch (e) {
    status = errorStatus(e);
  }
  await Promise.all(outputs);
  if (!io.gone) io.finish(status);
}

/** `{"Width":w,"Height":h}` → [cols, rows], or null */
function parseSize(text: string): [number, number] | null {
  if (!text.trim()) return null;
  try {
    const r = JSON.parse(text) as { Width?: unknown; Height?: unknown };
    return typeof r.Width === 'number' && typeof r.Height === 'number' ? [r.Width, r.Height] : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// WebSocket channel protocol

function wsIO(ws: WebSocket, p: ExecUpgradeParams, v5: boolean): SessionIO {
  let gone = false;
  let finished = false;
  const goneCbs: (() => void)[] = [];
  let resizeCb: ((cols: number, rows: number) => void) | null = null;
  const pendingResizes: [number, number][] = [];

  const sink = (channel: number): Writable => new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (ws.readyState !== ws.OPEN) { cb(); return; }
      const msg = Buffer.allocUnsafe(chunk.length + 1);
      msg[0] = channel;
      chunk.copy(msg, 1);
      // the callback fires once the frame is handed to the socket: backpressure for the process
      ws.send(msg, { binary: true }, () => cb());
    },
  });
  const stdin = p.stdin ? new PassThrough() : null;

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return; // the protocol is binary; text frames mean nothing
    const ch = data[0];
    const payload = data.subarray(1);
    switch (ch) {
      case CH_STDIN:
        if (stdin && !stdin.writableEnded && payload.length) {
          if (!stdin.write(Buffer.from(payload)) && !ws.isPaused) {
            // the process reads slower than the client sends: stop reading the socket for a while
            ws.pause();
            stdin.once('drain', () => ws.resume());
          }
        }
        break;
      case CH_RESIZE:
        // one JSON object per message (kubectl adds a newline); take each line that parses
        for (const line of payload.toString('utf8').split('\n')) {
          const size = parseSize(line);
          if (!size) continue;
          if (resizeCb) resizeCb(size[0], size[1]);
          else pendingResizes.push(size);
        }
        break;
      case CH_CLOSE:
        if (v5 && payload[0] === CH_STDIN) stdin?.end();
        break;
      default:
        break;
    }
  });
  ws.on('error', () => { /* followed by close */ });
  ws.on('close', () => {
    if (finished) return;
    gone = true;
    stdin?.destroy();
    for (const cb of goneCbs.splice(0)) cb();
  });

  return {
    stdout: p.stdout ? sink(CH_STDOUT) : null,
    stderr: p.stderr && !p.tty ? sink(CH_STDERR) : null,
    stdin,
    onResize(cb) {
      resizeCb = cb;
      for (const [w, h] of pendingResizes.splice(0)) cb(w, h);
    },
    finish(status) {
      if (finished || gone) return;
      finished = true;
      stdin?.destroy();
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.concat([Buffer.from([CH_ERROR]), Buffer.from(JSON.stringify(status))]), { binary: true });
      ws.close(1000);
    },
    get gone() { return gone; },
    onGone(cb) { goneCbs.push(cb); },
  };
}

// ---------------------------------------------------------------------------------------------------
// SPDY/3.1 fallback

function spdyExec(req: IncomingMessage, socket: Duplex, head: Buffer, p: ExecUpgradeParams): void {
  const offered = offeredProtocols(req.headers['x-stream-protocol-version']);
  if (!offered.includes(SPDY_PROTOCOL)) {
    refuseUpgrade(socket, errors.forbidden(`unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server supports ["${SPDY_PROTOCOL}"]`).toStatus());
    return;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
    `X-Stream-Protocol-Version: ${SPDY_PROTOCOL}\r\n\r\n`,
  );
  const session = new SpdySession(socket, head);
  const want = new Set<string>(['error']);
  if (p.stdin) want.add('stdin');
  if (p.stdout) want.add('stdout');
  if (p.stderr && !p.tty) want.add('stderr');
  if (p.tty) want.add('resize');
  const got = new Map<string, SpdyStream>();
  let started = false;
  const timer = setTimeout(() => { if (!started) session.destroy(); }, SPDY_STREAM_TIMEOUT_MS);
  timer.unref();
  session.on('close', () => clearTimeout(timer));
  session.on('stream', (s: SpdyStream) => {
    s.on('error', () => { /* reset */ });
    const type = s.headers.streamtype ?? '';
    if (started || !want.has(type) || got.has(type)) { s.reset(); return; }
    s.reply();
    got.set(type, s);
    // the client never writes to these; keep them drained so a stray byte cannot stall the session
    if (type === 'error' || type === 'stdout' || type === 'stderr') s.resume();
    if (got.size === want.size) {
      started = true;
      clearTimeout(timer);
      void runSession(spdyIO(session, got, p), p);
    }
  });
}

function spdyIO(session: SpdySession, streams: Map<string, SpdyStream>, p: ExecUpgradeParams): SessionIO {
  let gone = false;
  let finished = false;
  const goneCbs: (() => void)[] = [];
  session.on('close', () => {
    if (finished) return;
    gone = true;
    for (const cb of goneCbs.splice(0)) cb();
  });
  const resize = streams.get('resize');
  return {
    stdout: streams.get('stdout') ?? null,
    stderr: streams.get('stderr') ?? null,
    stdin: streams.get('stdin') ?? null,
    onResize(cb) {
      if (!resize) return;
      let buf = '';
      resize.setEncoding('utf8');
      resize.on('data', (d: string) => {
        buf += d;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          const size = parseSize(line);
          if (size) cb(size[0], size[1]);
        }
      });
    },
    finish(status) {
      if (finished || gone) return;
      finished = true;
      const err = streams.get('error')!;
      err.end(JSON.stringify(status));
      for (const [type, s] of streams) if (type !== 'error' && !s.writableEnded) s.end();
      session.close();
    },
    get gone() { return gone; },
    onGone(cb) { goneCbs.push(cb); },
  };
}
