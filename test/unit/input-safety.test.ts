// Unit tests for the input-safety checks every request input passes before validation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findUnsafeValue, unsafeStringProblem } from '../../src/api/input-safety';

describe('unsafeStringProblem', () => {
  test('accepts ordinary and astral text', () => {
    for (const value of ['', 'report.pdf', 'İstanbul', 'ΑΡΧΕΙΟΣ', 'cafe\u0301', '😀 emoji', '日本語']) assert.equal(unsafeStringProblem(value), null, value);
  });
  test('refuses NUL anywhere', () => {
    assert.match(unsafeStringProblem('\u0000')!, /NUL/);
    assert.match(unsafeStringProblem('a\u0000b')!, /NUL/);
  });
  test('refuses unpaired surrogates, high or low, at any position', () => {
    for (const value of ['\uD800', 'a\uD83D', '\uDE00x', 'x\uDE00', '\uD83D\uD83D\uDE00'.slice(0, 2), '\uDE00\uD83D']) {
      assert.match(unsafeStringProblem(value)!, /surrogate/, JSON.stringify(value));
    }
  });
});

describe('findUnsafeValue', () => {
  test('finds the path of the first unsafe string, key or number', () => {
    assert.equal(findUnsafeValue({ a: 'ok', b: [1, 'fine', { c: true }] }), null);
    assert.deepEqual(findUnsafeValue({ a: 'ok', b: [1, 'x\u0000'] })?.path, ['b', 1]);
    assert.deepEqual(findUnsafeValue({ ['k\u0000']: 1 })?.path, ['k\u0000']);
    assert.deepEqual(findUnsafeValue([Infinity])?.path, [0]);
    assert.equal(findUnsafeValue('plain'), null);
  });
  test('refuses structures nested beyond the bound instead of walking them', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200; i++) deep = [deep];
    assert.match(findUnsafeValue(deep)!.problem, /deeper/);
  });
});
