import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeFieldValue, fieldSelectorFrom, parseFieldSelector } from './fields.js';
import { StatusError } from './status.js';

function badRequest(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StatusError && e.code === 400 && e.reason === 'BadRequest' && e.message === message);
}

test('metadata.name=x matches and exposes the exact value', () => {
  const sel = parseFieldSelector('metadata.name=web');
  assert.equal(sel.matches({ 'metadata.name': 'web', 'metadata.namespace': 'default' }), true);
  assert.equal(sel.matches({ 'metadata.name': 'db' }), false);
  assert.equal(sel.exactValue('metadata.name'), 'web');
  assert.equal(sel.exactValue('metadata.namespace'), undefined);
  assert.equal(parseFieldSelector('metadata.name==web').exactValue('metadata.name'), 'web');
});

test('describe node query: = and != ANDed', () => {
  const sel = parseFieldSelector('spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed');
  assert.equal(sel.matches({ 'spec.nodeName': 'node-1', 'status.phase': 'Running' }), true);
  assert.equal(sel.matches({ 'spec.nodeName': 'node-1', 'status.phase': 'Failed' }), false);
  assert.equal(sel.matches({ 'spec.nodeName': 'node-2', 'status.phase': 'Running' }), false);
  assert.deepEqual(sel.requirements, [
    { field: 'spec.nodeName', op: '=', value: 'node-1' },
    { field: 'status.phase', op: '!=', value: 'Failed' },
    { field: 'status.phase', op: '!=', value: 'Succeeded' },
  ]);
  assert.equal(sel.exactValue('status.phase'), undefined, '!= is not an exact match');
});

test('an empty value means "field is empty"; a missing field counts as empty', () => {
  const sel = parseFieldSelector('involvedObject.name=node-1,involvedObject.namespace=,involvedObject.kind=Node');
  assert.equal(sel.matches({ 'involvedObject.name': 'node-1', 'involvedObject.namespace': '', 'involvedObject.kind': 'Node' }), true);
  assert.equal(sel.matches({ 'involvedObject.name': 'node-1', 'involvedObject.kind': 'Node' }), true);
  assert.equal(sel.matches({ 'involvedObject.name': 'node-1', 'involvedObject.namespace': 'default', 'involvedObject.kind': 'Node' }), false);
  assert.equal(sel.exactValue('involvedObject.namespace'), '');
  assert.equal(parseFieldSelector('spec.nodeName!=').matches({}), false);
  assert.equal(parseFieldSelector('spec.nodeName!=').matches({ 'spec.nodeName': 'n' }), true);
});

test('empty selector selects everything', () => {
  const sel = parseFieldSelector('');
  assert.equal(sel.empty, true);
  assert.equal(sel.matches({}), true);
  assert.equal(parseFieldSelector(',').empty, true);
});

test('escaped values', () => {
  const sel = parseFieldSelector('a=x\\,y\\=z\\\\,b=c');
  assert.equal(sel.exactValue('a'), 'x,y=z\\');
  assert.equal(sel.exactValue('b'), 'c');
  assert.equal(sel.toString(), 'a=x\\,y\\=z\\\\,b=c');
  assert.equal(escapeFieldValue('a,b=c\\'), 'a\\,b\\=c\\\\');
  assert.equal(fieldSelectorFrom([{ field: 'metadata.name', op: '=', value: 'a,b' }]).toString(), 'metadata.name=a\\,b');
});

test('invalid selectors are 400s in upstream wording', () => {
  badRequest(() => parseFieldSelector('metadata.name'), "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
  badRequest(() => parseFieldSelector('a=b,c'), "invalid selector: 'a=b,c'; can't understand 'c'");
  badRequest(() => parseFieldSelector('a=b=c'), 'invalid field selector: unescaped character in value: 61');
  badRequest(() => parseFieldSelector('a=b\\c'), 'invalid field selector: invalid escape sequence: \\c');
  badRequest(() => parseFieldSelector('a=b\\'), 'invalid field selector: invalid escape sequence: \\');
});
