// The chunk buffer pool: spare buffers count against the buffer budget; a buffer kept with a request's share of the
// budget comes back with it for the same size, never another; small, partial or transferred buffers are never
// kept; spare buffers make room for requests; an idle pool lets its buffers (and their budget) go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { ChunkBufferPool, releaseNow } from '../../src/services/chunk-buffers';
import { ByteBudget } from '../../src/services/upload-limits';

const MiB = 1024 * 1024;

test('a buffer kept with its reservation comes back with it for the same size, never for another', () => {
  const budget = new ByteBudget(8 * MiB);
  const pool = new ChunkBufferPool(budget);
  assert.ok(budget.tryTake(2 * MiB));
  const first = Buffer.allocUnsafeSlow(2 * MiB);
  assert.ok(pool.keep(first));
  assert.deepEqual([pool.pooledBytes, budget.inUse], [2 * MiB, 2 * MiB], 'the spare buffer holds the reservation');
  assert.equal(pool.takeReserved(3 * MiB), undefined);
  assert.equal(pool.takeReserved(2 * MiB), first);
  assert.deepEqual([pool.pooledBytes, budget.inUse], [0, 2 * MiB], 'the reservation moved to the taker');
  assert.equal(pool.takeReserved(2 * MiB), undefined, 'taken once, not twice');
});

test('take hands out a spare buffer without its reservation; give keeps a buffer only while the budget has room', () => {
  const budget = new ByteBudget(3 * MiB);
  const pool = new ChunkBufferPool(budget);
  assert.ok(pool.give(Buffer.allocUnsafeSlow(2 * MiB)));
  assert.equal(pool.give(Buffer.allocUnsafeSlow(2 * MiB)), false, 'a second 2 MiB would pass the 3 MiB budget');
  assert.equal(budget.inUse, 2 * MiB);
  assert.equal(pool.take(2 * MiB).length, 2 * MiB);
  assert.deepEqual([pool.pooledBytes, budget.inUse], [0, 0]);
});

test('small, partial and transferred buffers are not kept', () => {
  const budget = new ByteBudget(64 * MiB);
  const pool = new ChunkBufferPool(budget);
  assert.equal(pool.keep(Buffer.allocUnsafe(64 * 1024)), false);
  assert.equal(pool.keep(Buffer.allocUnsafeSlow(4 * MiB).subarray(0, 2 * MiB)), false);
  const moved = Buffer.allocUnsafeSlow(2 * MiB);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(moved, [moved.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
  assert.equal(pool.keep(moved), false);
  assert.equal(pool.pooledBytes, 0);
});

test('spare buffers make room for a request that needs the budget', () => {
  const budget = new ByteBudget(8 * MiB);
  const pool = new ChunkBufferPool(budget);
  const spares = [0, 1, 2].map(() => Buffer.allocUnsafeSlow(2 * MiB));
  for (const spare of spares) assert.ok(pool.give(spare));
  assert.equal(budget.tryTake(4 * MiB), false);
  pool.makeRoom(4 * MiB);
  assert.ok(budget.tryTake(4 * MiB));
  assert.deepEqual([pool.pooledBytes, budget.inUse], [4 * MiB, 8 * MiB], 'only as many let go as needed');
  assert.deepEqual(
    spares.map((spare) => spare.length),
    [2 * MiB, 2 * MiB, 0],
    'the buffer let go are released at once (detached), not left to the garbage collector',
  );
});

test('releaseNow gives the memory back to the system without waiting for a garbage collection', async () => {
  const rss = () => process.memoryUsage().rss;
  const buffers = Array.from({ length: 4 }, () => Buffer.allocUnsafeSlow(32 * MiB).fill(7));
  const before = rss();
  buffers.forEach(releaseNow);
  assert.ok(buffers.every((buffer) => buffer.length === 0 && buffer.buffer.byteLength === 0));
  // The transfer completes asynchronously (the message is dropped on the port's side).
  const deadline = Date.now() + 2000;
  while (before - rss() < 100 * MiB && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(before - rss() >= 100 * MiB, `RSS went from ${before / MiB} to ${rss() / MiB} MiB`);
  releaseNow(Buffer.allocUnsafe(1024)); // a view into Node's shared pool: left alone
});

test('an idle pool lets its buffers and their budget go', async () => {
  const budget = new ByteBudget(8 * MiB);
  const pool = new ChunkBufferPool(budget, MiB, 50);
  const spare = pool.take(2 * MiB);
  assert.ok(pool.give(spare));
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.deepEqual([pool.pooledBytes, budget.inUse], [0, 0]);
  assert.equal(spare.length, 0, 'released at once');
});
