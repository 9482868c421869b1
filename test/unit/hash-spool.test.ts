// The hash spool: a spooled chunk hashes to the SHA-256 of its bytes whatever its size; the spool never holds more
// than its capacity and frees the room of what is discarded; a short file fails the hash; directories left by
// processes that are gone are removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HashSpool } from '../../src/services/hash-spool';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const tempRoot = () => mkdtempSync(path.join(os.tmpdir(), 'spool-test-'));

/** Waits until the spool's used bytes reach `bytes` (discarding completes in the background). */
async function usedBecomes(spool: HashSpool, bytes: number): Promise<void> {
  for (let i = 0; i < 200 && spool.usedBytes !== bytes; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(spool.usedBytes, bytes);
}

test('spooled chunks of any size hash to the SHA-256 of their bytes, one after another into one hash', async () => {
  const spool = new HashSpool(64 * MiB, tempRoot());
  const chunks = [randomBytes(1), randomBytes(4 * MiB), randomBytes(4 * MiB + 1), randomBytes(9 * MiB + 7)];
  const spooled = chunks.map((data, index) => spool.spill('up_1', index, sha256(data), data)!);
  assert.ok(spooled.every(Boolean));
  for (const chunk of spooled) assert.equal(await chunk.written, true);
  const whole = createHash('sha256');
  for (const chunk of spooled) await spool.hashInto(chunk, whole);
  assert.equal(whole.digest('hex'), sha256(Buffer.concat(chunks)));
  // Hashed alone, each is its own content address.
  for (const [index, chunk] of spooled.entries()) {
    const single = createHash('sha256');
    await spool.hashInto(chunk, single);
    assert.equal(single.digest('hex'), sha256(chunks[index]!));
  }
});

test('the spool refuses what would pass its capacity and gets the room back once a chunk is discarded', async () => {
  const root = tempRoot();
  const spool = new HashSpool(3 * MiB, root);
  const first = spool.spill('up_2', 0, 'a', randomBytes(2 * MiB))!;
  assert.ok(first);
  assert.equal(spool.spill('up_2', 1, 'b', randomBytes(2 * MiB)), null, '4 MiB would pass 3 MiB');
  assert.equal(spool.usedBytes, 2 * MiB);
  await first.written;
  spool.discard(first);
  await usedBecomes(spool, 0);
  assert.equal(existsSync(first.file), false, 'the file is removed');
  assert.ok(spool.spill('up_2', 1, 'b', randomBytes(2 * MiB)));
});

test('a spooled file cut short fails its hash rather than hashing fewer bytes', async () => {
  const spool = new HashSpool(8 * MiB, tempRoot());
  const data = randomBytes(5 * MiB);
  const chunk = spool.spill('up_3', 0, sha256(data), data)!;
  await chunk.written;
  truncateSync(chunk.file, 3 * MiB);
  await assert.rejects(spool.hashInto(chunk, createHash('sha256')), /shorter than/);
  spool.discard(chunk);
  await usedBecomes(spool, 0);
  // The spool still works for the next chunk.
  const next = spool.spill('up_3', 1, sha256(data), data)!;
  const hash = createHash('sha256');
  await spool.hashInto(next, hash);
  assert.equal(hash.digest('hex'), sha256(data));
});

test('directories of processes that are gone are removed when a spool first writes; live ones stay', async () => {
  const root = tempRoot();
  const gone = path.join(root, '2147483646-deadbeef');
  const alive = path.join(root, `${process.pid}-cafecafe`);
  mkdirSync(gone);
  mkdirSync(alive);
  const spool = new HashSpool(MiB, root);
  const chunk = spool.spill('up_4', 0, 'x', randomBytes(1024))!;
  await chunk.written;
  const left = readdirSync(root);
  assert.equal(left.includes('2147483646-deadbeef'), false);
  assert.ok(left.includes(`${process.pid}-cafecafe`));
  assert.equal(left.length, 2, 'this spool\'s own directory and the live one');
});
