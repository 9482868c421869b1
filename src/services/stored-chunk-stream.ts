// Hashing stored chunks in order without holding them: each chunk object's bytes go into the hash as they arrive
// from the store, and the next object is opened while one is hashed (its bytes wait in the socket meanwhile), so
// the store's latency overlaps with hashing. No chunk-sized buffer: a 64 MiB chunk costs no more memory than an
// 8 MiB one, and nothing is copied.
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStorage } from '../storage/blob-storage';

export interface StoredChunk {
  key: string;
  /** The size the manifest records: an object of another size is not this chunk (BlobNotFoundError). */
  size: number;
}

export class StoredChunkStream {
  private readonly opened = new Map<StoredChunk, Promise<Readable>>();
  private hashed = 0;
  private next = 0;

  /** `chunks` are hashed in this order. */
  constructor(
    private readonly storage: BlobStorage,
    private readonly chunks: StoredChunk[],
  ) {}

  /** Feeds the next chunk's stored bytes to `hash`. */
  async hashNext(hash: Hash): Promise<void> {
    const chunk = this.chunks[this.hashed++];
    if (!chunk) throw new Error('every chunk has been hashed');
    while (this.next < Math.min(this.hashed + 1, this.chunks.length)) this.open(this.chunks[this.next++]!);
    const stream = this.opened.get(chunk)!;
    this.opened.delete(chunk);
    await hashStored(await stream, hash, chunk);
  }

  /** Hashing stopped early: the objects opened ahead are released. */
  abandon(): void {
    for (const stream of this.opened.values()) stream.then((opened) => opened.destroy(), () => undefined);
    this.opened.clear();
  }

  private open(chunk: StoredChunk): void {
    const stream = this.storage.get(chunk.key);
    stream.catch(() => undefined); // awaited in order by hashInto; an early failure must not go unhandled
    this.opened.set(chunk, stream);
  }
}

/** Feeds a stored object's bytes to `hash` as they arrive ('data' events: no promise per 64 KiB piece). */
function hashStored(stream: Readable, hash: Hash, chunk: StoredChunk): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = 0;
    stream.on('data', (piece: Buffer) => {
      received += piece.length;
      if (received > chunk.size) {
        stream.destroy();
        reject(new BlobNotFoundError(chunk.key));
        return;
      }
      hash.update(piece);
    });
    stream.once('end', () => (received === chunk.size ? resolve() : reject(new BlobNotFoundError(chunk.key))));
    stream.once('error', reject);
  });
}
