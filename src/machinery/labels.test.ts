import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLabelSelector, parseLabelSelector, selectorFromLabelSelector, selectorFromSet } from './labels.js';
import { StatusError } from './status.js';

function badRequest(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StatusError, `expected StatusError, got ${String(e)}`);
    assert.equal(e.code, 400);
    assert.equal(e.reason, 'BadRequest');
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('equality operators', () => {
  for (const s of ['app=web', 'app==web', ' app = web ']) {
    const sel = parseLabelSelector(s);
    assert.equal(sel.matches({ app: 'web' }), true, s);
    assert.equal(sel.matches({ app: 'db' }), false, s);
    assert.equal(sel.matches({}), false, s);
    assert.equal(sel.matches(undefined), false, s);
  }
  const ne = parseLabelSelector('app!=web');
  assert.equal(ne.matches({ app: 'web' }), false);
  assert.equal(ne.matches({ app: 'db' }), true);
  assert.equal(ne.matches({}), true, 'a missing label is "not equal"');
});

test('set operators, exists and does-not-exist', () => {
  const sel = parseLabelSelector('tier in (a, b),env notin (prod),owner,!legacy');
  assert.equal(sel.matches({ tier: 'a', env: 'dev', owner: 'x' }), true);
  assert.equal(sel.matches({ tier: 'b', owner: '' }), true, 'notin matches a missing label');
  assert.equal(sel.matches({ tier: 'c', owner: 'x' }), false);
  assert.equal(sel.matches({ tier: 'a', env: 'prod', owner: 'x' }), false);
  assert.equal(sel.matches({ tier: 'a' }), false, 'owner must exist');
  assert.equal(sel.matches({ tier: 'a', owner: 'x', legacy: 'true' }), false);
  // keywords are values inside parentheses
  assert.equal(parseLabelSelector('x in (in,notin)').matches({ x: 'notin' }), true);
  // empty values: `()` and `(,)` mean the empty string
  assert.equal(parseLabelSelector('x in ()').matches({ x: '' }), true);
  assert.equal(parseLabelSelector('x in (a,)').matches({ x: '' }), true);
  assert.equal(parseLabelSelector('x=').matches({ x: '' }), true);
  assert.equal(parseLabelSelector('x=,y').matches({ x: '', y: '1' }), true);
});

test('Gt and Lt compare integers; non-integer label values never match', () => {
  const sel = parseLabelSelector('gen>1,gen<5');
  assert.equal(sel.matches({ gen: '3' }), true);
  assert.equal(sel.matches({ gen: '1' }), false);
  assert.equal(sel.matches({ gen: '5' }), false);
  assert.equal(sel.matches({ gen: 'x' }), false);
  assert.equal(sel.matches({}), false);
  assert.equal(sel.toString(), 'gen>1,gen<5');
  badRequest(() => parseLabelSelector('gen>x'), /^unable to parse requirement: values\[0\]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer$/);
});

test('empty string selects everything', () => {
  for (const s of ['', '   ']) {
    const sel = parseLabelSelector(s);
    assert.equal(sel.empty, true);
    assert.equal(sel.matches({}), true);
    assert.equal(sel.matches(undefined), true);
    assert.equal(sel.toString(), '');
  }
});

test('canonical string form is sorted by key with sorted, de-duplicated values', () => {
  assert.equal(parseLabelSelector('tier in (b,a,b), app==web, !z, a').toString(), 'a,app==web,tier in (a,b),!z');
  assert.equal(parseLabelSelector('x notin (q)').toString(), 'x notin (q)');
  assert.equal(parseLabelSelector('example.com/role=db').toString(), 'example.com/role=db');
});

test('requirements and exact matches for indexing', () => {
  const sel = parseLabelSelector('app=web,tier in (fe),env!=prod,zone in (a,b)');
  assert.deepEqual(sel.requirements.map((r) => [r.key, r.operator, r.values]), [
    ['app', '=', ['web']], ['env', '!=', ['prod']], ['tier', 'in', ['fe']], ['zone', 'in', ['a', 'b']],
  ]);
  assert.equal(sel.requiresExactMatch('app'), 'web');
  assert.equal(sel.requiresExactMatch('tier'), 'fe');
  assert.equal(sel.requiresExactMatch('env'), undefined);
  assert.equal(sel.requiresExactMatch('zone'), undefined);
  assert.deepEqual(sel.exactMatchLabels(), { app: 'web', tier: 'fe' });
});

test('syntax errors are 400s in upstream wording', () => {
  badRequest(() => parseLabelSelector('a b'), "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
  badRequest(() => parseLabelSelector('a=b c'), "found 'c', expected: ',' or 'end of string'");
  badRequest(() => parseLabelSelector('a=b,'), "found '', expected: identifier after ','");
  badRequest(() => parseLabelSelector(',a'), "found ',', expected: !, identifier, or 'end of string'");
  badRequest(() => parseLabelSelector('a in b'), "unable to parse requirement: found 'b' expected: '('");
  badRequest(() => parseLabelSelector('a in (b'), "unable to parse requirement: found '', expected: ',' or ')'");
  badRequest(() => parseLabelSelector('a=(b)'), "unable to parse requirement: found '(', expected: identifier");
  badRequest(() => parseLabelSelector('!a=b'), "found '=', expected: ',' or 'end of string'");
  badRequest(() => parseLabelSelector('a=b=c'), "found '=', expected: ',' or 'end of string'");
});

test('keys and values are validated', () => {
  badRequest(() => parseLabelSelector('a/b/c=x'), /^unable to parse requirement: <nil>: Invalid value: "a\/b\/c": a valid label key must consist of/);
  badRequest(() => parseLabelSelector(`${'k'.repeat(64)}=x`), /name part must be no more than 63 bytes/);
  badRequest(() => parseLabelSelector('Bad_Prefix/k=x'), /prefix part a lowercase RFC 1123 subdomain/);
  badRequest(() => parseLabelSelector('-a=x'), /name part must consist of alphanumeric characters/);
  badRequest(() => parseLabelSelector('app=-web'), /^unable to parse requirement: values\[0\]\[app\]: Invalid value: "-web": a valid label must be an empty string/);
  badRequest(() => parseLabelSelector(`app=${'v'.repeat(64)}`), /values\[0\]\[app\]: Invalid value: "v+": must be no more than 63 bytes/);
  // the longest valid forms pass
  assert.equal(parseLabelSelector(`k8s.io/${'k'.repeat(63)}=${'v'.repeat(63)}`).empty, false);
});

test('metav1.LabelSelector: nil matches nothing, {} matches everything', () => {
  const none = selectorFromLabelSelector(undefined);
  assert.equal(none.matches({ app: 'web' }), false);
  assert.equal(none.matches({}), false);
  assert.equal(none.empty, false);
  assert.equal(none.nothing, true);
  assert.equal(selectorFromLabelSelector(null).matches({}), false);
  const all = selectorFromLabelSelector({});
  assert.equal(all.empty, true);
  assert.equal(all.matches({ app: 'web' }), true);
  assert.equal(selectorFromLabelSelector({ matchLabels: {}, matchExpressions: [] }).matches({}), true);
});

test('metav1.LabelSelector with matchLabels and matchExpressions', () => {
  const sel = selectorFromLabelSelector({
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['fe', 'be'] },
      { key: 'env', operator: 'NotIn', values: ['prod'] },
      { key: 'owner', operator: 'Exists' },
      { key: 'legacy', operator: 'DoesNotExist' },
    ],
  });
  assert.equal(sel.matches({ app: 'web', tier: 'fe', owner: 'me' }), true);
  assert.equal(sel.matches({ app: 'web', tier: 'fe', owner: 'me', legacy: 'y' }), false);
  assert.equal(sel.matches({ app: 'web', tier: 'x', owner: 'me' }), false);
  assert.equal(sel.toString(), 'app=web,env notin (prod),!legacy,owner,tier in (be,fe)');
  badRequest(() => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }), '"Gt" is not a valid label selector operator');
  badRequest(() => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }), /for 'in', 'notin' operators, values set can't be empty/);
  badRequest(() => selectorFromLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }), /values set must be empty for exists and does not exist/);
});

test('formatLabelSelector as used by Scale status and the Selector column', () => {
  assert.equal(formatLabelSelector({ matchLabels: { app: 'web' } }), 'app=web');
  assert.equal(formatLabelSelector({ matchLabels: { app: 'web', 'pod-template-hash': '5d8c' } }), 'app=web,pod-template-hash=5d8c');
  assert.equal(formatLabelSelector({}), '<none>');
  assert.equal(formatLabelSelector(undefined), '<none>');
  assert.equal(formatLabelSelector({ matchLabels: { 'a b': 'c' } }), '<error>');
});

test('selectorFromSet', () => {
  const s = selectorFromSet({ b: '2', a: '1' });
  assert.equal(s.toString(), 'a=1,b=2');
  assert.equal(s.matches({ a: '1', b: '2', c: '3' }), true);
  assert.equal(selectorFromSet(undefined).matches({}), true);
});
