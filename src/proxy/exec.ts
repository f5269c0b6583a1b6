// Runs the rule-programming tools (nft, iptables-restore, iptables-save, iptables) as child
// processes: a script goes in on stdin, stdout comes back, and a non-zero exit becomes an error that
// carries the tool's stderr (nft and iptables-restore name the offending line there).
import { spawn } from 'node:child_process';

export interface RunResult { stdout: string; stderr: string; code: number }

/** The signature the backends use to run tools; tests and benches may wrap it. */
export type Runner = (file: string, args: string[], input?: string) => Promise<RunResult>;

export class CommandError extends Error {
  constructor(readonly file: string, readonly args: string[], readonly code: number, readonly stderr: string) {
    super(`${file} ${args.join(' ')} exited with ${code}: ${stderr.trim().split('\n').slice(0, 12).join('\n')}`);
    this.name = 'CommandError';
  }
}

/** Runs file with args, feeding input on stdin; resolves with the output whatever the exit code. */
export const runCommand: Runner = (file, args, input) => new Promise((resolve, reject) => {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.on('error', reject);
  // a tool that exits before reading all its input makes stdin emit EPIPE: the exit code tells the story
  child.stdin.on('error', () => undefined);
  child.on('close', (code, signal) => resolve({
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8') + (signal ? `killed by ${signal}` : ''),
    code: code ?? 128,
  }));
  child.stdin.end(input ?? '');
});

/** Like run, but a non-zero exit throws CommandError. */
export async function mustRun(run: Runner, file: string, args: string[], input?: string): Promise<string> {
  const r = await run(file, args, input);
  if (r.code !== 0) throw new CommandError(file, args, r.code, r.stderr);
  return r.stdout;
}
