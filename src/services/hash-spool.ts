// Local disk for chunks the hash owner cannot hash yet nor hold in memory (upload-hash.service.ts). A chunk that
// arrives ahead of the owner's frontier (out of order, or in reverse) is kept in memory within a small cap; the rest
// used to be read back from the object store once the frontier reached them — through the store's HTTP server and
// this process's HTTP client, ~1.5 CPU-s per GiB on top of hashing, and most of a reverse-order finalize's time.
// Written to a local file instead, a chunk comes back from the page cache for a read() per slice.
//
// A spooled file holds the very bytes whose SHA-256 the request computed (the chunk's content address); the saved
// step still checks that each chunk hashed is the manifest's (index, sha256), and a finalize whose declared checksum
// differs re-hashes from storage before it blames the client. A process's files live in its own directory, removed
// when it exits; directories of processes that died without that are removed by the next process to spool.
import { randomUUID, type Hash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const MiB = 1024 * 1024;

export interface SpooledChunk {
  readonly sha256: string;
  readonly size: number;
  readonly file: string;
  /** Resolves true once the bytes are on disk (false: the write failed and the file is gone). */
  readonly written: Promise<boolean>;
}

/**
 * Bytes read per slice when hashing a spooled chunk (two slices: one read while the other is hashed). Kept for the
 * process's life, so small: 2 MiB in all; a read of 1 MiB from the page cache takes a fraction of hashing it.
 */
const sliceBytes = 1 * MiB;

export class HashSpool {
  private directory?: string;
  private used = 0;
  private sequence = 0;
  private slices?: [Buffer, Buffer];
  /** Spooled chunks are hashed one at a time per process (they share the two slice buffers). */
  private reading: Promise<unknown> = Promise.resolve();

  constructor(
    /** Bytes this process may keep on disk at once; a chunk beyond it is not spooled (the owner reads it back from storage). */
    readonly capacityBytes: number,
    /** Where each process's directory is created. */
    private readonly root = path.join(os.tmpdir(), 'scaidrive-hash-spool'),
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  /**
   * Starts writing `data` to disk, or returns null when that would pass the capacity (or the directory cannot be
   * made). `data` must stay untouched until `written` settles.
   */
  spill(uploadId: string, index: number, sha256: string, data: Buffer): SpooledChunk | null {
    if (this.used + data.length > this.capacityBytes) return null;
    const directory = this.ensureDirectory();
    if (!directory) return null;
    this.used += data.length;
    const file = path.join(directory, `${uploadId}-${index}-${this.sequence++}`);
    const written = writeWhole(file, data).then(
      () => true,
      () => {
        this.used -= data.length;
        void unlink(file).catch(() => undefined);
        return false;
      },
    );
    return { sha256, size: data.length, file, written };
  }

  /** Feeds a spooled chunk's bytes to `hash`; throws when they cannot all be read (the hash is then unusable). */
  hashInto(chunk: SpooledChunk, hash: Hash): Promise<void> {
    const run = this.reading.then(() => this.hashFile(chunk, hash));
    this.reading = run.catch(() => undefined);
    return run;
  }

  /** Removes a spooled chunk (once its write has settled) and frees its room. */
  discard(chunk: SpooledChunk): void {
    void chunk.written.then(async (ok) => {
      if (!ok) return;
      await unlink(chunk.file).catch(() => undefined);
      this.used -= chunk.size;
    });
  }

  private async hashFile(chunk: SpooledChunk, hash: Hash): Promise<void> {
    if (!(await chunk.written)) throw new Error(`spooled chunk ${chunk.file} could not be written`);
    this.slices ??= [Buffer.allocUnsafeSlow(sliceBytes), Buffer.allocUnsafeSlow(sliceBytes)];
    let [current, spare] = this.slices;
    const handle = await open(chunk.file, 'r');
    try {
      const read = (into: Buffer, position: number) => handle.read(into, 0, Math.min(into.length, chunk.size - position), position).then((r) => r.bytesRead);
      let offset = 0;
      let pending = chunk.size > 0 ? read(current, 0) : undefined;
      while (pending) {
        const bytes = await pending;
        if (bytes === 0) throw new Error(`spooled chunk ${chunk.file} is shorter than ${chunk.size} bytes`);
        offset += bytes;
        // The next slice is read from the page cache while this one is hashed.
        pending = offset < chunk.size ? read(spare, offset) : undefined;
        hash.update(current.subarray(0, bytes));
        [current, spare] = [spare, current];
      }
    } finally {
      await handle.close();
    }
  }

  /** This process's directory, made on first use (clearing what dead processes left behind), or null. */
  private ensureDirectory(): string | null {
    if (this.directory) return this.directory;
    try {
      mkdirSync(this.root, { recursive: true });
      removeOrphans(this.root);
      const directory = path.join(this.root, `${process.pid}-${randomUUID().slice(0, 8)}`);
      mkdirSync(directory);
      process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
      this.directory = directory;
      return directory;
    } catch {
      return null;
    }
  }
}

async function writeWhole(file: string, data: Buffer): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    let offset = 0;
    while (offset < data.length) offset += (await handle.write(data, offset, data.length - offset, offset)).bytesWritten;
  } finally {
    await handle.close();
  }
}

/** Removes the directories of processes on this machine that are no longer running (named `<pid>-<random>`). */
function removeOrphans(root: string): void {
  for (const name of readdirSync(root)) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || isRunning(pid)) continue;
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
