// The whole-file SHA-256 of a resumable upload, kept up to date as chunks arrive (issue #13 item 3), so finalize
// only hashes what is left instead of reading the whole file back. The state after the first `hashed_chunks`
// chunks is saved with the session (hash-wasm can save and load a SHA-256 state; node:crypto cannot), with a
// chain digest of those chunks' SHA-256s. Finalize trusts the state only when the chain of the session's
// manifest equals the saved one — the same chunks, byte for byte — so a chunk re-sent with other bytes, or any
// race, costs a full re-hash, never a wrong checksum. The declared checksum is always verified against bytes.
import { createHash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import type { Db } from '../db/database';
import type { BlobStorage } from '../storage/blob-storage';
import { chunkKey } from './chunk-store';
import { sha256Step } from './sha256-thread';

/** Chunks whose bytes a follower may keep from their requests (read back from storage otherwise). */
const maxHandoffChunksPerSession = 4;
/** Bytes all followers of this process may keep from requests at once. */
const maxHandoffBytes = 128 * 1024 * 1024;

/** The chain digest after one more chunk. */
export const chainNext = (chain: string, chunkSha256: string) => createHash('sha256').update(chain).update(chunkSha256).digest('hex');

/** A SHA-256 that continues from a saved state (or starts fresh). */
export async function resumableSha256(state: Uint8Array | null): Promise<IHasher> {
  const hasher = await createSHA256();
  if (state) hasher.load(state);
  else hasher.init();
  return hasher;
}

/** The chain digest of a session's first `count` chunks as its manifest has them now. */
export async function manifestChain(db: Db, uploadId: string, count: number): Promise<string | null> {
  let chain = '';
  let next = 0;
  while (next < count) {
    const page = await db.selectFrom('upload_chunks').select(['index', 'sha256']).where('upload_id', '=', uploadId).where('index', '>=', next).where('index', '<', count).orderBy('index').limit(1000).execute();
    for (const row of page) {
      if (row.index !== next) return null; // a gap: the state cannot describe this manifest
      chain = chainNext(chain, row.sha256);
      next++;
    }
    if (page.length === 0) return null;
  }
  return chain;
}

interface Follower {
  again: boolean;
  handoff: Map<number, { sha256: string; data: Buffer }>;
}

const followers = new Map<string, Follower>();
let handoffBytes = 0;

export interface HashFollowerDeps {
  db: Db;
  storage: BlobStorage;
  onError?: (error: unknown) => void;
}

/**
 * Moves the session's saved hash forward over the chunks received contiguously from its frontier, in the
 * background of this process (never in a request's path; it never throws). `received` is a chunk just stored
 * whose bytes are still in memory, kept for the follower when it is close to the frontier; other chunks are
 * read back from storage. One follower per session per process; another replica's may race it: each step is one
 * conditional UPDATE (frontier and chain unchanged, the chunk still in the manifest with that hash, the session
 * still open), so a step that lost the race is not saved.
 */
export function followUploadHash(deps: HashFollowerDeps, uploadId: string, received?: { index: number; sha256: string; data: Buffer }): void {
  let follower = followers.get(uploadId);
  const starting = !follower;
  if (!follower) {
    follower = { again: false, handoff: new Map() };
    followers.set(uploadId, follower);
  }
  follower.again = true;
  if (received && follower.handoff.size < maxHandoffChunksPerSession && handoffBytes + received.data.length <= maxHandoffBytes && !follower.handoff.has(received.index)) {
    follower.handoff.set(received.index, { sha256: received.sha256, data: received.data });
    handoffBytes += received.data.length;
  }
  if (!starting) return;
  const current = follower;
  void runFollower(deps, uploadId, current)
    .catch((error: unknown) => deps.onError?.(error))
    .finally(() => {
      for (const kept of current.handoff.values()) handoffBytes -= kept.data.length;
      current.handoff.clear();
      followers.delete(uploadId);
    });
}

async function runFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower): Promise<void> {
  for (;;) {
    follower.again = false;
    const session = await deps.db.selectFrom('upload_sessions').select(['status', 'tenant_id', 'transfer', 'hashed_chunks', 'hash_state', 'hashed_chain']).where('id', '=', uploadId).executeTakeFirst();
    if (!session || session.status !== 'open' || session.transfer !== 'proxied') return;
    const index = session.hashed_chunks;
    for (const kept of [...follower.handoff.keys()]) {
      if (kept < index) {
        handoffBytes -= follower.handoff.get(kept)!.data.length;
        follower.handoff.delete(kept);
      }
    }
    const chunk = await deps.db.selectFrom('upload_chunks').select(['sha256', 'size']).where('upload_id', '=', uploadId).where('index', '=', index).executeTakeFirst();
    if (!chunk) {
      if (follower.again) continue; // a chunk arrived while this one looked
      return;
    }
    const kept = follower.handoff.get(index);
    if (kept) {
      follower.handoff.delete(index);
      handoffBytes -= kept.data.length;
    }
    // The follower owns both a handed-off request body and a chunk it read back: they move to the hashing thread.
    const data = kept && kept.sha256 === chunk.sha256 ? kept.data : await readChunk(deps.storage, chunkKey(session.tenant_id, chunk.sha256), chunk.size);
    const state = await sha256Step(session.hash_state, data, { handOver: true });
    await deps.db
      .updateTable('upload_sessions')
      .set({ hashed_chunks: index + 1, hash_state: Buffer.from(state), hashed_chain: chainNext(session.hashed_chain, chunk.sha256) })
      .where('id', '=', uploadId)
      .where('status', '=', 'open')
      .where('hashed_chunks', '=', index)
      .where('hashed_chain', '=', session.hashed_chain)
      .where(({ exists, selectFrom }) =>
        exists(selectFrom('upload_chunks').select('index').where('upload_id', '=', uploadId).where('index', '=', index).where('sha256', '=', chunk.sha256)),
      )
      .execute();
  }
}

/** A stored chunk read into one buffer of its own (one copy, no concatenation). */
async function readChunk(storage: BlobStorage, key: string, size: number): Promise<Buffer> {
  const data = Buffer.allocUnsafeSlow(size);
  let filled = 0;
  for await (const part of await storage.get(key)) {
    const piece = part as Buffer;
    if (filled + piece.length > size) throw new Error(`chunk ${key} holds more than its recorded ${size} bytes`);
    piece.copy(data, filled);
    filled += piece.length;
  }
  if (filled !== size) throw new Error(`chunk ${key} holds ${filled} of its recorded ${size} bytes`);
  return data;
}
