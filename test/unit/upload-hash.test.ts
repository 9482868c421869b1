// The pieces of the incremental upload hash: a hash-wasm state saved and loaded between chunks (on the hashing
// thread) gives Node's SHA-256 of the whole; the chain digest depends on every chunk hash and their order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chainNext, resumableSha256 } from '../../src/services/upload-hash.service';
import { sha256Step, stopSha256Thread } from '../../src/services/sha256-thread';

test('SHA-256 steps on the hashing thread, each continuing the saved state of the last, equal the SHA-256 of the whole', async () => {
  const pool = randomBytes(1024 * 1024);
  // Views into a larger buffer (as Node's pooled Buffers are) must send their own bytes only.
  const chunks = [randomBytes(3 * 1024 * 1024 + 7), pool.subarray(10, 11), Buffer.alloc(0), pool.subarray(4096, 4096 + 65536)];
  let state: Uint8Array | null = null;
  for (const chunk of chunks) state = await sha256Step(state, chunk);
  const last = await resumableSha256(state);
  assert.equal(last.digest('hex'), createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
});

test('a buffer handed over moves to the thread without a copy; a view into a larger buffer is copied, never moved', async () => {
  const own = Buffer.allocUnsafeSlow(1024 * 1024).fill(7);
  const expected = createHash('sha256').update(own).digest('hex');
  const state = await sha256Step(null, own, { handOver: true });
  assert.equal(own.length, 0, 'the handed-over buffer is detached here');
  assert.equal((await resumableSha256(state)).digest('hex'), expected);
  const larger = Buffer.alloc(4096, 1);
  const view = larger.subarray(100, 200);
  const viewState = await sha256Step(null, view, { handOver: true });
  assert.equal(larger.length, 4096, 'the larger buffer a view belongs to stays usable');
  assert.equal((await resumableSha256(viewState)).digest('hex'), createHash('sha256').update(larger.subarray(100, 200)).digest('hex'));
});

test('steps started together are answered each with its own state, and a stopped thread is replaced', async () => {
  const parts = Array.from({ length: 8 }, () => randomBytes(100_000));
  const states = await Promise.all(parts.map((part) => sha256Step(null, part)));
  for (let i = 0; i < parts.length; i++) {
    assert.equal((await resumableSha256(states[i]!)).digest('hex'), createHash('sha256').update(parts[i]!).digest('hex'));
  }
  const inFlight = sha256Step(null, randomBytes(64 * 1024 * 1024));
  await stopSha256Thread();
  await assert.rejects(inFlight, /SHA-256 thread stopped/);
  const again = await sha256Step(null, parts[0]!);
  assert.equal((await resumableSha256(again)).digest('hex'), createHash('sha256').update(parts[0]!).digest('hex'));
});

test('the chain digest changes with any chunk hash and with their order', () => {
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
  const ab = chainNext(chainNext('', a), b);
  assert.equal(ab, chainNext(chainNext('', a), b));
  assert.notEqual(ab, chainNext(chainNext('', b), a));
  assert.notEqual(ab, chainNext(chainNext('', a), a));
  assert.match(ab, /^[0-9a-f]{64}$/);
});
