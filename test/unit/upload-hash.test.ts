// The pieces of the upload hash kept as chunks arrive: chunks fed to one live SHA-256 a slice per turn of the
// event loop give the SHA-256 of the whole; the chain digest depends on every chunk hash and their order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chainNext, hashInSlices } from '../../src/services/upload-hash.service';

test('chunks hashed in slices (views into larger buffers, empty and odd sizes among them) equal the SHA-256 of the whole', async () => {
  const pool = randomBytes(1024 * 1024);
  const chunks = [randomBytes(17 * 1024 * 1024 + 7), pool.subarray(10, 11), Buffer.alloc(0), pool.subarray(4096, 4096 + 65536), randomBytes(8 * 1024 * 1024)];
  const hash = createHash('sha256');
  for (const chunk of chunks) await hashInSlices(hash, chunk);
  assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
});

test('hashing a large chunk yields the event loop between slices', async () => {
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  await new Promise((resolve) => setImmediate(resolve));
  const before = turns;
  await hashInSlices(createHash('sha256'), randomBytes(64 * 1024 * 1024));
  clearInterval(ticker);
  assert.ok(turns > before, 'timers ran while the chunk was hashed');
});

test('the chain digest changes with any chunk hash and with their order', () => {
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
  const ab = chainNext(chainNext('', a), b);
  assert.equal(ab, chainNext(chainNext('', a), b));
  assert.notEqual(ab, chainNext(chainNext('', b), a));
  assert.notEqual(ab, chainNext(chainNext('', a), a));
  assert.match(ab, /^[0-9a-f]{64}$/);
});
