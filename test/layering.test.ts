// Holds the import rule of ARCHITECTURE.md: who may import whom among src/ folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const allowed: Record<string, string[]> = {
  api: ['machinery'],
  machinery: [],
  storage: ['machinery'],
  client: ['api', 'machinery'],
  apiserver: ['api', 'machinery', 'storage'],
  scheduler: ['api', 'machinery', 'client'],
  controllers: ['api', 'machinery', 'client'],
  node: ['api', 'machinery', 'client'],
  proxy: ['api', 'machinery', 'client'],
  dns: ['api', 'machinery', 'client'],
  cli: ['*'],
};

function files(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out);
    else if (n.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('src/ folders import only what ARCHITECTURE.md allows', () => {
  const src = resolve('src');
  const bad: string[] = [];
  for (const f of files(src)) {
    if (f.endsWith('.test.ts')) continue;
    const from = relative(src, f).split('/')[0];
    const rules = allowed[from];
    assert.ok(rules, `unknown src folder ${from}`);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = relative(src, resolve(dirname(f), m[1])).split('/')[0];
      if (target === from || rules.includes('*')) continue;
      if (!rules.includes(target)) bad.push(`${relative('.', f)} imports ${m[1]} (${from} -> ${target})`);
    }
  }
  assert.deepEqual(bad, []);
});
