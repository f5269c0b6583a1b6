// Test support: an in-process `kyb server` (memory store, HTTPS, real credentials) and a runner for
// the real kubectl 1.32 against it, with a private discovery cache.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { startServer, type RunningServer } from '../../src/cli/server.js';
import { request as httpsRequest } from 'node:https';

export const KUBECTL = process.env.KUBECTL ?? (existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl');
import { existsSync } from 'node:fs';

export interface TestCluster {
  server: RunningServer;
  dir: string;
  kubeconfig: string;
  env: NodeJS.ProcessEnv;
  kubectl(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean }): Promise<{ stdout: string; stderr: string; code: number }>;
  writeFile(name: string, content: string): string;
  stop(): Promise<void>;
}

export async function startCluster(extraArgs: string[] = []): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-test-'));
  // no node agent (real containers) unless a test asks for one with '--with-agent'
  const withAgent = extraArgs.includes('--with-agent');
  const args = extraArgs.filter((a) => a !== '--with-agent');
  // the API on loopback only (kyb's default is 0.0.0.0); a test may pass its own --bind-address (the last one wins)
  const server = await startServer(['--data-dir', dir, '--https-listen-port', '0', '--datastore-endpoint', 'memory://', '--bind-address', '127.0.0.1', ...(withAgent ? [] : ['--disable-agent']), ...args]);
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: server.kubeconfigPath, KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir };
  const kubectl: TestCluster['kubectl'] = (args, opts = {}) => new Promise((resolve, reject) => {
    const child = execFile(KUBECTL, args, { env: { ...env, ...(opts.env ?? {}) }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`kubectl ${args.join(' ')} failed (${code}):\n${stderr}\n${stdout}`));
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
    if (opts.input !== undefined) { child.stdin!.end(opts.input); }
  });
  return {
    server, dir, kubeconfig: server.kubeconfigPath, env, kubectl,
    writeFile(name, content) { const p = join(dir, name); writeFileSync(p, content); return p; },
    async stop() { await server.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Start `kubectl get -w ...` and collect its output lines until stopped. */
export function kubectlStream(c: TestCluster, args: string[]): { lines: string[]; waitFor(pred: (lines: string[]) => boolean, ms?: number): Promise<void>; stop(): void } {
  const child = spawn(KUBECTL, args, { env: c.env });
  const lines: string[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  return {
    lines,
    waitFor(pred, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`timed out; got:\n${lines.join('\n')}`)), ms);
        const check = () => { if (pred(lines)) { clearTimeout(deadline); resolve(); } else waiters.push(check); };
        check();
      });
    },
    stop() { child.kill(); },
  };
}

/** An HTTPS request that trusts any certificate and sends no credentials (or the given headers). */
export function fetchInsecure(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; body: any; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown;
        try { body = JSON.parse(text); } catch { body = undefined; }
        resolve({ status: res.statusCode ?? 0, body, text, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
