// The pieces of the incremental upload hash: a hash-wasm state saved and loaded between chunks gives Node's
// SHA-256 of the whole; the chain digest depends on every chunk hash and their order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chainNext, resumableSha256, updateYielding } from '../../src/services/upload-hash.service';

test('a SHA-256 saved after each chunk and loaded for the next equals the SHA-256 of the whole', async () => {
  const chunks = [randomBytes(3 * 1024 * 1024 + 7), randomBytes(1), randomBytes(0), randomBytes(65536)];
  let state: Uint8Array | null = null;
  for (const chunk of chunks) {
    const hasher = await resumableSha256(state);
    await updateYielding(hasher, chunk);
    state = hasher.save();
  }
  const last = await resumableSha256(state);
  assert.equal(last.digest('hex'), createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
});

test('the chain digest changes with any chunk hash and with their order', () => {
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
  const ab = chainNext(chainNext('', a), b);
  assert.equal(ab, chainNext(chainNext('', a), b));
  assert.notEqual(ab, chainNext(chainNext('', b), a));
  assert.notEqual(ab, chainNext(chainNext('', a), a));
  assert.match(ab, /^[0-9a-f]{64}$/);
});
