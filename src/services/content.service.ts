// Reading a version's bytes: the chunks overlapping a byte range, streamed one after another (never buffered).
import { Readable } from 'node:stream';
import type { Db } from '../db/database';
import type { BlobStorage, ByteRange } from '../storage/blob-storage';
import { chunkKey } from './chunk-store';

export function openVersionStream(db: Db, storage: BlobStorage, versionId: string, range?: ByteRange): Readable {
  async function* pieces() {
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
      for (const chunk of page) {
        const start = Math.max(from, chunk.offset) - chunk.offset;
        const end = Math.min(to, chunk.offset + chunk.size - 1) - chunk.offset;
        const whole = start === 0 && end === chunk.size - 1;
        yield* await storage.get(chunkKey(chunk.tenant_id, chunk.sha256), whole ? undefined : { start, end });
        from = chunk.offset + end + 1;
      }
    }
  }
  return Readable.from(pieces(), { objectMode: false });
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
