// The API server's checks before a pod's log/exec/attach is proxied: PodLogOptions validation and the
// container choice, in upstream's words. (The proxying itself is covered with real kubectl in
// test/integration/streaming.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStatusError, type StatusError } from '../machinery/status.js';
import { chooseContainer, logParams } from './streaming-proxy.js';

function fails(fn: () => unknown): StatusError {
  try { fn(); } catch (e) { if (isStatusError(e)) return e; throw e; }
  throw new Error('expected a StatusError');
}

test('log options: passed on normalised; bad values are 422 Invalid or 400 as upstream', () => {
  const q = (s: string) => logParams('web-1', new URLSearchParams(s)).toString();
  assert.equal(q('follow=true&tailLines=5&timestamps=1&container=x'), 'follow=true&timestamps=true&tailLines=5');
  assert.equal(q('sinceSeconds=60&limitBytes=10&previous=true'), 'previous=true&limitBytes=10&sinceSeconds=60');
  assert.equal(q('sinceTime=2026-01-01T00:00:00Z&follow=false'), 'sinceTime=2026-01-01T00%3A00%3A00Z');
  let e = fails(() => q('tailLines=-1'));
  assert.equal(e.code, 422);
  assert.equal(e.message, 'PodLogOptions "web-1" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0');
  assert.equal(e.details?.kind, 'PodLogOptions');
  e = fails(() => q('limitBytes=0'));
  assert.equal(e.message, 'PodLogOptions "web-1" is invalid: limitBytes: Invalid value: 0: must be greater than 0');
  e = fails(() => q('sinceSeconds=0'));
  assert.equal(e.message, 'PodLogOptions "web-1" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0');
  e = fails(() => q('sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z'));
  assert.equal(e.code, 422);
  assert.match(e.message, /at most one of `sinceTime` or `sinceSeconds` may be specified/);
  assert.equal(fails(() => q('tailLines=abc')).code, 400);
  assert.equal(fails(() => q('follow=maybe')).code, 400);
  assert.equal(fails(() => q('sinceTime=yesterday')).code, 400);
});

test('container choice: the named one, the only one, or upstream\'s error listing the choices', () => {
  const pod = (containers: string[], init: string[] = []) => ({
    metadata: { name: 'web-1' },
    spec: { containers: containers.map((name) => ({ name })), initContainers: init.map((name) => ({ name })) },
  });
  assert.equal(chooseContainer(pod(['app']), ''), 'app');
  assert.equal(chooseContainer(pod(['a', 'b']), 'b'), 'b');
  assert.equal(chooseContainer(pod(['a'], ['setup']), 'setup'), 'setup');
  assert.equal(fails(() => chooseContainer(pod(['a', 'b']), '')).message, 'a container name must be specified for pod web-1, choose one of: [a b]');
  assert.equal(fails(() => chooseContainer(pod(['a', 'b'], ['i']), '')).message,
    'a container name must be specified for pod web-1, choose one of: [a b] or one of the init containers: [i]');
  const bad = fails(() => chooseContainer(pod(['a']), 'nope'));
  assert.equal(bad.code, 400);
  assert.equal(bad.message, 'container nope is not valid for pod web-1');
});
