// The whole-file SHA-256 of a resumable upload, kept up to date as chunks arrive (issue #13 item 3), so finalize
// only hashes what is left instead of reading the whole file back. The state after the first `hashed_chunks`
// chunks is saved with the session (hash-wasm can save and load a SHA-256 state; node:crypto cannot), with a
// chain digest of those chunks' SHA-256s. Finalize trusts the state only when the chain of the session's
// manifest equals the saved one — the same chunks, byte for byte — so a chunk re-sent with other bytes, or any
// race, costs a full re-hash, never a wrong checksum. The declared checksum is always verified against bytes.
import { createHash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import type { BlobStorage } from '../storage/blob-storage';
import { chunkKey } from './chunk-store';
import { sha256Step } from './sha256-thread';
import type { ByteBudget } from './upload-limits';

/**
 * Chunks a follower hashes before saving a step. What it keeps from requests is bounded in bytes
 * (maxHandoffBytes): when full, a chunk nearer its frontier displaces the farthest one held. A chunk it does not
 * hold is read back from storage only to close a gap before one it holds (e.g. received by another replica);
 * otherwise it waits and finalize hashes the rest, once, in the worker — a follower reading a whole upload back
 * from storage would compete with the upload itself.
 */
const chunksPerStep = 8;
/**
 * Bytes all followers of this process may keep from requests at once: 128 MiB, and at most a quarter of the
 * process's buffer budget for request bodies (so the process holds at most 1.25 × that budget of chunk bytes; the
 * follower's chunks never take budget from requests, which would turn uploads away to speed up hashing).
 */
const maxHandoffBytes = (budget?: ByteBudget) => Math.min(128 * 1024 * 1024, budget ? Math.floor(budget.capacity / 4) : Infinity);

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
  /** The session's frontier (chunks hashed) as the follower last read it; unknown before its first step. */
  frontier?: number;
  running: boolean;
  /** While idle and holding chunks (waiting for the one at its frontier): its next look at the session. */
  retryTimer?: NodeJS.Timeout;
  /** Since when it has been waiting without saving a step. */
  waitingSince?: number;
}

/**
 * How long an idle follower keeps the chunks it holds for the chunk at its frontier to arrive, and how often it
 * looks again meanwhile: the frontier can move without an arrival here (another replica saved a step), after
 * which a chunk held here may be next.
 */
const idleReleaseMs = 30_000;
const idleRetryMs = 250;

const followers = new Map<string, Follower>();
let handoffBytes = 0;

/** Takes a kept chunk out of the follower's hands (and the process's count of kept bytes). */
function dropKept(follower: Follower, index: number): { sha256: string; data: Buffer } | undefined {
  const kept = follower.handoff.get(index);
  if (!kept) return undefined;
  follower.handoff.delete(index);
  handoffBytes -= kept.data.length;
  return kept;
}

export interface HashFollowerDeps {
  db: Db;
  storage: BlobStorage;
  /** The process's buffer budget for request bodies: bounds what the followers may keep (see maxHandoffBytes). */
  budget?: ByteBudget;
  onError?: (error: unknown) => void;
}

/**
 * Moves the session's saved hash forward over the chunks received contiguously from its frontier, in the
 * background of this process (never in a request's path; it never throws). `received` is a chunk just stored
 * whose bytes are still in memory, kept for the follower within the process's byte cap, nearest the frontier first
 * (see chunksPerStep for when it reads a chunk back from storage and when it leaves the rest to finalize). One
 * follower per session per process; another replica's may race it: each step is one conditional UPDATE (frontier
 * and chain unchanged, every chunk of the step still in the manifest with that hash, the session still open), so a
 * step that lost the race is not saved. Returns whether it kept `received`'s bytes: they are then the follower's
 * (moved to the hashing thread later), and the caller must not reuse that buffer.
 */
export function followUploadHash(deps: HashFollowerDeps, uploadId: string, received?: { index: number; sha256: string; data: Buffer }): boolean {
  let follower = followers.get(uploadId);
  if (!follower) {
    follower = { again: false, handoff: new Map(), running: false };
    followers.set(uploadId, follower);
  }
  follower.again = true;
  // Chunks below the frontier last read are hashed already (by this follower or another replica's): let them go.
  const frontier = follower.frontier;
  if (frontier !== undefined) for (const kept of [...follower.handoff.keys()]) if (kept < frontier) dropKept(follower, kept);
  if (received && (frontier === undefined || received.index >= frontier) && !follower.handoff.has(received.index)) {
    // Room is made by letting go of the chunks held farthest from the frontier, never nearer ones.
    const cap = maxHandoffBytes(deps.budget);
    let farthest = Math.max(...follower.handoff.keys());
    while (handoffBytes + received.data.length > cap && farthest > received.index) {
      dropKept(follower, farthest);
      farthest = Math.max(...follower.handoff.keys());
    }
    if (handoffBytes + received.data.length <= cap) {
      follower.handoff.set(received.index, { sha256: received.sha256, data: received.data });
      handoffBytes += received.data.length;
    }
  }
  if (!follower.running) startFollower(deps, uploadId, follower);
  return received !== undefined && follower.handoff.get(received.index)?.data === received.data;
}

/**
 * Resolves once this process's follower of the session has saved what it holds (it is no longer hashing), or
 * after `maxWaitMs`. Nothing to wait for on a process that does not follow the session.
 */
export async function hashFollowerSettled(uploadId: string, maxWaitMs: number): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  while (followers.get(uploadId)?.running && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

function startFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower): void {
  follower.running = true;
  clearTimeout(follower.retryTimer);
  void runFollower(deps, uploadId, follower)
    .catch((error: unknown) => {
      deps.onError?.(error);
      return 'finished' as const;
    })
    .then((outcome) => {
      follower.running = false;
      if (outcome === 'waiting' && follower.again) return startFollower(deps, uploadId, follower); // a chunk arrived just now
      if (outcome === 'waiting' && follower.handoff.size > 0) {
        // The chunk at its frontier is still on its way (or at another replica): keep what is held for a while.
        follower.waitingSince ??= Date.now();
        if (Date.now() - follower.waitingSince < idleReleaseMs) {
          follower.retryTimer = setTimeout(() => follower.running || startFollower(deps, uploadId, follower), idleRetryMs).unref();
          return;
        }
      }
      releaseFollower(uploadId, follower);
    });
}

function releaseFollower(uploadId: string, follower: Follower): void {
  if (follower.running) return;
  for (const kept of [...follower.handoff.keys()]) dropKept(follower, kept);
  if (followers.get(uploadId) === follower) followers.delete(uploadId);
}

/** Hashes while it can; 'waiting' when the next chunk is not here yet, 'finished' when the session is no longer open. */
async function runFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower): Promise<'waiting' | 'finished'> {
  // What the session row holds, as read or as this follower's last successful step left it: a step that goes
  // through needs no read before the next one (one UPDATE per stretch of chunks while the upload runs).
  let known: { tenantId: string; hashedChunks: number; hashState: Uint8Array | null; hashedChain: string } | undefined;
  for (;;) {
    follower.again = false;
    if (!known) {
      const session = await deps.db.selectFrom('upload_sessions').select(['status', 'tenant_id', 'transfer', 'hashed_chunks', 'hash_state', 'hashed_chain']).where('id', '=', uploadId).executeTakeFirst();
      if (!session || session.status !== 'open' || session.transfer !== 'proxied') return 'finished';
      known = { tenantId: session.tenant_id, hashedChunks: session.hashed_chunks, hashState: session.hash_state, hashedChain: session.hashed_chain };
    }
    const index = known.hashedChunks;
    follower.frontier = index;
    for (const kept of [...follower.handoff.keys()]) if (kept < index) dropKept(follower, kept);
    // This step's stretch: the chunks held from the frontier on, or the frontier chunk read back from storage
    // when it closes a gap before one held (e.g. received by another replica).
    const stretch: { index: number; sha256: string; data: Buffer }[] = [];
    for (let next = index; follower.handoff.has(next) && stretch.length < chunksPerStep; next++) stretch.push({ index: next, ...dropKept(follower, next)! });
    if (stretch.length === 0 && follower.handoff.has(index + 1)) {
      const chunk = await deps.db.selectFrom('upload_chunks').select(['sha256', 'size']).where('upload_id', '=', uploadId).where('index', '=', index).executeTakeFirst();
      if (chunk) stretch.push({ index, sha256: chunk.sha256, data: await readChunk(deps.storage, chunkKey(known.tenantId, chunk.sha256), chunk.size) });
    }
    if (stretch.length === 0) {
      // Not received yet, or received elsewhere with nothing after it here: wait for the next arrival (finalize
      // hashes what is never followed).
      if (follower.again) {
        known = undefined; // a chunk arrived while this step looked (maybe at another replica): look again
        continue;
      }
      return 'waiting';
    }
    // The follower owns these buffers (request bodies handed over, or read back): they move to the hashing thread.
    let state = known.hashState;
    let chain = known.hashedChain;
    for (const chunk of stretch) {
      state = await sha256Step(state, chunk.data, { handOver: true });
      chain = chainNext(chain, chunk.sha256);
    }
    const done = known.hashedChunks + stretch.length;
    // Saved only if the row is as this step started from and every chunk hashed is the manifest's, byte for byte
    // (a chunk re-sent with other bytes since it was received, or another replica's step, makes it a no-op).
    const saved = await deps.db
      .updateTable('upload_sessions')
      .set({ hashed_chunks: done, hash_state: Buffer.from(state!), hashed_chain: chain })
      .where('id', '=', uploadId)
      .where('status', '=', 'open')
      .where('hashed_chunks', '=', index)
      .where('hashed_chain', '=', known.hashedChain)
      .where(
        sql<boolean>`(select count(*) from upload_chunks c where c.upload_id = ${uploadId} and (c.index, c.sha256) in (${sql.join(stretch.map((chunk) => sql`(${chunk.index}::int, ${chunk.sha256}::text)`))})) = ${stretch.length}`,
      )
      .executeTakeFirst();
    known = Number(saved.numUpdatedRows) === 1 ? { ...known, hashedChunks: done, hashState: state, hashedChain: chain } : undefined;
    if (known) follower.waitingSince = undefined;
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
