// Port-forward to a server that listens only on the pod's loopback (127.0.0.1 or ::1), as upstream
// runtimes allow: kubelet's dockershim ran `nsenter -t PID -n socat - TCP4:localhost:PORT`; containerd
// and CRI-O enter the pod's network namespace in-process. Node cannot setns(2) a thread, so we do what
// dockershim did, with busybox's nc (busybox-static is on every node that builds its images locally):
// `nsenter --net=<pod netns> busybox nc 127.0.0.1 PORT`, its stdin/stdout as the stream. busybox nc
// half-closes (shutdown(SHUT_WR)) on stdin EOF and exits when the server closes, which is what
// port-forward needs.
//
// The agent uses this only after a direct connection to the pod IP was refused, and only when the pod's
// namespace has a listening socket on loopback for that port (read from /proc/net/tcp{,6} inside it),
// so the common case stays a plain TCP connection.
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { findBinary, run } from './exec.js';

/** true when nsenter and busybox are on this host */
export function loopbackForwardAvailable(): boolean {
  return !!findBinary('nsenter') && !!(findBinary('busybox') ?? findBinary('/bin/busybox'));
}

/** Ports in LISTEN state bound to a loopback address, from /proc/net/tcp and tcp6 text, with the
 *  address family to dial (IPv4 when both listen). */
export function loopbackListeners(procNetTcp: string): Map<number, 'v4' | 'v6'> {
  const ports = new Map<number, 'v4' | 'v6'>();
  for (const line of procNetTcp.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue; // st 0A = LISTEN
    const [addr, portHex] = (f[1] ?? '').split(':');
    if (!addr || !portHex) continue;
    // 0100007F = 127.0.0.1 (little-endian); any 127/8 address ends in 7F; ::1 is 0000…01000000
    const loop4 = addr.length === 8 && addr.endsWith('7F');
    const loop6 = addr === '00000000000000000000000001000000';
    const port = parseInt(portHex, 16);
    if (loop4) ports.set(port, 'v4'); else if (loop6 && !ports.has(port)) ports.set(port, 'v6');
  }
  return ports;
}

/** Which loopback (IPv4 or IPv6) `port` listens on inside the network namespace at `netnsPath`, if any. */
export async function listensOnLoopback(netnsPath: string, port: number): Promise<'v4' | 'v6' | undefined> {
  const nsenter = findBinary('nsenter');
  if (!nsenter) return undefined;
  // /proc/self/net shows the reading process's network namespace
  const r = await run(nsenter, [`--net=${netnsPath}`, 'cat', '/proc/self/net/tcp', '/proc/self/net/tcp6']).catch(() => undefined);
  return r ? loopbackListeners(r.stdout).get(port) : undefined;
}

/** A stream to 127.0.0.1:port (or [::1]:port) inside the network namespace at `netnsPath`. */
export function dialPodLoopback(netnsPath: string, port: number, ipv6 = false): Duplex {
  const nsenter = findBinary('nsenter');
  const busybox = findBinary('busybox') ?? findBinary('/bin/busybox');
  if (!nsenter || !busybox) throw new Error('nsenter and busybox are needed to reach a server on the pod\'s loopback');
  const child = spawn(nsenter, [`--net=${netnsPath}`, busybox, 'nc', ipv6 ? '::1' : '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'ignore'] });
  const d = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  d.once('close', kill);
  child.once('error', (e) => d.destroy(e));
  return d;
}
