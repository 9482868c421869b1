// Passage splitting for embeddings: sizes near the target, cuts at boundaries, overlap, limits, offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitPassages } from '../../src/search/passages';

const options = { targetChars: 100, overlapChars: 20, maxPassages: 100 };

test('short text is one passage; empty text none', () => {
  assert.deepEqual(splitPassages('Hello world.', options), [{ index: 0, start: 0, text: 'Hello world.' }]);
  assert.deepEqual(splitPassages('   ', options), []);
  assert.deepEqual(splitPassages('', options), []);
});

test('long text: passages within the target, cut at sentence ends, overlapping, covering everything', () => {
  const sentences = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about topic ${i % 7}.`);
  const text = sentences.join(' ');
  const passages = splitPassages(text, options);
  assert.ok(passages.length > 10);
  for (const [i, p] of passages.entries()) {
    assert.equal(p.index, i);
    assert.ok(p.text.length <= options.targetChars, `passage ${i} is ${p.text.length} chars`);
    assert.ok(p.text.length >= options.targetChars / 2 - options.overlapChars || i === passages.length - 1, `passage ${i} too short: ${p.text.length}`);
    assert.equal(text.slice(p.start, p.start + p.text.length).trim().startsWith(p.text.slice(0, 10)), true, 'start is the passage offset');
    if (i < passages.length - 1) assert.match(p.text, /\.$/, 'cut after a sentence end');
  }
  // Every sentence is whole in at least one passage.
  for (const sentence of sentences) assert.ok(passages.some((p) => p.text.includes(sentence)), sentence);
  // Neighbours overlap.
  for (let i = 1; i < passages.length; i++) assert.ok(passages[i]!.start < passages[i - 1]!.start + passages[i - 1]!.text.length);
});

test('text without spaces is cut hard at the target; the passage cap holds', () => {
  const passages = splitPassages('x'.repeat(1000), options);
  assert.ok(passages.every((p) => p.text.length <= 100));
  assert.ok(passages.length >= 10);
  assert.equal(splitPassages('word '.repeat(10_000), { ...options, maxPassages: 5 }).length, 5);
  assert.throws(() => splitPassages('x', { targetChars: 10, overlapChars: 10, maxPassages: 1 }), /overlapChars/);
});
