// Filesystem blob driver (the embedded default): one file per key, written to a temp file and renamed.
import { createWriteStream } from 'node:fs';
import { mkdir, open, opendir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { BlobNotFoundError, type BlobStorage, type ByteRange } from './blob-storage';

/** Errors meaning "nothing is stored at this path" (ENOTDIR: a parent is a file, e.g. key a/b when a is a blob). */
function isAbsent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function validSegments(value: string): boolean {
  return value.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

export class FilesystemStorage implements BlobStorage {
  readonly driver = 'filesystem' as const;

  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    // `.tmp` at the top is the driver's own scratch directory, never a key.
    if (!validSegments(key) || key === '.tmp' || key.startsWith('.tmp/')) throw new Error(`Invalid blob key ${key}`);
    return path.join(this.root, key);
  }

  /** Size of the regular file at `file`, or null when there is none (a directory is an intermediate key segment, not a blob). */
  private async fileSize(file: string): Promise<number | null> {
    try {
      const info = await stat(file);
      return info.isFile() ? info.size : null;
    } catch (error) {
      if (isAbsent(error)) return null;
      throw error;
    }
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
    // Open first, then check: the open handle keeps reading the same blob even if it is deleted or replaced meanwhile.
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if (isAbsent(error)) throw new BlobNotFoundError(key);
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) throw new BlobNotFoundError(key);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async head(key: string): Promise<{ size: number } | null> {
    const size = await this.fileSize(this.pathOf(key));
    return size === null ? null : { size };
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (error) {
      // Absent, or a directory (an intermediate key segment, not a blob): nothing to delete.
      if (isAbsent(error) || (error as NodeJS.ErrnoException).code === 'EISDIR') return;
      throw error;
    }
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
    // Never walk outside the root (`..`) or into the scratch directory; such a prefix matches no key.
    if (directory && (!validSegments(directory) || directory === '.tmp' || directory.startsWith('.tmp/'))) return;
    await walk(path.join(this.root, directory), directory);
    yield* keys.sort();
  }
}
