// Helpers for the tree race tests: folders and uploads over HTTP, and bounded invariant queries on the tree.
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { Dispatcher } from 'undici';
import { api, type TestStack } from '../helpers/stack';
import type { TestUser } from '../helpers/files';

import { V1 } from '../helpers/tree';

export { V1, mkdir } from '../helpers/tree';

/** A direct upload over `dispatcher` (a pre-opened connection of a burst), as `api` sends it. */
export async function putFile(stack: TestStack, token: string, parentId: string, name: string, data: Buffer, dispatcher?: Dispatcher) {
  const response = await fetch(`${stack.baseUrl}${V1}/folders/${parentId}/files/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: data,
    ...(dispatcher ? { dispatcher } : {}),
  } as RequestInit);
  const text = await response.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: response.status, body, text };
}

/**
 * Nodes of the tenant whose parent chain does not end at their own space's root folder within 200 steps
 * (a cycle, a detached chain or a wrong space). The walk is bounded, so it terminates even on a cycle.
 */
export async function unreachableNodes(stack: TestStack, tenantId: string): Promise<{ id: string; name: string }[]> {
  const result = await sql<{ id: string; name: string }>`
    with recursive up(start, id, parent_id, depth) as (
      select id, id, parent_id, 0 from nodes where tenant_id = ${tenantId}
      union all
      select u.start, n.id, n.parent_id, u.depth + 1 from up u join nodes n on n.id = u.parent_id where u.depth < 200)
    select n.id, n.name from nodes n
    where n.tenant_id = ${tenantId}
      and not exists (select 1 from up u join spaces s on s.root_folder_id = u.id and s.id = n.space_id where u.start = n.id and u.parent_id is null)`.execute(
    stack.services.db,
  );
  return result.rows;
}

/** Live nodes of the tenant with an ancestor in the trash (bounded walk). */
export async function liveUnderTrash(stack: TestStack, tenantId: string): Promise<{ id: string; name: string }[]> {
  const result = await sql<{ id: string; name: string }>`
    with recursive up(start, id, parent_id, deleted, depth) as (
      select id, id, parent_id, false, 0 from nodes where tenant_id = ${tenantId} and deleted_at is null
      union all
      select u.start, n.id, n.parent_id, n.deleted_at is not null, u.depth + 1 from up u join nodes n on n.id = u.parent_id where u.depth < 200)
    select distinct n.id, n.name from up u join nodes n on n.id = u.start where u.deleted`.execute(stack.services.db);
  return result.rows;
}

/**
 * Quota rows of the tenant whose used_bytes differs from the sum of the sizes of the versions charged to
 * them (each version records the subjects it was charged to).
 */
export async function quotaMismatches(stack: TestStack, tenantId: string) {
  const result = await sql<{ level: string; subject_id: string; used_bytes: string; charged_bytes: string }>`
    select q.level, q.subject_id, q.used_bytes::text,
      (select coalesce(sum(v.size), 0) from versions v
        where v.charged @> jsonb_build_array(jsonb_build_object('level', q.level, 'subject_id', q.subject_id)))::text as charged_bytes
    from quotas q where q.tenant_id = ${tenantId}`.execute(stack.services.db);
  return result.rows.filter((r) => r.used_bytes !== r.charged_bytes);
}
