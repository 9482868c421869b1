// Filesystem blob driver (the embedded default): one file per key, written to a temp file and renamed.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, opendir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { BlobNotFoundError, type BlobStorage, type ByteRange } from './blob-storage';

export class FilesystemStorage implements BlobStorage {
  readonly driver = 'filesystem' as const;

  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    if (key.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new Error(`Invalid blob key ${key}`);
    return path.join(this.root, key);
  }

  async ensureReady(): Promise<void> {
    await mkdir(path.join(this.root, '.tmp'), { recursive: true });
  }

  async put(key: string, body: Buffer | Readable, size?: number): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(path.dirname(target), { recursive: true });
    await mkdir(path.join(this.root, '.tmp'), { recursive: true });
    // Temp file + rename: a reader never sees a half-written blob, and a crash leaves only a temp file.
    const temp = path.join(this.root, '.tmp', randomUUID());
    try {
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(temp));
      if (size !== undefined && (await stat(temp)).size !== size) throw new Error(`Blob ${key}: expected ${size} bytes`);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    try {
      await stat(file);
    } catch {
      throw new BlobNotFoundError(key);
    }
    return createReadStream(file, range ? { start: range.start, end: range.end } : {});
  }

  async head(key: string): Promise<{ size: number } | null> {
    try {
      return { size: (await stat(this.pathOf(key))).size };
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<string> {
    const keys: string[] = [];
    const walk = async (dir: string, relative: string): Promise<void> => {
      let handle;
      try {
        handle = await opendir(dir);
      } catch {
        return;
      }
      for await (const entry of handle) {
        const key = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (key !== '.tmp') await walk(path.join(dir, entry.name), key);
        } else if (key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    // Walk only the directory the prefix names, not the whole store.
    const directory = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(path.join(this.root, directory), directory);
    yield* keys.sort();
  }
}
