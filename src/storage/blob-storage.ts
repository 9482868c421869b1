// The blob storage interface shared by the S3 and filesystem drivers (the factory is in create-blob-storage.ts).
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStorage {
  readonly driver: 'filesystem' | 's3';
  /** Stores `body` under `key`, replacing any object there. `size` is required for streams on S3. */
  put(key: string, body: Buffer | Readable, size?: number): Promise<void>;
  /** Streams the object (or a byte range of it); throws BlobNotFoundError when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Size of the object, or null when absent. */
  head(key: string): Promise<{ size: number } | null>;
  /** Removes the object; absent is fine (idempotent). */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** Makes sure the bucket or root directory exists. */
  ensureReady(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`Blob ${key} not found`);
    this.name = 'BlobNotFoundError';
  }
}
