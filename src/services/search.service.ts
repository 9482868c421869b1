// Search (spec §11): keyword (Postgres full text over names and extracted text), semantic (nearest passages in
// the tenant's Weaviate shard) and hybrid (reciprocal-rank fusion of both). Permissions are applied by the
// database on every request: only files in spaces the caller can read now, never in the trash. Weaviate is
// asked only within those spaces, and its answers are checked against Postgres again (a grant removed a
// moment ago, a file deleted since it was indexed).
import { sql } from 'kysely';
import type { Db, Node, SearchStatus } from '../db/database';
import { AppError } from '../errors';
import { EmbeddingRejectedError, EmbeddingUnavailableError } from '../search/embeddings';
import { VectorStoreUnavailableError, type SearchBackends } from '../search/search-backends';
import { accessNode } from './access.service';
import type { Principal } from './principal';
import { reachableSpaces } from './spaces.service';

export type SearchMode = 'keyword' | 'semantic' | 'hybrid';

export interface SearchHit {
  file: Node;
  score: number;
  /** Plain text around the match; `highlights` are [start, end) offsets into it. */
  snippet: string | null;
  highlights: [number, number][];
  /** The passage a semantic match came from. */
  passage: { index: number; text: string } | null;
  matched_by: ('keyword' | 'semantic')[];
}

export interface SearchResult {
  items: SearchHit[];
  /** More results exist after these. */
  more: boolean;
  /** Hybrid search answered from keyword search alone (the vector side is unavailable), and why. */
  degraded: string | null;
}

export interface SearchRequest {
  q: string;
  mode: SearchMode;
  spaceId?: string;
  limit: number;
  offset: number;
}

/** Reciprocal-rank fusion's k (the usual 60): a result's fused score is Σ 1/(k + rank) over the lists it is in. */
const rrfK = 60;
/** Candidates taken from each list before fusion (and the deepest page a search can reach). */
export const maxSearchDepth = 1000;

const markStart = '\u0001';
const markEnd = '\u0002';

/** Turns a `ts_headline` with our control-character markers into plain text and highlight offsets. */
export function parseHeadline(marked: string): { snippet: string; highlights: [number, number][] } {
  let snippet = '';
  const highlights: [number, number][] = [];
  let start = -1;
  for (const char of marked) {
    if (char === markStart) start = snippet.length;
    else if (char === markEnd) {
      if (start >= 0 && snippet.length > start) highlights.push([start, snippet.length]);
      start = -1;
    } else snippet += char;
  }
  return { snippet, highlights };
}

/** Fuses ranked lists of ids: Σ 1/(k + rank), best first (ties by first appearance). */
export function reciprocalRankFusion(lists: string[][], k = rrfK): { id: string; score: number }[] {
  const scores = new Map<string, number>();
  for (const list of lists) list.forEach((id, rank) => scores.set(id, (scores.get(id) ?? 0) + 1 / (k + rank + 1)));
  return [...scores.entries()].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
}

function requireUserId(principal: Principal): string {
  if (principal.kind !== 'user') throw new AppError(403, 'FORBIDDEN', 'Search runs as a user (an API key acts for one with X-Act-As-User)');
  return principal.userId;
}

/** The ids of the spaces the caller can read right now: their own, and shares granted to them or their groups. */
function readableSpaces(db: Db, tenantId: string, userId: string) {
  return reachableSpaces(db, tenantId, userId).clearSelect().select('spaces.id');
}

export async function search(db: Db, backends: SearchBackends, principal: Principal, request: SearchRequest): Promise<SearchResult> {
  const userId = requireUserId(principal);
  if (request.spaceId) {
    // The space must be one the caller can read (404 otherwise, like any other resource).
    const space = await db.selectFrom('spaces').select('root_folder_id').where('id', '=', request.spaceId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
    if (!space) throw new AppError(404, 'NOT_FOUND', 'Space not found');
    await accessNode(db, principal, space.root_folder_id, 'read');
  }
  const depth = Math.min(maxSearchDepth, request.offset + request.limit + 1);
  const scope = { tenantId: principal.tenantId, userId, spaceId: request.spaceId };
  let ranked: { id: string; score: number }[];
  let keywordHits = new Map<string, number>();
  let semanticHits = new Map<string, { score: number; passage: { index: number; text: string } }>();
  let degraded: string | null = null;

  if (request.mode === 'keyword') {
    const rows = await keywordSearch(db, scope, request.q, depth);
    ranked = rows;
    keywordHits = new Map(rows.map((r) => [r.id, r.score]));
  } else if (request.mode === 'semantic') {
    const rows = await semanticSearch(db, backends, scope, request.q, depth).catch(unavailableAs503);
    ranked = rows.map((r) => ({ id: r.id, score: r.score }));
    semanticHits = new Map(rows.map((r) => [r.id, r]));
  } else {
    const [keyword, semantic] = await Promise.all([
      keywordSearch(db, scope, request.q, depth),
      semanticSearch(db, backends, scope, request.q, depth).catch((error: unknown) => {
        if (!isUnavailable(error)) throw error;
        degraded = `semantic search unavailable (${(error as Error).message}); results are from keyword search only`;
        return [];
      }),
    ]);
    keywordHits = new Map(keyword.map((r) => [r.id, r.score]));
    semanticHits = new Map(semantic.map((r) => [r.id, r]));
    ranked = reciprocalRankFusion([keyword.map((r) => r.id), semantic.map((r) => r.id)]);
  }

  const page = ranked.slice(request.offset, request.offset + request.limit);
  const more = ranked.length > request.offset + request.limit;
  const ids = page.map((r) => r.id);
  if (ids.length === 0) return { items: [], more: false, degraded };
  const files = await db.selectFrom('nodes').selectAll().where('id', 'in', ids).where('tenant_id', '=', principal.tenantId).execute();
  const byId = new Map(files.map((f) => [f.id, f]));
  const snippets = keywordHits.size > 0 ? await keywordSnippets(db, ids.filter((id) => keywordHits.has(id)), request.q) : new Map<string, string>();
  const items: SearchHit[] = [];
  for (const { id, score } of page) {
    const file = byId.get(id);
    if (!file) continue;
    const semantic = semanticHits.get(id);
    const marked = snippets.get(id);
    const headline = marked ? parseHeadline(marked) : semantic ? { snippet: semantic.passage.text, highlights: [] } : { snippet: null, highlights: [] };
    items.push({
      file,
      score,
      snippet: headline.snippet,
      highlights: headline.highlights,
      passage: semantic?.passage ?? null,
      matched_by: [...(keywordHits.has(id) ? (['keyword'] as const) : []), ...(semantic ? (['semantic'] as const) : [])],
    });
  }
  return { items, more, degraded };
}

interface SearchScope {
  tenantId: string;
  userId: string;
  spaceId?: string;
}

/**
 * Live files the caller can read whose name or extracted text matches, best first. The candidates come from the two
 * GIN indexes separately (names on nodes, text on search_documents) and are united before the join: an OR across
 * the join cannot use either index and would evaluate every readable file.
 */
async function keywordSearch(db: Db, scope: SearchScope, q: string, depth: number): Promise<{ id: string; score: number }[]> {
  const spaceFilter = scope.spaceId ? sql`and n.space_id = ${scope.spaceId}` : sql``;
  const result = await sql<{ id: string; score: number }>`
    with query as (select websearch_to_tsquery('simple', ${q}) as q),
    candidates as (
      select n.id from nodes n, query
      where n.tenant_id = ${scope.tenantId} and n.kind = 'file' and scaidrive_name_tsv(n.name) @@ query.q
      union
      select d.file_id from search_documents d, query
      where d.tenant_id = ${scope.tenantId} and d.tsv @@ query.q
    )
    select n.id, (2 * ts_rank(scaidrive_name_tsv(n.name), query.q) + coalesce(ts_rank(d.tsv, query.q), 0))::float8 as score
    from query, candidates c
    join nodes n on n.id = c.id
    left join search_documents d on d.version_id = n.current_version_id
    where n.tenant_id = ${scope.tenantId} and n.kind = 'file' and n.deleted_at is null
      and n.space_id in (${readableSpaces(db, scope.tenantId, scope.userId)}) ${spaceFilter}
      and (scaidrive_name_tsv(n.name) @@ query.q or d.tsv @@ query.q)
    order by score desc, n.id
    limit ${depth}`.execute(db);
  return result.rows.map((r) => ({ id: r.id, score: Number(r.score) }));
}

/** Marked-up excerpts of the files' extracted text around the query's words (by the database's own parser). */
async function keywordSnippets(db: Db, fileIds: string[], q: string): Promise<Map<string, string>> {
  if (fileIds.length === 0) return new Map();
  const result = await sql<{ id: string; headline: string | null }>`
    select n.id, ts_headline('simple', translate(left(d.text, 200000), ${markStart + markEnd}, '  '), websearch_to_tsquery('simple', ${q}),
      ${`StartSel=${markStart}, StopSel=${markEnd}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "`}) as headline
    from nodes n join search_documents d on d.version_id = n.current_version_id
    where n.id in (${sql.join(fileIds)}) and d.text is not null and d.tsv @@ websearch_to_tsquery('simple', ${q})`.execute(db);
  return new Map(result.rows.filter((r) => r.headline).map((r) => [r.id, r.headline!]));
}

/** Files whose passages are nearest to the query, best passage per file, re-checked against Postgres. */
async function semanticSearch(db: Db, backends: SearchBackends, scope: SearchScope, q: string, depth: number) {
  const spaces = scope.spaceId ? [scope.spaceId] : (await readableSpaces(db, scope.tenantId, scope.userId).execute()).map((r) => r.id);
  if (spaces.length === 0) return [];
  const store = await backends.passages();
  const [vector] = await backends.embeddings.embed([q]);
  // Several passages of one file may come back: ask for more than the files wanted.
  const hits = await store.nearVector(scope.tenantId, vector!, spaces, Math.min(maxSearchDepth * 2, depth * 3), 1 - backends.minSimilarity).catch((error: unknown) => {
    if (isWeaviateConnectionError(error)) backends.invalidate();
    throw error;
  });
  const best = new Map<string, { score: number; passage: { index: number; text: string } }>();
  for (const hit of hits) {
    const score = 1 - (hit.distance ?? 1);
    const known = best.get(hit.properties.file_id);
    if (!known || score > known.score) best.set(hit.properties.file_id, { score, passage: { index: hit.properties.passage_index, text: hit.properties.text } });
  }
  if (best.size === 0) return [];
  // Only what the caller can read now, live, in the spaces asked for.
  const live = await sql<{ id: string }>`
    select n.id from nodes n
    where n.id in (${sql.join([...best.keys()])}) and n.tenant_id = ${scope.tenantId} and n.kind = 'file' and n.deleted_at is null
      and n.space_id in (${sql.join(spaces)})`.execute(db);
  const allowed = new Set(live.rows.map((r) => r.id));
  return [...best.entries()]
    .filter(([id]) => allowed.has(id))
    .map(([id, hit]) => ({ id, ...hit }))
    .sort((a, b) => b.score - a.score || a.id.localeCompare(b.id))
    .slice(0, depth);
}

function isUnavailable(error: unknown): boolean {
  return error instanceof VectorStoreUnavailableError || error instanceof EmbeddingUnavailableError || isWeaviateConnectionError(error);
}

/** weaviate-client's errors when the server is unreachable mid-query (gRPC UNAVAILABLE, fetch failures). */
function isWeaviateConnectionError(error: unknown): boolean {
  const name = (error as { name?: string })?.name ?? '';
  const message = String((error as { message?: string })?.message ?? '');
  return /^Weaviate/.test(name) && /UNAVAILABLE|ECONNREFUSED|connect|fetch failed|timed? ?out|DEADLINE/i.test(message);
}

function unavailableAs503(error: unknown): never {
  if (isUnavailable(error)) {
    throw new AppError(503, 'SERVICE_UNAVAILABLE', `Semantic search is unavailable: ${(error as Error).message}`, undefined, { 'Retry-After': '30' });
  }
  if (error instanceof EmbeddingRejectedError) throw new AppError(503, 'SERVICE_UNAVAILABLE', `The embedding provider refused the query: ${error.message}`);
  throw error;
}

export interface IndexStatus {
  file_id: string;
  version_id: string | null;
  status: SearchStatus;
  reason: string | null;
  passages: number;
  updated_at: Date | null;
}

/** The search index status of a file the caller can read (its current version). */
export async function indexStatus(db: Db, principal: Principal, fileId: string): Promise<IndexStatus> {
  const { node } = await accessNode(db, principal, fileId, 'read', { kind: 'file' });
  const doc = node.current_version_id
    ? await db.selectFrom('search_documents').select(['status', 'reason', 'passages', 'updated_at']).where('version_id', '=', node.current_version_id).executeTakeFirst()
    : undefined;
  if (!doc) return { file_id: node.id, version_id: node.current_version_id, status: 'pending', reason: 'not queued yet (an admin re-index queues it)', passages: 0, updated_at: null };
  return { file_id: node.id, version_id: node.current_version_id, status: doc.status, reason: doc.reason, passages: doc.passages, updated_at: doc.updated_at };
}
