// The chunk buffer pool: spare buffers count against the buffer budget; a buffer kept with a request's share of the
// budget comes back with it for the same size, never another; small, partial or transferred buffers are never
// kept; spare buffers make room for requests; an idle pool lets its buffers (and their budget) go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { ChunkBufferPool } from '../../src/services/chunk-buffers';
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
  for (let i = 0; i < 3; i++) assert.ok(pool.give(Buffer.allocUnsafeSlow(2 * MiB)));
  assert.equal(budget.tryTake(4 * MiB), false);
  pool.makeRoom(4 * MiB);
  assert.ok(budget.tryTake(4 * MiB));
  assert.deepEqual([pool.pooledBytes, budget.inUse], [4 * MiB, 8 * MiB], 'only as many let go as needed');
});

test('an idle pool lets its buffers and their budget go', async () => {
  const budget = new ByteBudget(8 * MiB);
  const pool = new ChunkBufferPool(budget, MiB, 50);
  assert.ok(pool.give(pool.take(2 * MiB)));
  assert.equal(budget.inUse, 2 * MiB);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.deepEqual([pool.pooledBytes, budget.inUse], [0, 0]);
});
