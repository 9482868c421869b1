// One behaviour suite for every blob driver: the filesystem driver and the S3 driver against the harness's MinIO.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { BlobNotFoundError, type BlobStorage } from '../../src/storage/blob-storage';
import { FilesystemStorage } from '../../src/storage/filesystem-storage';
import { S3Storage } from '../../src/storage/s3-storage';
import { countObjects, s3TestStorageConfig } from '../helpers/s3';

const MiB = 1024 * 1024;

interface DriverUnderTest {
  storage: BlobStorage;
  /** Whether the bucket / root directory exists (ensureReady must create it). */
  containerExists(): Promise<boolean>;
  /** Objects under a prefix, counted behind the driver's back. */
  countObjects?(prefix: string): Promise<number>;
  close?(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function sha256Of(stream: Readable): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { digest: hash.digest('hex'), bytes };
}

async function listAll(storage: BlobStorage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of storage.list(prefix)) keys.push(key);
  return keys;
}

function driverSuite(name: string, makeDriver: () => Promise<DriverUnderTest>): void {
  describe(`blob storage: ${name} driver`, () => {
    let driver: DriverUnderTest;
    let storage: BlobStorage;
    let existedBeforeReady: boolean;
    before(async () => {
      driver = await makeDriver();
      storage = driver.storage;
      existedBeforeReady = await driver.containerExists();
      await storage.ensureReady();
    });
    after(async () => {
      await driver?.close?.();
    });

    test('ensureReady creates the bucket / root and is idempotent', async () => {
      assert.equal(existedBeforeReady, false, 'the container must not exist before ensureReady');
      assert.equal(await driver.containerExists(), true, 'ensureReady must create the container');
      await storage.ensureReady();
      assert.equal(await driver.containerExists(), true);
    });

    test('put a Buffer, get it back byte-exact', async () => {
      const body = randomBytes(64 * 1024 + 7);
      await storage.put('buf/one', body);
      const back = await readAll(await storage.get('buf/one'));
      assert.equal(back.length, body.length);
      assert.ok(back.equals(body), 'bytes differ');
      assert.deepEqual(await storage.head('buf/one'), { size: body.length });
    });

    test('put a 20 MiB Readable with its size; SHA-256 of what is read back matches', async () => {
      const pieces = Array.from({ length: 20 }, () => randomBytes(MiB));
      const expected = createHash('sha256');
      for (const piece of pieces) expected.update(piece);
      async function* generate() {
        for (const piece of pieces) yield piece;
      }
      await storage.put('stream/big.bin', Readable.from(generate()), 20 * MiB);
      assert.deepEqual(await storage.head('stream/big.bin'), { size: 20 * MiB });
      const back = await sha256Of(await storage.get('stream/big.bin'));
      assert.equal(back.bytes, 20 * MiB);
      assert.equal(back.digest, expected.digest('hex'));
    });

    test('0-byte objects (Buffer and stream)', async () => {
      await storage.put('empty/buffer', Buffer.alloc(0));
      assert.deepEqual(await storage.head('empty/buffer'), { size: 0 });
      assert.equal((await readAll(await storage.get('empty/buffer'))).length, 0);

      await storage.put('empty/stream', Readable.from([]), 0);
      assert.deepEqual(await storage.head('empty/stream'), { size: 0 });
      assert.equal((await readAll(await storage.get('empty/stream'))).length, 0);
    });

    test('get with byte ranges (inclusive ends)', async () => {
      const body = randomBytes(10_000);
      await storage.put('ranges/obj', body);
      const range = async (start: number, end: number) => readAll(await storage.get('ranges/obj', { start, end }));
      assert.deepEqual(await range(0, 0), body.subarray(0, 1), 'first byte');
      assert.deepEqual(await range(9_999, 9_999), body.subarray(9_999), 'last byte');
      assert.deepEqual(await range(1_234, 5_677), body.subarray(1_234, 5_678), 'middle span');
      assert.deepEqual(await range(0, 9_999), body, 'whole object');
    });

    test('head gives the size, or null when absent', async () => {
      await storage.put('head/present', Buffer.from('hello, world'));
      assert.deepEqual(await storage.head('head/present'), { size: 12 });
      assert.equal(await storage.head('head/absent'), null);
      assert.equal(await storage.head('no-such-dir/absent'), null);
    });

    test('get of an absent key throws BlobNotFoundError', async () => {
      await assert.rejects(() => storage.get('absent/key'), (error: unknown) => {
        assert.ok(error instanceof BlobNotFoundError, `expected BlobNotFoundError, got ${String(error)}`);
        assert.equal(error.key, 'absent/key');
        return true;
      });
      await assert.rejects(() => storage.get('absent/key', { start: 0, end: 10 }), BlobNotFoundError);
    });

    test('put over an existing key replaces it', async () => {
      await storage.put('over/key', Buffer.from('the first, longer version'));
      await storage.put('over/key', Buffer.from('second'));
      assert.equal((await readAll(await storage.get('over/key'))).toString(), 'second');
      assert.deepEqual(await storage.head('over/key'), { size: 6 });
      assert.deepEqual(await listAll(storage, 'over/'), ['over/key']);
    });

    test('delete removes the object and is idempotent', async () => {
      await storage.put('del/key', Buffer.from('bye'));
      await storage.delete('del/key');
      assert.equal(await storage.head('del/key'), null);
      await assert.rejects(() => storage.get('del/key'), BlobNotFoundError);
      await storage.delete('del/key');
      await storage.delete('del/never-existed');
      await storage.delete('del-nowhere/deep/never-existed');
      assert.deepEqual(await listAll(storage, 'del/'), []);
    });

    test('list(prefix) yields the keys under the prefix in lexical order, nested ones included', async () => {
      // Written out of order, with siblings that must not show up.
      const inside = ['lst/p/z', 'lst/p/a/b/d', 'lst/p/m', 'lst/p/a-file', 'lst/p/a/b/c'];
      const siblings = ['lst/pp/y', 'lst/q/x', 'lst/other', 'lsx/p/a'];
      for (const key of [...inside, ...siblings]) await storage.put(key, Buffer.from(key));

      assert.deepEqual(await listAll(storage, 'lst/p/'), ['lst/p/a-file', 'lst/p/a/b/c', 'lst/p/a/b/d', 'lst/p/m', 'lst/p/z']);
      assert.deepEqual(await listAll(storage, 'lst/p/a/'), ['lst/p/a/b/c', 'lst/p/a/b/d']);
      assert.deepEqual(await listAll(storage, 'lst/p/a/b/c'), ['lst/p/a/b/c']);
      // A prefix is a string prefix, not a directory: 'lst/p' also matches 'lst/pp/…'.
      assert.deepEqual(await listAll(storage, 'lst/p'), ['lst/p/a-file', 'lst/p/a/b/c', 'lst/p/a/b/d', 'lst/p/m', 'lst/p/z', 'lst/pp/y']);
      assert.deepEqual(await listAll(storage, 'lst/'), [
        'lst/other',
        'lst/p/a-file',
        'lst/p/a/b/c',
        'lst/p/a/b/d',
        'lst/p/m',
        'lst/p/z',
        'lst/pp/y',
        'lst/q/x',
      ]);
      assert.deepEqual(await listAll(storage, 'lst/nothing-here/'), []);
      assert.deepEqual(await listAll(storage, 'missing-top/'), []);
      if (driver.countObjects) assert.equal(await driver.countObjects('lst/'), 8);
    });

    test('keys with several / segments round-trip', async () => {
      const key = 'tenant-1/blobs/ab/cd/abcdef0123456789.chunk';
      const body = randomBytes(4096);
      await storage.put(key, body);
      assert.ok((await readAll(await storage.get(key))).equals(body));
      assert.deepEqual(await storage.head(key), { size: 4096 });
      assert.deepEqual(await listAll(storage, 'tenant-1/'), [key]);
      // Intermediate "directories" are not objects: absent to head/get, deleting one is a no-op.
      assert.equal(await storage.head('tenant-1/blobs'), null);
      assert.equal(await storage.head('tenant-1/blobs/ab'), null);
      await assert.rejects(() => storage.get('tenant-1/blobs/ab'), BlobNotFoundError);
      await storage.delete('tenant-1/blobs/ab');
      assert.deepEqual(await storage.head(key), { size: 4096 });
      await storage.delete(key);
      assert.equal(await storage.head(key), null);
      assert.deepEqual(await listAll(storage, 'tenant-1/'), []);
    });
  });
}

driverSuite('filesystem', async () => {
  const base = await mkdtemp(path.join(process.env.TEST_DATA_DIR ?? os.tmpdir(), 'blobs-'));
  const root = path.join(base, 'root');
  return {
    storage: new FilesystemStorage(root),
    containerExists: async () => existsSync(root),
    close: () => rm(base, { recursive: true, force: true }),
  };
});

driverSuite('s3 (MinIO)', async () => {
  const storage = new S3Storage(s3TestStorageConfig());
  return {
    storage,
    containerExists: async () => {
      try {
        await storage.client.send(new HeadBucketCommand({ Bucket: storage.bucket }));
        return true;
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw error;
      }
    },
    countObjects: (prefix) => countObjects(storage, prefix),
    close: async () => {
      for await (const key of storage.list('')) await storage.client.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: key }));
      storage.client.destroy();
    },
  };
});

describe('blob storage: s3 driver specifics', () => {
  test('concurrent ensureReady calls on a new bucket all succeed', async () => {
    const config = s3TestStorageConfig();
    const racers = Array.from({ length: 6 }, () => new S3Storage(config));
    await Promise.all(racers.map((s) => s.ensureReady()));
    await racers[0]!.put('k', Buffer.from('v'));
    assert.deepEqual(await racers[1]!.head('k'), { size: 1 });
    await racers[0]!.delete('k');
    for (const s of racers) s.client.destroy();
  });

  test('PUT without the SDK (a configured endpoint) stores exactly the bytes, as the SDK reads them, for keys that need encoding', async () => {
    const storage = new S3Storage(s3TestStorageConfig());
    await storage.ensureReady();
    const keys = ['lean-put/chunk', "lean-put/ünïcødé (x)*!'~+=&.bin"];
    const bodies = [randomBytes(3 * MiB + 17), Buffer.alloc(0)];
    await Promise.all(keys.map((key, i) => storage.put(key, bodies[i]!)));
    for (const [i, key] of keys.entries()) {
      const viaSdk = await storage.client.send(new GetObjectCommand({ Bucket: storage.bucket, Key: key }));
      assert.ok(Buffer.from(await viaSdk.Body!.transformToByteArray()).equals(bodies[i]!), key);
    }
    // Replacing an object is a plain PUT too.
    await storage.put(keys[0]!, Buffer.from('replaced'));
    assert.equal((await readAll(await storage.get(keys[0]!))).toString(), 'replaced');
    for (const key of keys) await storage.delete(key);
    storage.client.destroy();
  });

  test('a PUT the store refuses is an error naming its S3 code, and nothing is stored', async () => {
    const config = s3TestStorageConfig();
    const storage = new S3Storage(config);
    await storage.ensureReady();
    const refused = new S3Storage({ ...config, secretAccessKey: 'not-the-secret' });
    await assert.rejects(() => refused.put('lean-put/refused', Buffer.from('x')), /HTTP 403 \(SignatureDoesNotMatch\)/);
    refused.client.destroy();
    assert.equal(await storage.head('lean-put/refused'), null);
    storage.client.destroy();
    const noBucket = new S3Storage(s3TestStorageConfig());
    await assert.rejects(() => noBucket.put('lean-put/x', Buffer.from('x')), /HTTP 404 \(NoSuchBucket\)/);
    noBucket.client.destroy();
  });

  test('HEAD without the SDK (a configured endpoint) answers as the SDK does, for keys with characters that need encoding', async () => {
    const storage = new S3Storage(s3TestStorageConfig());
    await storage.ensureReady();
    const keys = ['lean/plain', 'lean/with space+plus', "lean/ünïcødé/(x)*!'~.bin", 'lean/a%2Fb=c&d'];
    for (const [i, key] of keys.entries()) await storage.put(key, Buffer.alloc(i + 1, 1));
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(await storage.head(key), { size: i + 1 }, key);
      const viaSdk = await storage.client.send(new HeadObjectCommand({ Bucket: storage.bucket, Key: key }));
      assert.equal(viaSdk.ContentLength, i + 1);
    }
    assert.equal(await storage.head('lean/absent'), null);
    // 40 at once over the keep-alive pool.
    const sizes = await Promise.all(Array.from({ length: 40 }, (_, i) => storage.head(keys[i % keys.length]!)));
    assert.deepEqual(sizes.map((s) => s?.size), Array.from({ length: 40 }, (_, i) => (i % keys.length) + 1));
    for (const key of keys) await storage.delete(key);
    storage.client.destroy();
  });

  test('a HEAD the store refuses (wrong secret) is an error, never "absent"', async () => {
    const storage = new S3Storage({ ...s3TestStorageConfig(), secretAccessKey: 'not-the-secret' });
    await assert.rejects(() => storage.head('any/key'), /HTTP 403/);
    storage.client.destroy();
  });

  test('a missing bucket is an error, not a missing blob', async () => {
    const storage = new S3Storage(s3TestStorageConfig());
    await assert.rejects(
      () => storage.get('any/key'),
      (error: unknown) => !(error instanceof BlobNotFoundError),
    );
    storage.client.destroy();
  });
});

describe('blob storage: filesystem driver specifics', () => {
  test('keys and prefixes cannot leave the root or reach the scratch directory', async () => {
    const root = await mkdtemp(path.join(process.env.TEST_DATA_DIR ?? os.tmpdir(), 'blobs-'));
    const storage = new FilesystemStorage(path.join(root, 'inner'));
    await storage.ensureReady();
    await storage.put('ok/key', Buffer.from('x'));
    for (const key of ['../escape', 'a/../../escape', '/abs', 'a//b', '.tmp/x', '.tmp']) {
      await assert.rejects(() => storage.put(key, Buffer.from('x')), /Invalid blob key/, key);
    }
    assert.deepEqual(await listAll(storage, '../'), []);
    assert.deepEqual(await listAll(storage, '.tmp/'), []);
    assert.deepEqual(await listAll(storage, ''), ['ok/key']);
    await rm(root, { recursive: true, force: true });
  });
});
