// `kubectl attach` end to end: `kyb server` with its own node agent (real runc + conmon), the real
// kubectl 1.32. A container declared with `stdin: true` reads what `kubectl attach -i` sends it:
//  * stdinOnce: true — the client's end of input closes the container's stdin, so a `while read` loop
//    ends, the container exits and the attach ends with it;
//  * stdinOnce: false — stdin outlives a client: a second `kubectl attach -i` still writes to it;
//  * `kubectl run -i --rm --restart=Never`: the pod is made with stdin/stdinOnce, attached, then deleted;
//  * `kubectl attach -it` (kubectl run under `script`, which gives it a terminal of 101x33) to a
//    container with `tty: true`: the container's terminal takes kubectl's size, input arrives;
//  * a plain container (no stdin): `kubectl attach` shows its output from then on (read from its log).
// Everything the agent made is removed and checked by the helper's stop().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { TestCluster } from '../integration/cluster.js';
import { KUBECTL } from '../integration/cluster.js';
import { canRunContainers, poll, startAgentCluster, type AgentCluster } from './agent-cluster.js';
import { attachBridge } from '../../src/node/runtime/attach.js';

const canRun = canRunContainers() && !!attachBridge();
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox, python3';
const IMAGE = 'kyb.local/busybox:1.35';

let k: AgentCluster;
let c: TestCluster;

before(async () => {
  if (!canRun) return;
  k = await startAgentCluster({ name: 'att', octets: [50, 25] });
  c = k.c;
  await poll('node registered', async () => (await c.kubectl(['get', 'node', k.node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${k.node}`, '--timeout=90s']);
});

after(async () => { if (canRun) await k?.stop(); });

const pod = (name: string, command: string[], io: { stdin?: boolean; stdinOnce?: boolean; tty?: boolean } = {}) => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name },
  spec: {
    terminationGracePeriodSeconds: 0, restartPolicy: 'Never',
    containers: [{ name: 'main', image: IMAGE, imagePullPolicy: 'IfNotPresent', command, ...io }],
  },
});

const LOOP = ['/bin/sh', '-c', 'while read l; do echo got:$l; done; echo stdin-closed'];

/** A long-running kubectl (attach) whose output can be waited for. */
function session(args: string[], viaScript = false) {
  // script(1) runs kubectl on a pty of its own (set to 101x33), so kubectl -t sees a terminal
  const child = viaScript
    ? spawn('script', ['-qec', `stty cols 101 rows 33; exec ${KUBECTL} ${args.join(' ')}`, '/dev/null'], { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(KUBECTL, args, { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return {
    child, exited,
    get out() { return out; },
    write(s: string) { child.stdin.write(s); },
    waitFor: (re: RegExp, ms = 30_000) => poll(`${re} in kubectl ${args.join(" ")} (stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}, exit ${child.exitCode} ${child.signalCode} pid ${child.pid})`,
      async () => re.test(out), ms, 50),
    async stop() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); await exited; },
  };
}

test('kubectl attach -i: stdinOnce closes stdin at end of input, the container exits', { skip }, async () => {
  await c.kubectl(['apply', '-f', '-'], { input: pod('once', LOOP, { stdin: true, stdinOnce: true }) });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/once', '--timeout=90s']);
  const r = await c.kubectl(['attach', '-i', 'once'], { input: 'alpha\nbeta\n' });
  assert.equal(r.stdout, 'got:alpha\ngot:beta\nstdin-closed\n');
  await c.kubectl(['wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/once', '--timeout=60s']);
  await c.kubectl(['delete', 'pod', 'once', '--wait=false']);
});

test('kubectl attach -i: without stdinOnce stdin stays open for the next client', { skip }, async () => {
  await c.kubectl(['apply', '-f', '-'], { input: pod('keep', LOOP, { stdin: true }) });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/keep', '--timeout=90s']);
  const a = session(['attach', '-i', 'keep']);
  try {
    a.write('one\n');
    await a.waitFor(/got:one\n/);
    a.child.stdin.end();
  } finally { await a.stop(); }
  const b = session(['attach', '-i', 'keep']);
  try {
    b.write('two\n');
    await b.waitFor(/got:two\n/);
  } finally { await b.stop(); }
  assert.doesNotMatch(b.out, /got:one|stdin-closed/);
  const phase = (await c.kubectl(['get', 'pod', 'keep', '-o', 'jsonpath={.status.phase}'])).stdout;
  assert.equal(phase, 'Running');
  await c.kubectl(['delete', 'pod', 'keep', '--wait=false']);
});

test('kubectl run -i --rm: input reaches the new pod, which is deleted afterwards', { skip }, async () => {
  const r = await c.kubectl(['run', 'runner', '-i', '--rm', '--restart=Never', `--image=${IMAGE}`, '--image-pull-policy=IfNotPresent',
    '--', '/bin/sh', '-c', 'read l; echo hello:$l'], { input: 'world\n' });
  assert.match(r.stdout, /^hello:world$/m);
  await poll('pod runner deleted', async () => (await c.kubectl(['get', 'pod', 'runner'], { allowFail: true })).code !== 0);
});

const hasScript = spawnSync('script', ['--version']).status === 0;
test('kubectl attach -it: the container terminal takes the size and input of the client', { skip: skip || (!hasScript && 'needs script (util-linux)') }, async () => {
  // One attempt may see no output at all from the script-wrapped kubectl (kubectl alive, nothing on the
  // pty for 30 s): seen in about 1 of 5 runs under CPU load, on earlier trees too, cause not found.
  // A second attempt runs with a fresh pod; one attempt must pass entirely.
  for (let attempt = 1; ; attempt++) {
    const name = `term-${attempt}`;
    await c.kubectl(['apply', '-f', '-'], { input: pod(name, ['/bin/sh', '-c', 'read l; sleep 0.5; stty size; echo got:$l'], { stdin: true, stdinOnce: true, tty: true }) });
    await c.kubectl(['wait', '--for=condition=Ready', `pod/${name}`, '--timeout=90s']);
    const s = session(['attach', '-it', name], true);
    try {
      s.write('hello\n');
      await s.waitFor(/33 101\r\n[^]*got:hello\r\n/, 20_000);
      assert.equal(await s.exited, 0, 'the attach ends when the container exits');
    } catch (e) {
      await s.stop();
      await c.kubectl(['delete', 'pod', name, '--wait=false']);
      if (attempt >= 2 || s.out !== '') throw e;
      process.stderr.write(`attach -it: attempt ${attempt} saw no output at all (${(e as Error).message}); trying again with a new pod\n`);
      continue;
    }
    await s.stop();
    await c.kubectl(['wait', '--for=jsonpath={.status.phase}=Succeeded', `pod/${name}`, '--timeout=60s']);
    await c.kubectl(['delete', 'pod', name, '--wait=false']);
    break;
  }
});

test('kubectl attach of a container without stdin shows its output from then on', { skip }, async () => {
  await c.kubectl(['apply', '-f', '-'], { input: pod('plain', ['/bin/sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done']) });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/plain', '--timeout=90s']);
  await poll('a few ticks logged', async () => /tick-2\n/.test((await c.kubectl(['logs', 'plain'])).stdout), 30_000, 100);
  const s = session(['attach', 'plain']);
  try {
    await s.waitFor(/tick-\d+\n[^]*tick-\d+\n/);
  } finally { await s.stop(); }
  assert.doesNotMatch(s.out, /^tick-0\n/, 'output from the time of attaching, not the whole log');
  await c.kubectl(['delete', 'pod', 'plain', '--wait=false']);
});
