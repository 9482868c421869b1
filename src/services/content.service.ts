// Reading a version's bytes: the chunks overlapping a byte range, streamed one after another (never buffered).
import { Readable } from 'node:stream';
import type { Db } from '../db/database';
import type { BlobStorage, ByteRange } from '../storage/blob-storage';
import { S3Storage } from '../storage/s3-storage';
import { chunkKey } from './chunk-store';

/** How long a download redirect's presigned URL stays valid (as the signed download URL). */
const redirectTtlSeconds = 15 * 60;

/**
 * A presigned GET on the store for a version, for clients that follow redirects — or null when the bytes cannot
 * be served by one object URL: another storage driver, or a version stored as several chunks (a presigned URL
 * names one object; those are streamed by the API). Range requests work on the store's URL unchanged, since a
 * one-chunk version's object holds exactly its bytes.
 */
export async function presignedVersionUrl(db: Db, storage: BlobStorage, versionId: string, response: { contentType: string; contentDisposition: string }): Promise<string | null> {
  if (!(storage instanceof S3Storage)) return null;
  const chunks = await db.selectFrom('version_chunks').select(['tenant_id', 'sha256']).where('version_id', '=', versionId).limit(2).execute();
  if (chunks.length !== 1) return null;
  return storage.presignGet(chunkKey(chunks[0]!.tenant_id, chunks[0]!.sha256), redirectTtlSeconds, response);
}

/**
 * A version's bytes (or a range of them) as one stream: its chunk objects read one after another, the next one
 * opened while the current one streams. `onBytes` sees every piece as it is handed on.
 */
export function openVersionStream(db: Db, storage: BlobStorage, versionId: string, range?: ByteRange, onBytes?: (bytes: number) => void): Readable {
  async function* objects() {
    let from = range?.start ?? 0;
    const to = range?.end ?? Number.MAX_SAFE_INTEGER;
    while (from <= to) {
      // A page of the manifest at a time: chunks whose [offset, offset + size) overlaps [from, to].
      const page = await db
        .selectFrom('version_chunks')
        .select(['index', 'tenant_id', 'sha256', 'offset', 'size'])
        .where('version_id', '=', versionId)
        .where((eb) => eb(eb('offset', '+', eb.ref('size')), '>', from))
        .where('offset', '<=', to)
        .orderBy('index')
        .limit(200)
        .execute();
      if (page.length === 0) return;
      const open = (chunk: (typeof page)[number]) => {
        const start = Math.max(from, chunk.offset) - chunk.offset;
        const end = Math.min(to, chunk.offset + chunk.size - 1) - chunk.offset;
        const whole = start === 0 && end === chunk.size - 1;
        const stream = storage.get(chunkKey(chunk.tenant_id, chunk.sha256), whole ? undefined : { start, end });
        stream.catch(() => undefined); // awaited in order below; an early failure must not go unhandled
        return { stream, end: chunk.offset + end };
      };
      // The next chunk's request goes out while this one streams, so the store's time to first byte is not paid
      // between chunks (one object opened ahead: its bytes wait in the socket until they are read).
      let current = open(page[0]!);
      let ahead: typeof current | undefined;
      try {
        for (let i = 0; i < page.length; i++) {
          ahead = i + 1 < page.length ? open(page[i + 1]!) : undefined;
          // The consumer reads this object to its end before it asks for the next one.
          yield await current.stream;
          from = current.end + 1;
          if (ahead) [current, ahead] = [ahead, undefined];
        }
      } finally {
        // A failed read or a client gone mid-download: the object opened ahead is released too.
        if (ahead) void ahead.stream.then((stream) => stream.destroy(), () => undefined);
      }
    }
  }
  return concatenate(objects(), onBytes);
}

/**
 * The streams `sources` yields, one after another, as one stream with back-pressure. Pieces are handed on from
 * 'data' events (not an async iterator per piece: a promise or two per 64 KiB cost a download ~0.5 CPU-s per GiB).
 * Destroying the result destroys the stream being read and ends `sources` (whose cleanup releases what it opened).
 */
export function concatenate(sources: AsyncGenerator<Readable, void>, onPiece?: (bytes: number) => void): Readable {
  let current: Readable | undefined;
  const next = async (): Promise<void> => {
    const step = await sources.next();
    if (output.destroyed) {
      if (!step.done) step.value.destroy();
      return;
    }
    if (step.done) {
      output.push(null);
      return;
    }
    const source = step.value;
    current = source;
    source.on('data', (piece: Buffer) => {
      onPiece?.(piece.length);
      if (!output.push(piece)) source.pause();
    });
    source.once('end', () => {
      current = undefined;
      next().catch((error: Error) => output.destroy(error));
    });
    source.once('error', (error) => output.destroy(error));
  };
  const output = new Readable({
    read() {
      if (current) current.resume();
      else if (!started) {
        started = true;
        next().catch((error: Error) => output.destroy(error));
      }
    },
    destroy(error, callback) {
      current?.destroy();
      current = undefined;
      // Ends the generator at its pending yield (or right after the step it is running), running its cleanup.
      sources.return(undefined).catch(() => undefined);
      callback(error);
    },
  });
  let started = false;
  return output;
}

/**
 * Parses a single-range `Range` header against a size. Returns undefined for no/ignored Range (multi-range
 * or malformed: the full content is sent, as RFC 9110 allows) and 'unsatisfiable' for 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first, last] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
