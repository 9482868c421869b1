// The whole-file SHA-256 of a resumable upload, kept up to date as chunks arrive (issue #13 item 3), so finalize
// is done the moment the last chunk lands instead of reading the whole file back.
//
// The hash is a live node:crypto SHA-256 in ONE API process per session, the session's hash owner (claimed with
// one conditional UPDATE by the first process that receives a chunk of it). node:crypto cannot save its state,
// so no other process can continue it; it is four times faster than hash-wasm, whose saved states could be
// continued elsewhere but cost the API ~4 CPU-s per GiB (the upload benchmark's profile). The owner hashes the
// chunks it receives, in order: those ahead of its frontier from memory within a cap, else from local disk (the
// hash spool), and reads back from storage the ones another replica received. The session
// records how far the owner got and, once every chunk is hashed, the file's SHA-256 with a chain digest of the
// hashed chunks' SHA-256s: finalize trusts that checksum only when the chain of the session's manifest equals the
// saved one — the same chunks, byte for byte — so a chunk re-sent with other bytes, a lost owner or any race
// costs a full hash in the worker, never a wrong checksum. The declared checksum is always verified against it.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { hostname } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../db/database';
import type { BlobStorage } from '../storage/blob-storage';
import type { ChunkBufferPool } from './chunk-buffers';
import { chunkKey } from './chunk-store';
import { HashSpool, type SpooledChunk } from './hash-spool';
import { StoredChunkStream, type StoredChunk } from './stored-chunk-stream';
import type { ByteBudget } from './upload-limits';

/** This process, as the hash owner of the sessions it follows. */
const processToken = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

/** Chunks hashed before the step is saved (one conditional UPDATE per step). */
const chunksPerStep = 8;
/**
 * Bytes all followers of this process may hold from requests at once: 128 MiB, and at most an eighth of the
 * process's buffer budget for chunk bytes (16 MiB of the default 128: two 8 MiB chunks waiting for the one before
 * them, the usual case of four uploads in parallel; more go to the spool). A held chunk keeps the budget its request
 * took (the budget bounds every chunk byte in memory), so the cap leaves most of the budget to requests. When full, a
 * chunk nearer a follower's frontier displaces the farthest one it holds.
 */
const maxHeldBytes = (budget?: ByteBudget) => Math.min(128 * 1024 * 1024, budget ? Math.floor(budget.capacity / 8) : Infinity);
/**
 * Chunks received ahead of the frontier beyond what the followers may hold in memory go to local disk, up to this
 * many bytes per process (past it they are read back from storage when the frontier reaches them).
 */
const spool = new HashSpool(2 * 1024 * 1024 * 1024);
/** Bytes hashed per turn of the event loop (~5 ms): a 64 MiB chunk does not hold up other requests for 40 ms. */
const sliceBytes = 8 * 1024 * 1024;
/**
 * While the owner waits for the chunk at its frontier it looks at the manifest this often (the chunk may have
 * reached another replica, or been dropped here when the byte cap was full), and lets the session go after this
 * long without progress (an abandoned or paused upload; a later chunk claims it again, from chunk 0).
 */
const idleRetryMs = 250;
const idleReleaseMs = 30_000;
/** An owner that made no progress for this long may be replaced (it crashed, or its process stopped). */
const ownerLeaseSeconds = 60;
/** How long a process remembers that another one owns a session's hash (no claim query per chunk). */
const notMineMs = 10_000;

/** The chain digest after one more chunk. */
export const chainNext = (chain: string, chunkSha256: string) => createHash('sha256').update(chain).update(chunkSha256).digest('hex');

/** The chain digest of a session's first `count` chunks as its manifest has them now (null when one is missing). */
export async function manifestChain(db: Db, uploadId: string, count: number): Promise<string | null> {
  let chain = '';
  let next = 0;
  while (next < count) {
    const page = await db.selectFrom('upload_chunks').select(['index', 'sha256']).where('upload_id', '=', uploadId).where('index', '>=', next).where('index', '<', count).orderBy('index').limit(1000).execute();
    for (const row of page) {
      if (row.index !== next) return null;
      chain = chainNext(chain, row.sha256);
      next++;
    }
    if (page.length === 0) return null;
  }
  return chain;
}

/** Feeds `data` to `hash` a slice per turn of the event loop. */
export async function hashInSlices(hash: Hash, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; offset += sliceBytes) {
    if (offset > 0) await nextTurn();
    hash.update(data.subarray(offset, offset + sliceBytes));
  }
}

interface HeldChunk {
  sha256: string;
  data: Buffer;
}

interface Follower {
  tenantId: string;
  chunkCount: number;
  /** SHA-256 of chunks [0, next), and the chain digest of their SHA-256s. */
  hash: Hash;
  next: number;
  chain: string;
  held: Map<number, HeldChunk>;
  /** Chunks ahead of the frontier written to the spool (no memory held). */
  spooled: Map<number, SpooledChunk>;
  /** A chunk arrived since the running step looked. */
  again: boolean;
  running: boolean;
  retryTimer?: NodeJS.Timeout;
  /** Since when it has been waiting without progress. */
  waitingSince?: number;
}

const followers = new Map<string, Follower>();
const claims = new Map<string, Promise<void>>();
const notMine = new Map<string, number>();
/**
 * Bytes of request chunks the followers have in memory: waiting ahead of a frontier, and taken into a step until
 * hashed (counting only waiting ones let a step's chunks and as many new arrivals be in memory at once).
 */
let heldBytes = 0;

/** Bytes of request chunks this process's hash owners hold in memory now (the `scaidrive_upload_hash_held_bytes` gauge). */
export const heldChunkBytes = () => heldBytes;

export interface HashFollowerDeps {
  db: Db;
  storage: BlobStorage;
  /**
   * The process's buffer budget for chunk bytes: bounds what the followers may hold (see maxHeldBytes); a chunk
   * handed over brings its request's share of it, given back once the chunk is hashed or dropped.
   */
  budget?: ByteBudget;
  /** Where held chunks' buffers go back once hashed. */
  buffers?: ChunkBufferPool;
  onError?: (error: unknown) => void;
}

/** A held chunk's buffer is done with: back to the pool with its share of the budget (or that share released). */
function recycleHeld(deps: HashFollowerDeps, data: Buffer): void {
  if (!deps.buffers?.keep(data)) deps.budget?.give(data.length);
}

/** A held chunk's bytes are let go: no longer counted as held, the buffer recycled. */
function letGo(deps: HashFollowerDeps, data: Buffer): void {
  heldBytes -= data.length;
  recycleHeld(deps, data);
}

/**
 * Takes a chunk out of the follower's map: let go (`release`), or returned to the caller, who then answers for its
 * bytes: still counted in heldBytes until the caller lets go of them once hashed (letGo), or uncounts them.
 */
function takeHeld(deps: HashFollowerDeps, follower: Follower, index: number, release: boolean): HeldChunk | undefined {
  const held = follower.held.get(index);
  if (!held) return undefined;
  follower.held.delete(index);
  if (release) letGo(deps, held.data);
  return held;
}

/**
 * A chunk ahead of the frontier that cannot stay in memory: written to the spool, its buffer recycled once written
 * (the promise returned settles then). Undefined when the spool is full: the chunk is then read back from storage
 * when its turn comes, and its buffer stays the caller's.
 */
function spill(deps: HashFollowerDeps, uploadId: string, follower: Follower, index: number, chunk: HeldChunk): Promise<void> | undefined {
  if (follower.spooled.has(index)) return undefined;
  const spooled = spool.spill(uploadId, index, chunk.sha256, chunk.data);
  if (!spooled) return undefined;
  follower.spooled.set(index, spooled);
  return spooled.written.then(() => recycleHeld(deps, chunk.data));
}

/** Forgets the spooled chunks below `frontier` (or all): their files are removed. */
function discardSpooled(follower: Follower, frontier = Infinity): void {
  for (const [index, chunk] of follower.spooled) {
    if (index >= frontier) continue;
    follower.spooled.delete(index);
    spool.discard(chunk);
  }
}

/**
 * Hands a chunk just stored and recorded (`received`, its bytes still in memory) to the session's hash owner if
 * that is this process (claiming the session when nobody owns it), in the background of this process: never in a
 * request's path beyond the claim and a spool write, and it never throws. The chunk is held within the process's byte cap, nearest
 * the owner's frontier first; a chunk ahead of the frontier that does not fit is written to the spool (awaited, as
 * are the spool writes of held chunks it displaced: once a request is answered its bytes are held within the cap
 * or on disk). Returns whether the follower kept the buffer (held, or spooled): it is then the follower's (given back
 * to `deps.buffers` once hashed or written), and so is the request's share of `deps.budget` for it; the caller must
 * not reuse the buffer nor give back that budget.
 */
export async function followUploadHash(deps: HashFollowerDeps, uploadId: string, received: { index: number; sha256: string; data: Buffer }): Promise<boolean> {
  let follower = followers.get(uploadId);
  if (!follower) {
    if ((notMine.get(uploadId) ?? 0) > Date.now()) return false;
    let claim = claims.get(uploadId);
    if (!claim) {
      claim = claimSession(deps, uploadId).finally(() => claims.delete(uploadId));
      claims.set(uploadId, claim);
    }
    await claim.catch((error: unknown) => deps.onError?.(error));
    follower = followers.get(uploadId);
    if (!follower) return false;
  }
  follower.again = true;
  for (const index of [...follower.held.keys()]) if (index < follower.next) takeHeld(deps, follower, index, true);
  discardSpooled(follower, follower.next);
  const { index, data } = received;
  let kept = false;
  const writes: Promise<void>[] = [];
  if (index >= follower.next && !follower.held.has(index) && !follower.spooled.has(index)) {
    const cap = maxHeldBytes(deps.budget);
    let farthest = Math.max(...follower.held.keys());
    while (heldBytes + data.length > cap && farthest > index) {
      const displaced = takeHeld(deps, follower, farthest, false)!;
      heldBytes -= displaced.data.length;
      const written = spill(deps, uploadId, follower, farthest, displaced);
      if (written) writes.push(written);
      else recycleHeld(deps, displaced.data);
      farthest = Math.max(...follower.held.keys());
    }
    if (heldBytes + data.length <= cap) {
      follower.held.set(index, { sha256: received.sha256, data });
      heldBytes += data.length;
      kept = true;
    } else {
      const written = spill(deps, uploadId, follower, index, { sha256: received.sha256, data });
      if (written) writes.push(written);
      kept = written !== undefined;
    }
  }
  if (!follower.running) startFollower(deps, uploadId, follower);
  await Promise.all(writes);
  return kept;
}

/** Becomes the session's hash owner when nobody (alive) is, starting from chunk 0. */
async function claimSession(deps: HashFollowerDeps, uploadId: string): Promise<void> {
  const claimed = await deps.db
    .updateTable('upload_sessions')
    .set({ hash_owner: processToken, hash_owner_seen_at: sql`now()`, hashed_chunks: 0, hashed_chain: '', hashed_sha256: null })
    .where('id', '=', uploadId)
    .where('status', '=', 'open')
    .where('transfer', '=', 'proxied')
    .where('hashed_sha256', 'is', null)
    .where((eb) => eb.or([eb('hash_owner', 'is', null), eb('hash_owner_seen_at', '<', sql<Date>`now() - make_interval(secs => ${ownerLeaseSeconds})`)]))
    .returning(['tenant_id', 'chunk_count'])
    .executeTakeFirst();
  if (!claimed) {
    if (notMine.size > 10_000) notMine.clear();
    notMine.set(uploadId, Date.now() + notMineMs);
    return;
  }
  followers.set(uploadId, { tenantId: claimed.tenant_id, chunkCount: claimed.chunk_count, hash: createHash('sha256'), next: 0, chain: '', held: new Map(), spooled: new Map(), again: false, running: false });
}

/**
 * Resolves once the session's hash owner (in any process) has hashed every chunk, stopped making progress for
 * `quietMs`, or after `maxWaitMs`: finalize waits for it so the worker need not hash the file again.
 */
export async function sessionHashSettled(db: Db, uploadId: string, maxWaitMs = 10_000, quietMs = 1000): Promise<void> {
  const start = Date.now();
  let seen = -1;
  let movedAt = start;
  for (;;) {
    // The owner's progress, from memory when it is this process (no query every few milliseconds), else its row.
    const local = followers.get(uploadId);
    let progress = local?.next;
    if (progress === undefined) {
      const row = await db.selectFrom('upload_sessions').select(['status', 'hash_owner', 'hashed_chunks', 'hashed_sha256']).where('id', '=', uploadId).executeTakeFirst();
      if (!row || row.status !== 'open' || !row.hash_owner || row.hashed_sha256) return;
      progress = row.hashed_chunks;
    }
    const now = Date.now();
    if (progress !== seen) {
      seen = progress;
      movedAt = now;
    }
    if (now - movedAt > quietMs || now - start > maxWaitMs) return;
    await new Promise((resolve) => setTimeout(resolve, local ? 5 : 20));
  }
}

function startFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower, idle = false): void {
  follower.running = true;
  clearTimeout(follower.retryTimer);
  void runFollower(deps, uploadId, follower, idle)
    .catch((error: unknown) => {
      deps.onError?.(error);
      return 'lost' as const;
    })
    .then((outcome) => {
      follower.running = false;
      if (outcome !== 'waiting') return releaseFollower(deps, uploadId, follower, outcome === 'lost');
      if (follower.again) return startFollower(deps, uploadId, follower); // a chunk arrived just now
      follower.waitingSince ??= Date.now();
      if (Date.now() - follower.waitingSince >= idleReleaseMs) return releaseFollower(deps, uploadId, follower, true);
      follower.retryTimer = setTimeout(() => follower.running || startFollower(deps, uploadId, follower, true), idleRetryMs).unref();
    });
}

/** Forgets the session here (its held buffers back to the pool); `giveUp` also clears this process's claim on it. */
function releaseFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower, giveUp: boolean): void {
  clearTimeout(follower.retryTimer);
  for (const index of [...follower.held.keys()]) takeHeld(deps, follower, index, true);
  discardSpooled(follower);
  if (followers.get(uploadId) === follower) followers.delete(uploadId);
  if (!giveUp) return;
  void deps.db
    .updateTable('upload_sessions')
    .set({ hash_owner: null, hash_owner_seen_at: null, hashed_chunks: 0, hashed_chain: '' })
    .where('id', '=', uploadId)
    .where('hash_owner', '=', processToken)
    .where('status', '=', 'open')
    .where('hashed_sha256', 'is', null)
    .execute()
    .catch((error: unknown) => deps.onError?.(error));
}

/**
 * Hashes while it can: 'waiting' when the chunk at its frontier is not here (nor recorded) yet, 'done' once every
 * chunk is hashed and saved, 'lost' when a step could not be saved (the session is no longer open, another process
 * owns it, or a chunk changed under the step: this live hash no longer describes the manifest).
 */
async function runFollower(deps: HashFollowerDeps, uploadId: string, follower: Follower, idle: boolean): Promise<'waiting' | 'done' | 'lost'> {
  for (;;) {
    follower.again = false;
    const from = follower.next;
    for (const index of [...follower.held.keys()]) if (index < from) takeHeld(deps, follower, index, true);
    discardSpooled(follower, from);
    // This step's stretch: the chunks held or spooled from the frontier on, or else the chunks the manifest has
    // from the frontier on, read back from storage (received by another replica, or dropped here when the cap and
    // the spool were full). `held`: the chunk came from a request with its share of the budget; others hold none.
    const stretch: StretchChunk[] = [];
    for (let next = from; stretch.length < chunksPerStep; next++) {
      const local = takeLocal(deps, follower, next);
      if (!local) break;
      stretch.push(local);
    }
    let readBack: StoredChunkStream | undefined;
    if (stretch.length === 0) {
      // Right after hashing its own arrivals with nothing held, the next chunk is most likely still on its way here:
      // the manifest is read when a chunk waits behind the frontier, or once idle (the retry timer).
      if (!idle && follower.held.size === 0) {
        if (follower.again) continue;
        return 'waiting';
      }
      // Waiting on a session that was finalized, aborted or expired meanwhile: let go of what is held now.
      if (idle) {
        const session = await deps.db.selectFrom('upload_sessions').select('status').where('id', '=', uploadId).executeTakeFirst();
        if (session?.status !== 'open') return 'lost';
      }
      const recorded = await deps.db
        .selectFrom('upload_chunks')
        .select(['index', 'sha256', 'size'])
        .where('upload_id', '=', uploadId)
        .where('index', '>=', from)
        .where('index', '<', from + chunksPerStep)
        .orderBy('index')
        .execute();
      if (follower.held.has(from) || follower.spooled.has(from)) continue; // handed over while the manifest was read
      // The run recorded from the frontier on: chunks held or spooled here come from memory or disk, the others
      // are streamed back from storage into the hash (the next one opened while one is hashed).
      for (const row of recorded) {
        if (row.index !== from + stretch.length) break;
        stretch.push(takeLocal(deps, follower, row.index) ?? { index: row.index, held: false, sha256: row.sha256, stored: { key: chunkKey(follower.tenantId, row.sha256), size: row.size } });
      }
      if (stretch.length === 0) {
        if (follower.again) continue;
        return 'waiting';
      }
      const stored = stretch.flatMap((chunk) => (chunk.stored ? [chunk.stored] : []));
      if (stored.length > 0) readBack = new StoredChunkStream(deps.storage, stored);
    }
    let chain = follower.chain;
    for (const [position, chunk] of stretch.entries()) {
      if (chunk.held) {
        await hashInSlices(follower.hash, chunk.data!);
        letGo(deps, chunk.data!);
        chain = chainNext(chain, chunk.sha256);
        continue;
      }
      try {
        if (chunk.spooled) await spool.hashInto(chunk.spooled, follower.hash);
        else await readBack!.hashNext(follower.hash);
      } catch (error) {
        // The live hash took part of a chunk: it is lost with the session (the caller lets go); what this step
        // still has in hand goes back.
        for (const rest of stretch.slice(position + 1)) {
          if (rest.held) letGo(deps, rest.data!);
          if (rest.spooled) spool.discard(rest.spooled);
        }
        if (chunk.spooled) spool.discard(chunk.spooled);
        readBack?.abandon();
        throw error;
      }
      if (chunk.spooled) spool.discard(chunk.spooled);
      chain = chainNext(chain, chunk.sha256);
    }
    const done = from + stretch.length;
    const sha256 = done === follower.chunkCount ? follower.hash.digest('hex') : null;
    // Saved only while this process owns the session, the row is as this step started from, and every chunk hashed
    // is the manifest's, byte for byte (a chunk re-sent with other bytes since it was received makes it a no-op).
    const saved = await deps.db
      .updateTable('upload_sessions')
      .set({ hashed_chunks: done, hashed_chain: chain, hash_owner_seen_at: sql`now()`, hashed_sha256: sha256, ...(sha256 ? { hash_owner: null } : {}) })
      .where('id', '=', uploadId)
      .where('status', '=', 'open')
      .where('hash_owner', '=', processToken)
      .where('hashed_chunks', '=', from)
      .where(
        sql<boolean>`(select count(*) from upload_chunks c where c.upload_id = ${uploadId} and (c.index, c.sha256) in (${sql.join(stretch.map((chunk) => sql`(${chunk.index}::int, ${chunk.sha256}::text)`))})) = ${stretch.length}`,
      )
      .executeTakeFirst();
    if (Number(saved.numUpdatedRows) !== 1) return 'lost';
    follower.next = done;
    follower.chain = chain;
    follower.waitingSince = undefined;
    if (sha256) return 'done';
  }
}

/**
 * A chunk of a follower's step: held in memory since its request (`data`), spooled to local disk, or to be read
 * back from storage.
 */
interface StretchChunk {
  index: number;
  sha256: string;
  held: boolean;
  data?: Buffer;
  spooled?: SpooledChunk;
  /** Where a chunk neither in memory nor spooled is read back from. */
  stored?: StoredChunk;
}

/** Takes chunk `index` out of the follower's memory or spool for hashing, if it is in either. */
function takeLocal(deps: HashFollowerDeps, follower: Follower, index: number): StretchChunk | undefined {
  const held = takeHeld(deps, follower, index, false);
  if (held) return { index, held: true, ...held };
  const spooled = follower.spooled.get(index);
  if (!spooled) return undefined;
  follower.spooled.delete(index);
  return { index, held: false, sha256: spooled.sha256, spooled };
}
