// Unit tests for search's pure parts: reciprocal-rank fusion, turning a marked-up headline into a plain snippet with
// highlight offsets, and the local provider's hash.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeadline, reciprocalRankFusion } from '../../src/services/search.service';
import { fnv1a } from '../../src/search/embeddings';

describe('reciprocalRankFusion', () => {
  test('a result in both lists beats one ranked first in only one', () => {
    const fused = reciprocalRankFusion([
      ['a', 'b', 'c'],
      ['b', 'd'],
    ]);
    assert.deepEqual(fused.map((r) => r.id), ['b', 'a', 'd', 'c']);
    assert.equal(fused[0]!.score, 1 / 62 + 1 / 61);
    assert.equal(fused[1]!.score, 1 / 61);
  });

  test('empty lists fuse to nothing; one list keeps its order', () => {
    assert.deepEqual(reciprocalRankFusion([[], []]), []);
    assert.deepEqual(reciprocalRankFusion([['x', 'y', 'z'], []]).map((r) => r.id), ['x', 'y', 'z']);
  });
});

describe('parseHeadline', () => {
  test('markers become [start, end) offsets into the plain snippet', () => {
    const { snippet, highlights } = parseHeadline('the \u0001revenue\u0002 grew in \u0001Q3\u0002.');
    assert.equal(snippet, 'the revenue grew in Q3.');
    assert.deepEqual(highlights, [
      [4, 11],
      [20, 22],
    ]);
    assert.deepEqual(highlights.map(([s, e]) => snippet.slice(s, e)), ['revenue', 'Q3']);
  });

  test('offsets count UTF-16 code units as JavaScript strings do; stray or empty markers are dropped', () => {
    const { snippet, highlights } = parseHeadline('😀 \u0001naïve\u0002 \u0002x \u0001\u0002');
    assert.equal(snippet, '😀 naïve x ');
    assert.deepEqual(highlights, [[3, 8]]);
    assert.equal(snippet.slice(3, 8), 'naïve');
  });
});

describe('fnv1a (the local provider\'s trigram hash)', () => {
  test('the published FNV-1a 32-bit test vectors', () => {
    assert.equal(fnv1a(''), 0x811c9dc5);
    assert.equal(fnv1a('a'), 0xe40c292c);
    assert.equal(fnv1a('foobar'), 0xbf9cf968);
  });
});
