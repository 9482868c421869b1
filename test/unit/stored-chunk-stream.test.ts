// Hashing stored chunks in order without holding them (StoredChunkStream), over the filesystem driver: the hash is
// of the chunks' bytes in order, an object missing or of another size than recorded is BlobNotFoundError, at most
// the chunk being hashed and the next one are open, and abandoning releases the one opened ahead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobNotFoundError } from '../../src/storage/blob-storage';
import { FilesystemStorage } from '../../src/storage/filesystem-storage';
import { StoredChunkStream } from '../../src/services/stored-chunk-stream';

async function withStorage(work: (storage: FilesystemStorage, opened: Readable[]) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stored-chunks-'));
  try {
    const storage = new FilesystemStorage(root);
    await storage.ensureReady();
    const opened: Readable[] = [];
    const get = storage.get.bind(storage);
    storage.get = async (key, range) => {
      const stream = await get(key, range);
      opened.push(stream);
      return stream;
    };
    await work(storage, opened);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('the chunks go into the hash in order, with at most the next one open ahead', () =>
  withStorage(async (storage, opened) => {
    const bodies = [randomBytes(300_000), randomBytes(5), Buffer.alloc(0), randomBytes(200_000)];
    for (const [i, body] of bodies.entries()) await storage.put(`c/${i}`, body);
    const chunks = bodies.map((body, i) => ({ key: `c/${i}`, size: body.length }));
    const reader = new StoredChunkStream(storage, chunks);
    const hash = createHash('sha256');
    for (let i = 0; i < chunks.length; i++) {
      await reader.hashNext(hash);
      assert.ok(opened.length <= i + 2, `${opened.length} objects opened after hashing ${i + 1}`);
    }
    assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.concat(bodies)).digest('hex'));
    await assert.rejects(() => reader.hashNext(createHash('sha256')), /every chunk has been hashed/);
  }));

test('an object missing, longer or shorter than recorded is BlobNotFoundError naming it', () =>
  withStorage(async (storage) => {
    await storage.put('c/short', randomBytes(10));
    await storage.put('c/long', randomBytes(100_000));
    for (const chunk of [{ key: 'c/absent', size: 10 }, { key: 'c/short', size: 11 }, { key: 'c/long', size: 99_999 }]) {
      const reader = new StoredChunkStream(storage, [chunk]);
      await assert.rejects(
        () => reader.hashNext(createHash('sha256')),
        (error: unknown) => error instanceof BlobNotFoundError && error.key === chunk.key,
        chunk.key,
      );
    }
  }));

test('abandoning after a failure releases the object opened ahead', () =>
  withStorage(async (storage, opened) => {
    await storage.put('c/0', randomBytes(10));
    await storage.put('c/2', randomBytes(70_000));
    const reader = new StoredChunkStream(storage, [{ key: 'c/0', size: 9 }, { key: 'c/2', size: 70_000 }]);
    await assert.rejects(() => reader.hashNext(createHash('sha256')), BlobNotFoundError);
    reader.abandon();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(opened.length, 2, 'the second object was opened ahead');
    assert.ok(opened.every((stream) => stream.destroyed), 'no object left open');
  }));
