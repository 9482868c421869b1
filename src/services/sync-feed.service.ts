// The sync change feed (spec §9, issue #12): what a sync client pulls to mirror every space it can reach.
//
// A feed position is the tenant's change-log `position` (assigned at COMMIT, so positions become visible strictly
// in order — migration 0010). A cursor carries, besides that position, the set of spaces the client holds:
//  - a space it holds but can no longer read yields one `space_removed` entry, and nothing more from it;
//  - a space it can read but does not hold yet (cursor=0: all of them; later: a new share or group grant) is
//    delivered as a listing copied in one transaction at position q (a snapshot, so its pages stay consistent while
//    writes go on), after which the log goes on; log entries up to q about those spaces or about nodes in the
//    listing are skipped (the listing already holds their state at q), so nothing is missed and nothing repeated.
// Visibility is checked on every pull against the caller's spaces now, never remembered from an earlier pull.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { ChangeType, Db } from '../db/database';
import { badRequest, forbidden, gone, notFound } from '../errors';
import { newId } from '../ids';
import type { Principal } from './principal';
import { listSpaces } from './spaces.service';

/** How far past its position one pull scans the log for the caller's entries (bounds every query). */
const scanWindow = 20_000;

export interface FeedCursor {
  /** The last log position delivered. */
  p: number;
  /** The set of spaces the client holds (a `sync_space_sets` id; null: none). */
  k: string | null;
  /** The feed's space filter: a cursor continues only the feed it came from. */
  f: string | null;
  /** A listing being delivered: snapshot id, last ord delivered, whether all of it was, its position, its spaces' set. */
  s: { id: string; o: number; done: boolean; q: number; n: string } | null;
}

export interface FeedEntry {
  seq: number;
  type: ChangeType | 'space_removed';
  node_id: string | null;
  kind: 'folder' | 'file' | null;
  parent_id: string | null;
  space_id: string;
  version_id: string | null;
  name: string | null;
  at: Date | null;
  /** Listing entries only: the file's size and checksum at the listing's position. */
  size?: number | null;
  checksum_sha256?: string | null;
}

export interface FeedPage {
  changes: FeedEntry[];
  cursor: FeedCursor;
  hasMore: boolean;
}

function requireUserId(principal: Principal): string {
  if (principal.kind !== 'user') throw forbidden('The sync feed is per user (an API key acts for one with X-Act-As-User)');
  return principal.userId;
}

/** The spaces the caller can read now (only `spaceId` with a filter: 404 when it is not one of them). */
async function readableSpaceIds(db: Db, principal: Principal, userId: string, spaceId: string | null): Promise<Set<string>> {
  const spaces = (await listSpaces(db, principal.tenantId, userId)).map((s) => s.id);
  if (spaceId === null) return new Set(spaces);
  if (!spaces.includes(spaceId)) throw notFound('Space');
  return new Set([spaceId]);
}

async function loadSpaceSet(db: Db, tenantId: string, id: string | null): Promise<string[]> {
  if (id === null) return [];
  const row = await db.selectFrom('sync_space_sets').select('spaces').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  // Sets are never deleted while the tenant exists; a missing one means a cursor from a restored or other database.
  if (!row) throw gone('This cursor no longer matches the server; start again from cursor=0', 'SYNC_CURSOR_INVALID');
  return row.spaces;
}

async function saveSpaceSet(db: Db, tenantId: string, spaces: Iterable<string>): Promise<string | null> {
  const sorted = [...spaces].sort();
  if (sorted.length === 0) return null;
  const id = createHash('sha256').update(sorted.join('\n')).digest('base64url').slice(0, 22);
  await db.insertInto('sync_space_sets').values({ tenant_id: tenantId, id, spaces: sorted }).onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing()).execute();
  return id;
}

async function feedHead(db: Db, tenantId: string): Promise<{ position: number; pruned_through: number }> {
  const head = await db.selectFrom('change_log_heads').select(['position', 'pruned_through']).where('tenant_id', '=', tenantId).executeTakeFirst();
  return head ?? { position: 0, pruned_through: 0 };
}

/**
 * What every pull reads first, in parallel (one round trip of latency, not three): the caller's spaces, the feed
 * head, and the cursor's space set — the last as a promise, so the cursor's own checks (startingState) answer
 * before a missing set does.
 */
async function loadFeedState(db: Db, principal: Principal, userId: string, cursor: FeedCursor | null, spaceId: string | null) {
  const held = loadSpaceSet(db, principal.tenantId, cursor?.k ?? null);
  held.catch(() => undefined);
  const [readable, head] = await Promise.all([readableSpaceIds(db, principal, userId, spaceId), feedHead(db, principal.tenantId)]);
  return { readable, head, held };
}

const cursorTooOld = () =>
  gone('The cursor is older than the change log keeps (changelog_retention_days): start again from cursor=0', 'SYNC_CURSOR_INVALID');

/** Checks a cursor against the log's retention and the request's filter; a fresh one for a full resync. */
function startingState(cursor: FeedCursor | null, spaceId: string | null, head: { position: number; pruned_through: number }): FeedCursor {
  if (cursor === null) return { p: 0, k: null, f: spaceId, s: null };
  if (cursor.f !== spaceId) throw badRequest('This cursor belongs to a feed with another space_id', 'INVALID_CURSOR');
  if (cursor.p < head.pruned_through || cursor.p > head.position) throw cursorTooOld();
  return cursor;
}

/**
 * The next page of the caller's feed after `cursor` (null: a full resync). The cursor in the result is where the
 * client continues; storing it for a device is the client's call (`POST /sync/cursor`), never the server's.
 */
export async function pullChanges(db: Db, principal: Principal, request: { cursor: FeedCursor | null; limit: number; spaceId: string | null }): Promise<FeedPage> {
  const userId = requireUserId(principal);
  const tenantId = principal.tenantId;
  const { readable, head, held: heldLoad } = await loadFeedState(db, principal, userId, request.cursor, request.spaceId);
  const state = { ...startingState(request.cursor, request.spaceId, head) };
  const held = await heldLoad;
  const known = new Set(held);
  const changes: FeedEntry[] = [];
  const room = () => request.limit - changes.length;

  // Spaces the client holds but can no longer read: one entry each, and nothing more from them.
  for (const spaceId of [...known].sort()) {
    if (readable.has(spaceId)) continue;
    changes.push({ seq: state.p, type: 'space_removed', node_id: null, kind: null, parent_id: null, space_id: spaceId, version_id: null, name: null, at: null });
    known.delete(spaceId);
  }

  let logBehind = false;
  for (let pass = 0; pass < 2 && room() > 0; pass++) {
    if (state.s && !state.s.done) changes.push(...(await readListing(db, state.s, known, room())));
    if (room() <= 0 || (state.s && !state.s.done)) break;
    const log = await readLog(db, tenantId, state, known, head.position, room());
    changes.push(...log.entries);
    state.p = log.position;
    logBehind = log.position < head.position;
    if (state.s && state.s.done && state.p >= state.s.q) state.s = null;
    // Spaces readable but not held: listed once the log has caught up (and no other listing is being delivered).
    const added = [...readable].filter((id) => !known.has(id));
    if (added.length === 0 || state.s || logBehind || room() <= 0) break;
    const listing = await createListing(db, tenantId, userId, added);
    state.s = { id: listing.id, o: 0, done: false, q: listing.position, n: (await saveSpaceSet(db, tenantId, added))! };
    // A client holding nothing has nothing to catch up on below the listing's position.
    if (known.size === 0) state.p = Math.max(state.p, listing.position);
    for (const id of added) known.add(id);
  }

  // Most pulls keep the same spaces: their set is stored already.
  const unchanged = known.size === held.length && held.every((id) => known.has(id));
  if (!unchanged) state.k = await saveSpaceSet(db, tenantId, known);
  const pendingSpaces = [...readable].some((id) => !known.has(id));
  const hasMore = room() <= 0 || logBehind || pendingSpaces || (state.s !== null && !state.s.done);
  return { changes, cursor: state, hasMore };
}

/** The next entries of a listing being delivered (only of spaces still held), marking it done at its end. */
async function readListing(db: Db, listing: NonNullable<FeedCursor['s']>, known: Set<string>, limit: number): Promise<FeedEntry[]> {
  const exists = await db.selectFrom('sync_snapshots').select('id').where('id', '=', listing.id).executeTakeFirst();
  if (!exists) throw gone('The resync listing this cursor was reading has expired: start again from cursor=0', 'SYNC_CURSOR_INVALID');
  const held = [...known];
  if (held.length === 0) {
    listing.done = true;
    return [];
  }
  const rows = await sql<{
    ord: number; node_id: string; kind: 'folder' | 'file'; parent_id: string | null; space_id: string; name: string;
    version_id: string | null; size: number | null; checksum_sha256: string | null; updated_at: Date;
  }>`select ord, node_id, kind, parent_id, space_id, name, version_id, size, checksum_sha256, updated_at
     from sync_snapshot_entries
     where snapshot_id = ${listing.id} and ord > ${listing.o} and space_id = any(${held}::text[])
     order by ord limit ${limit + 1}`.execute(db);
  const page = rows.rows.slice(0, limit);
  if (rows.rows.length <= limit) listing.done = true;
  if (page.length > 0) listing.o = page[page.length - 1]!.ord;
  return page.map((row) => ({
    seq: listing.q,
    type: 'created' as const,
    node_id: row.node_id,
    kind: row.kind,
    parent_id: row.parent_id,
    space_id: row.space_id,
    version_id: row.version_id,
    name: row.name,
    at: row.updated_at,
    size: row.size === null ? null : Number(row.size),
    checksum_sha256: row.checksum_sha256,
  }));
}

/**
 * Log entries after the cursor's position in the spaces the client holds, at most `limit`, scanning at most
 * `scanWindow` positions. A node moved out to a space the client does not hold is presented as `deleted` from
 * the space it left. Returns the position the client has consumed the log to.
 */
async function readLog(db: Db, tenantId: string, state: FeedCursor, known: Set<string>, headPosition: number, limit: number): Promise<{ entries: FeedEntry[]; position: number }> {
  const held = [...known];
  // Holding nothing, nothing in the log concerns the client: it is consumed up to the head.
  if (held.length === 0) return { entries: [], position: Math.max(state.p, headPosition) };
  const upper = Math.min(headPosition, state.p + scanWindow);
  if (upper <= state.p) return { entries: [], position: state.p };
  const listing = state.s;
  const listed = listing
    ? sql`and not (c.position <= ${listing.q} and (c.space_id = any(${await loadSpaceSet(db, tenantId, listing.n)}::text[])
          or exists (select 1 from sync_snapshot_entries e where e.snapshot_id = ${listing.id} and e.node_id = c.node_id)))`
    : sql``;
  const rows = await sql<{
    position: number; type: ChangeType; node_id: string; kind: 'folder' | 'file' | null; parent_id: string | null;
    space_id: string; from_space_id: string | null; version_id: string | null; name: string | null; at: Date;
  }>`select c.position, c.type, c.node_id, c.kind, c.parent_id, c.space_id, c.from_space_id, c.version_id, c.name, c.at
     from change_log c
     where c.tenant_id = ${tenantId} and c.position > ${state.p} and c.position <= ${upper}
       and (c.space_id = any(${held}::text[]) or c.from_space_id = any(${held}::text[])) ${listed}
     order by c.position limit ${limit + 1}`.execute(db);
  const page = rows.rows.slice(0, limit);
  const position = rows.rows.length > limit ? Number(page[page.length - 1]!.position) : upper;
  const entries = page.map((row): FeedEntry => {
    const left = !known.has(row.space_id);
    return {
      seq: Number(row.position),
      type: left ? 'deleted' : row.type,
      node_id: row.node_id,
      kind: row.kind,
      parent_id: row.parent_id,
      space_id: left ? row.from_space_id! : row.space_id,
      version_id: row.version_id,
      name: row.name,
      at: row.at,
    };
  });
  return { entries, position };
}

/**
 * Copies the live trees of `spaceIds` (parents first) and the log position they are at, in one repeatable-read
 * transaction: the listing is exactly the state at that position.
 */
async function createListing(db: Db, tenantId: string, userId: string, spaceIds: string[]): Promise<{ id: string; position: number }> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const head = await trx.selectFrom('change_log_heads').select('position').where('tenant_id', '=', tenantId).executeTakeFirst();
      const position = head?.position ?? 0;
      const id = newId('syncSnapshot');
      await trx.insertInto('sync_snapshots').values({ id, tenant_id: tenantId, user_id: userId, position, spaces: spaceIds, entries: 0 }).execute();
      const inserted = await sql<{ n: number }>`
        with recursive tree(id, depth) as (
          select root_folder_id, 0 from spaces where tenant_id = ${tenantId} and id = any(${spaceIds}::text[])
          union all
          select n.id, t.depth + 1 from nodes n join tree t on n.parent_id = t.id where n.deleted_at is null and t.depth < 256
        ), ins as (
          insert into sync_snapshot_entries (snapshot_id, ord, node_id, kind, parent_id, space_id, name, version_id, size, checksum_sha256, updated_at)
          select ${id}, row_number() over (order by t.depth, n.id), n.id, n.kind, n.parent_id, n.space_id, n.name, n.current_version_id,
                 case when n.kind = 'file' then n.size end, n.checksum_sha256, n.updated_at
          from tree t join nodes n on n.id = t.id
          returning 1
        )
        select count(*)::int as n from ins`.execute(trx);
      await trx.updateTable('sync_snapshots').set({ entries: inserted.rows[0]!.n }).where('id', '=', id).execute();
      return { id, position };
    });
}

/** Whether a pull after `cursor` would return anything now (the long poll's check; no listing is created). */
export async function hasChanges(db: Db, principal: Principal, cursor: FeedCursor, spaceId: string | null): Promise<boolean> {
  const userId = requireUserId(principal);
  const { readable, head, held } = await loadFeedState(db, principal, userId, cursor, spaceId);
  const state = startingState(cursor, spaceId, head);
  const known = await held;
  if (known.some((id) => !readable.has(id)) || [...readable].some((id) => !known.includes(id))) return true;
  if (state.s && !state.s.done) return true;
  if (head.position <= state.p) return false;
  if (head.position > state.p + scanWindow) return true;
  const probe = await readLog(db, principal.tenantId, state, new Set(known), head.position, 1);
  return probe.entries.length > 0;
}

/** The log position the tenant's feed is at (hints carry it so a client can tell whether it is behind). */
export async function feedPosition(db: Db, tenantId: string): Promise<number> {
  return (await feedHead(db, tenantId)).position;
}

/** What a sync WebSocket serves, re-read when grants change: whether the user may still sync, and their spaces. */
export async function syncAudience(db: Db, tenantId: string, userId: string): Promise<{ active: boolean; spaces: string[] }> {
  const user = await db
    .selectFrom('users')
    .innerJoin('tenants', 'tenants.id', 'users.tenant_id')
    .select(['users.is_active as user_active', 'tenants.is_active as tenant_active'])
    .where('users.id', '=', userId)
    .where('users.tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!user?.user_active || !user.tenant_active) return { active: false, spaces: [] };
  return { active: true, spaces: (await listSpaces(db, tenantId, userId)).map((s) => s.id) };
}
