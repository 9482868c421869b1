// The chunk buffer pool: buffers of a size come back once given, within its byte cap; small, partial or
// transferred buffers are never pooled; an idle pool lets its buffers go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { ChunkBufferPool } from '../../src/services/chunk-buffers';

const MiB = 1024 * 1024;

test('a buffer given back is handed out again for the same size, never for another', () => {
  const pool = new ChunkBufferPool(8 * MiB);
  const first = pool.take(2 * MiB);
  pool.give(first);
  assert.equal(pool.pooledBytes, 2 * MiB);
  assert.notEqual(pool.take(3 * MiB), first);
  assert.equal(pool.take(2 * MiB), first);
  assert.equal(pool.pooledBytes, 0);
  assert.notEqual(pool.take(2 * MiB), first, 'taken once, not twice');
});

test('the pool keeps at most its cap; small, partial and transferred buffers are not pooled', () => {
  const pool = new ChunkBufferPool(3 * MiB);
  pool.give(Buffer.allocUnsafeSlow(2 * MiB));
  pool.give(Buffer.allocUnsafeSlow(2 * MiB));
  assert.equal(pool.pooledBytes, 2 * MiB, 'a second 2 MiB buffer would pass the 3 MiB cap');
  const small = new ChunkBufferPool(8 * MiB);
  small.give(Buffer.allocUnsafe(64 * 1024));
  small.give(Buffer.allocUnsafeSlow(4 * MiB).subarray(0, 2 * MiB));
  const moved = Buffer.allocUnsafeSlow(2 * MiB);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(moved, [moved.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
  small.give(moved);
  assert.equal(small.pooledBytes, 0);
});

test('an idle pool lets its buffers go', async () => {
  const pool = new ChunkBufferPool(8 * MiB, MiB, 50);
  pool.give(pool.take(2 * MiB));
  assert.equal(pool.pooledBytes, 2 * MiB);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(pool.pooledBytes, 0);
});
