// The trash-cleanup workflow (spec §5, §6, §12) end to end through the API, the Temporal dev server and a
// worker: expired trash is purged (quota refunded, change logged), upload sessions expire, and the chunk
// mark-and-sweep removes only chunks nothing references, after the grace period; plus the hourly Schedule.
//
// Time is simulated in the database (nodes.deleted_at, upload_sessions.expires_at, chunks.last_seen_at), the
// way the brief's "31 days ago" is. The sweep is global (every tenant in the database), and other test files
// run against the same database at the same time, so these tests never run it with a grace of 0 (which
// could sweep a chunk another test stored a moment ago and has not referenced yet): they age their own
// tenant's chunks by `agedSeconds` and run with a grace of `graceSeconds` < `agedSeconds`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { trashCleanupWorkflow, type TrashCleanupInput } from '../../src/workflows/trash-cleanup.workflow';
import { ensureSchedules, trashCleanupScheduleId } from '../../src/temporal/schedules';
import { chunkKey } from '../../src/services/chunk-store';
import type { S3Storage } from '../../src/storage/s3-storage';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, putChunk, randomData, sha256, uploadDirect, uploadResumable, type TestUser } from '../helpers/files';
import { countObjects, s3TestEnv } from '../helpers/s3';

const chunkSize = 65536;
const graceSeconds = 600;
const agedSeconds = 1200;

function runCleanup(stack: TestStack, input: TrashCleanupInput = { chunkGraceSeconds: graceSeconds }) {
  return stack.services.temporal.workflow.execute(trashCleanupWorkflow, {
    taskQueue: stack.services.taskQueues.maintenance,
    workflowId: `test-cleanup-${randomUUID()}`,
    args: [input],
  });
}

/** Makes every chunk of the tenant look untouched for `seconds` (simulated time for the sweep's grace period). */
async function ageChunks(stack: TestStack, tenantId: string, seconds = agedSeconds) {
  await stack.services.db
    .updateTable('chunks')
    .set({ last_seen_at: sql`now() - make_interval(secs => ${seconds})` })
    .where('tenant_id', '=', tenantId)
    .execute();
}

async function versionChunkHashes(stack: TestStack, versionId: string): Promise<string[]> {
  const rows = await stack.services.db.selectFrom('version_chunks').select('sha256').where('version_id', '=', versionId).orderBy('index').execute();
  return rows.map((r) => r.sha256);
}

async function chunkRows(stack: TestStack, tenantId: string, hashes: string[]): Promise<string[]> {
  if (hashes.length === 0) return [];
  const rows = await stack.services.db.selectFrom('chunks').select('sha256').where('tenant_id', '=', tenantId).where('sha256', 'in', hashes).execute();
  return rows.map((r) => r.sha256).sort();
}

async function storedObjects(stack: TestStack, tenantId: string, hashes: string[]): Promise<(number | null)[]> {
  return Promise.all(hashes.map(async (h) => (await stack.services.storage.head(chunkKey(tenantId, h)))?.size ?? null));
}

async function upload(stack: TestStack, user: TestUser, name: string, data: Buffer, parentId = user.rootFolderId) {
  const { finalize } = await uploadResumable(stack, user.token, parentId, name, data, { chunkSize });
  assert.equal(finalize.status, 200, finalize.text);
  return { fileId: finalize.body.file.id as string, versionId: finalize.body.version.id as string };
}

async function trashAndPurge(stack: TestStack, user: TestUser, fileId: string) {
  assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${fileId}`, { token: user.token })).status, 204);
  const purged = await api(stack.baseUrl, 'DELETE', `/api/v1/trash/${fileId}`, { token: user.token });
  assert.equal(purged.status, 204, purged.text);
}

async function assertDownloads(stack: TestStack, user: TestUser, fileId: string, data: Buffer) {
  const got = await download(stack, `/api/v1/files/${fileId}/content`, { token: user.token });
  assert.equal(got.status, 200);
  assert.equal(got.body.length, data.length);
  assert.ok(got.body.equals(data), 'downloaded bytes differ');
  assert.equal(got.headers.get('x-checksum-sha256'), sha256(data));
}

/**
 * Scenario shared by the filesystem and S3 stacks: X and Y hold the same bytes (so the same chunks), Z unique
 * bytes. X and Z are purged; the sweep removes Z's chunks (objects and registry rows) and keeps Y's.
 */
async function sweepKeepsReferencedChunks(stack: TestStack, countChunkObjects?: (tenantId: string) => Promise<number>) {
  const tenantId = (await createTestTenant(stack)).id;
  const count = countChunkObjects && (() => countChunkObjects(tenantId));
  const user = await newUser(stack, tenantId, 'sweeper');
  const shared = randomData(200_000);
  const unique = randomData(150_000);
  const x = await upload(stack, user, 'x.bin', shared);
  const y = await upload(stack, user, 'y.bin', shared);
  const z = await upload(stack, user, 'z.bin', unique);
  const xChunks = await versionChunkHashes(stack, x.versionId);
  const yChunks = await versionChunkHashes(stack, y.versionId);
  const zChunks = await versionChunkHashes(stack, z.versionId);
  assert.equal(xChunks.length, 4);
  assert.deepEqual(yChunks, xChunks, 'identical content shares its chunks');
  assert.equal(zChunks.length, 3);
  assert.ok(zChunks.every((h) => !xChunks.includes(h)));
  assert.deepEqual(await chunkRows(stack, tenantId, [...xChunks, ...zChunks]), [...xChunks, ...zChunks].sort());
  if (count) assert.equal(await count(), 7);

  await trashAndPurge(stack, user, x.fileId);
  await trashAndPurge(stack, user, z.fileId);
  // Purging leaves the bytes to the sweep.
  assert.ok((await storedObjects(stack, tenantId, zChunks)).every((s) => s !== null));
  await ageChunks(stack, tenantId);

  const result = await runCleanup(stack);
  assert.ok(result.chunksSwept >= zChunks.length, JSON.stringify(result));

  await assertDownloads(stack, user, y.fileId, shared);
  assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${x.fileId}`, { token: user.token })).status, 404);
  assert.deepEqual(await storedObjects(stack, tenantId, zChunks), [null, null, null], "Z's chunk objects are gone");
  assert.deepEqual(await chunkRows(stack, tenantId, zChunks), [], "Z's registry rows are gone");
  assert.deepEqual(await storedObjects(stack, tenantId, yChunks), [65536, 65536, 65536, 200_000 - 3 * 65536], "Y's chunk objects stay");
  assert.deepEqual(await chunkRows(stack, tenantId, yChunks), [...yChunks].sort(), "Y's registry rows stay");
  if (count) assert.equal(await count(), 4);

  // A second run changes nothing for this tenant: Y is still intact.
  await runCleanup(stack);
  await assertDownloads(stack, user, y.fileId, shared);
  if (count) assert.equal(await count(), 4);
}

describe('trash-cleanup workflow (filesystem storage)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ workers: true });
  });
  after(() => stack.close());

  test('trash older than trash_retention_days is purged (quota refunded, change logged); recent trash is kept', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const alice = await newUser(stack, tenantId, 'alice');
    const usage = async () => {
      const response = await api(stack.baseUrl, 'GET', `/api/v1/quotas/usage/users/${alice.userId}`, { token: alice.token });
      assert.equal(response.status, 200, response.text);
      return response.body.used_bytes as number;
    };
    const oldData = randomData(50_000);
    const freshData = randomData(30_000);
    const recentData = randomData(20_000);
    const innerData = randomData(40_000);
    const old = await uploadDirect(stack, alice.token, alice.rootFolderId, 'old.bin', oldData);
    const fresh = await uploadDirect(stack, alice.token, alice.rootFolderId, 'fresh.bin', freshData);
    const recent = await uploadDirect(stack, alice.token, alice.rootFolderId, 'recent.bin', recentData);
    const folder = await api(stack.baseUrl, 'POST', '/api/v1/folders', { token: alice.token, body: { parent_id: alice.rootFolderId, name: 'old folder' } });
    assert.equal(folder.status, 201, folder.text);
    const inner = await uploadDirect(stack, alice.token, folder.body.id, 'inner.bin', innerData);
    for (const r of [old, fresh, recent, inner]) assert.equal(r.status, 201, JSON.stringify(r.body));
    const used = await usage();
    assert.equal(used, 140_000);

    for (const path of [`/api/v1/files/${old.body.file.id}`, `/api/v1/files/${fresh.body.file.id}`, `/api/v1/files/${recent.body.file.id}`, `/api/v1/folders/${folder.body.id}`]) {
      assert.equal((await api(stack.baseUrl, 'DELETE', path, { token: alice.token })).status, 204, path);
    }
    // Trash keeps counting against the quota until it is purged.
    assert.equal(await usage(), used);
    // A JS Date (millisecond precision) like the one trashNode writes: restore matches the subtree on deleted_at.
    const setDeletedDaysAgo = (ids: string[], days: number) =>
      stack.services.db
        .updateTable('nodes')
        .set({ deleted_at: new Date(Date.now() - days * 86_400_000) })
        .where('id', 'in', ids)
        .execute();
    await setDeletedDaysAgo([old.body.file.id], 31);
    await setDeletedDaysAgo([folder.body.id, inner.body.file.id], 31); // the folder and what was deleted with it
    await setDeletedDaysAgo([recent.body.file.id], 29); // within the 30-day retention

    const result = await runCleanup(stack);
    assert.ok(result.trashPurged >= 2, JSON.stringify(result));

    for (const path of [`/api/v1/files/${old.body.file.id}`, `/api/v1/folders/${folder.body.id}`, `/api/v1/files/${inner.body.file.id}`]) {
      const gone = await api(stack.baseUrl, 'GET', path, { token: alice.token });
      assert.equal(gone.status, 404, `${path}: ${gone.status}`);
    }
    assert.equal(await usage(), used - 50_000 - 40_000, 'the purged versions are refunded');
    const versions = await stack.services.db.selectFrom('versions').select('id').where('file_id', 'in', [old.body.file.id, inner.body.file.id]).execute();
    assert.deepEqual(versions, []);
    const purgedEntries = await stack.services.db
      .selectFrom('change_log')
      .select(['node_id', 'actor_id'])
      .where('tenant_id', '=', tenantId)
      .where('type', '=', 'purged')
      .orderBy('seq')
      .execute();
    assert.deepEqual(purgedEntries.map((e) => e.node_id).sort(), [old.body.file.id, folder.body.id].sort());
    assert.ok(purgedEntries.every((e) => e.actor_id === null), 'the system purged them');

    // Trashed just now and 29 days ago: kept, still 410, listed in the trash and restorable.
    const trash = await api(stack.baseUrl, 'GET', '/api/v1/trash', { token: alice.token });
    assert.deepEqual(trash.body.items.map((n: { id: string }) => n.id).sort(), [fresh.body.file.id, recent.body.file.id].sort());
    for (const [id, data] of [
      [fresh.body.file.id, freshData],
      [recent.body.file.id, recentData],
    ] as const) {
      assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${id}`, { token: alice.token })).status, 410);
      const restored = await api(stack.baseUrl, 'POST', `/api/v1/trash/${id}/restore`, { token: alice.token });
      assert.equal(restored.status, 200, restored.text);
      await assertDownloads(stack, alice, id, data);
    }
    assert.equal(await usage(), 50_000);
  });

  test("each tenant's own trash_retention_days applies", async () => {
    const shortTenant = (await createTestTenant(stack, { trash_retention_days: 7 })).id;
    const longTenant = (await createTestTenant(stack)).id;
    const short = await newUser(stack, shortTenant, 'short');
    const long = await newUser(stack, longTenant, 'long');
    const a = await uploadDirect(stack, short.token, short.rootFolderId, 'a.bin', randomData(1000));
    const b = await uploadDirect(stack, long.token, long.rootFolderId, 'b.bin', randomData(1000));
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${a.body.file.id}`, { token: short.token })).status, 204);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${b.body.file.id}`, { token: long.token })).status, 204);
    await stack.services.db
      .updateTable('nodes')
      .set({ deleted_at: new Date(Date.now() - 8 * 86_400_000) })
      .where('id', 'in', [a.body.file.id, b.body.file.id])
      .execute();

    const result = await runCleanup(stack);
    assert.ok(result.trashPurged >= 1, JSON.stringify(result));
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${a.body.file.id}`, { token: short.token })).status, 404);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${b.body.file.id}`, { token: long.token })).status, 410);
  });

  test('the sweep removes the chunks of purged files and never a chunk another version references', async () => {
    await sweepKeepsReferencedChunks(stack);
  });

  test('chunks of an open upload session are never swept; the session can be finalized afterwards', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const alice = await newUser(stack, tenantId, 'alice');
    const data = randomData(100_000);
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'pending.bin', size: data.length, chunk_size: chunkSize, checksum_sha256: sha256(data) });
    assert.equal(session.status, 201, session.text);
    assert.equal(session.body.chunk_count, 2);
    const first = data.subarray(0, chunkSize);
    const put = await putChunk(stack, alice.token, session.body.id, 0, first);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.sha256, sha256(first));
    await ageChunks(stack, tenantId);

    const result = await runCleanup(stack);
    assert.equal(typeof result.chunksSwept, 'number');
    assert.deepEqual(await storedObjects(stack, tenantId, [sha256(first)]), [chunkSize]);
    assert.deepEqual(await chunkRows(stack, tenantId, [sha256(first)]), [sha256(first)]);
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.body.id}`, { token: alice.token });
    assert.equal(status.status, 200);
    assert.equal(status.body.status, 'open');
    assert.deepEqual(status.body.received_chunks, [0]);

    const second = await putChunk(stack, alice.token, session.body.id, 1, data.subarray(chunkSize));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.body.id}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 200, finalize.text);
    await assertDownloads(stack, alice, finalize.body.file.id, data);
  });

  test('an expired session becomes expired (410 on chunks and finalize) and its unique chunks are swept; shared ones stay', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const alice = await newUser(stack, tenantId, 'alice');
    const sharedChunk = randomData(chunkSize);
    const uniqueChunk = randomData(chunkSize);
    const kept = await upload(stack, alice, 'kept.bin', sharedChunk);
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'abandoned.bin', size: 3 * chunkSize, chunk_size: chunkSize });
    assert.equal(session.status, 201, session.text);
    assert.equal((await putChunk(stack, alice.token, session.body.id, 0, sharedChunk)).status, 200);
    assert.equal((await putChunk(stack, alice.token, session.body.id, 1, uniqueChunk)).status, 200);
    // An aborted session's chunk is unreferenced too.
    const aborted = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'aborted.bin', size: chunkSize, chunk_size: chunkSize });
    const abortedChunk = randomData(chunkSize);
    assert.equal((await putChunk(stack, alice.token, aborted.body.id, 0, abortedChunk)).status, 200);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${aborted.body.id}`, { token: alice.token })).status, 204);

    await stack.services.db.updateTable('upload_sessions').set({ expires_at: sql`now() - interval '1 minute'` }).where('id', '=', session.body.id).execute();
    await ageChunks(stack, tenantId);

    const result = await runCleanup(stack);
    assert.ok(result.sessionsExpired >= 1, JSON.stringify(result));
    assert.ok(result.chunksSwept >= 2, JSON.stringify(result));

    const row = await stack.services.db.selectFrom('upload_sessions').select('status').where('id', '=', session.body.id).executeTakeFirstOrThrow();
    assert.equal(row.status, 'expired');
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.body.id}`, { token: alice.token });
    assert.equal(status.status, 200);
    assert.equal(status.body.status, 'expired');
    const late = await putChunk(stack, alice.token, session.body.id, 2, randomData(chunkSize));
    assert.equal(late.status, 410);
    assert.equal(late.body.code, 'UPLOAD_EXPIRED');
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.body.id}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 410);
    assert.equal(finalize.body.code, 'UPLOAD_EXPIRED');

    assert.deepEqual(await storedObjects(stack, tenantId, [sha256(uniqueChunk), sha256(abortedChunk)]), [null, null]);
    assert.deepEqual(await chunkRows(stack, tenantId, [sha256(uniqueChunk), sha256(abortedChunk)]), []);
    // The chunk the session shared with a live version stays.
    assert.deepEqual(await storedObjects(stack, tenantId, [sha256(sharedChunk)]), [chunkSize]);
    await assertDownloads(stack, alice, kept.fileId, sharedChunk);
  });

  test('with the default grace (1 hour) a freshly unreferenced chunk is not swept; one untouched for longer is', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const alice = await newUser(stack, tenantId, 'alice');
    const data = randomData(70_000);
    const file = await upload(stack, alice, 'w.bin', data);
    const hashes = await versionChunkHashes(stack, file.versionId);
    assert.equal(hashes.length, 2);
    await trashAndPurge(stack, alice, file.fileId);

    await runCleanup(stack, {});
    assert.deepEqual(await storedObjects(stack, tenantId, hashes), [chunkSize, 70_000 - chunkSize], 'fresh: kept');
    await ageChunks(stack, tenantId, 20 * 60);
    await runCleanup(stack, {});
    assert.deepEqual(await storedObjects(stack, tenantId, hashes), [chunkSize, 70_000 - chunkSize], '20 minutes < 1 hour: kept');
    assert.deepEqual(await chunkRows(stack, tenantId, hashes), [...hashes].sort());
    await ageChunks(stack, tenantId, 2 * 3600);
    await runCleanup(stack, {});
    assert.deepEqual(await storedObjects(stack, tenantId, hashes), [null, null], '2 hours > 1 hour: swept');
    assert.deepEqual(await chunkRows(stack, tenantId, hashes), []);
  });

  test('a chunk re-uploaded after its sweep is stored anew and downloads intact', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const alice = await newUser(stack, tenantId, 'alice');
    const data = randomData(100_000);
    const first = await upload(stack, alice, 'again.bin', data);
    const hashes = await versionChunkHashes(stack, first.versionId);
    await trashAndPurge(stack, alice, first.fileId);
    await ageChunks(stack, tenantId);
    await runCleanup(stack);
    assert.deepEqual(await storedObjects(stack, tenantId, hashes), [null, null]);

    const second = await upload(stack, alice, 'again.bin', data);
    assert.deepEqual(await versionChunkHashes(stack, second.versionId), hashes);
    assert.deepEqual(await storedObjects(stack, tenantId, hashes), [chunkSize, 100_000 - chunkSize]);
    await assertDownloads(stack, alice, second.fileId, data);
  });

  test("change-log entries older than the tenant's changelog_retention_days are pruned, newer ones kept", async () => {
    const tenantId = (await createTestTenant(stack, { changelog_retention_days: 10 })).id;
    const alice = await newUser(stack, tenantId, 'alice');
    for (const name of ['c1.bin', 'c2.bin', 'c3.bin']) {
      assert.equal((await uploadDirect(stack, alice.token, alice.rootFolderId, name, randomData(100))).status, 201);
    }
    const entries = await stack.services.db.selectFrom('change_log').select('seq').where('tenant_id', '=', tenantId).orderBy('seq').execute();
    assert.ok(entries.length >= 3);
    const [oldest, older, ...rest] = entries.map((e) => e.seq) as [number, number, ...number[]];
    await stack.services.db.updateTable('change_log').set({ at: sql`now() - make_interval(days => 11)` }).where('seq', '=', oldest).execute();
    await stack.services.db.updateTable('change_log').set({ at: sql`now() - make_interval(days => 9)` }).where('seq', '=', older).execute();

    // Scoped to this tenant: other test files share the database and run cleanups of their own meanwhile.
    const result = await runCleanup(stack, { chunkGraceSeconds: graceSeconds, tenantId });
    assert.equal(result.changesPruned, 1, JSON.stringify(result));
    const left = await stack.services.db.selectFrom('change_log').select('seq').where('tenant_id', '=', tenantId).orderBy('seq').execute();
    assert.deepEqual(
      left.map((e) => e.seq),
      [older, ...rest],
    );
  });

  test('ensureSchedules creates the hourly trash-cleanup schedule on the maintenance queue, idempotently', async () => {
    const scheduleId = trashCleanupScheduleId(stack.config);
    assert.equal(scheduleId, `trash-cleanup/${stack.config.temporal.taskQueuePrefix}`);
    const handle = stack.services.temporal.schedule.getHandle(scheduleId);
    try {
      await ensureSchedules(stack.services.temporal, stack.config);
      await ensureSchedules(stack.services.temporal, stack.config);
      const description = await handle.describe();
      assert.deepEqual(
        description.spec.intervals?.map((i) => i.every),
        [60 * 60 * 1000],
      );
      assert.equal(description.action.type, 'startWorkflow');
      if (description.action.type !== 'startWorkflow') return;
      assert.equal(description.action.workflowType, 'trashCleanupWorkflow');
      assert.equal(description.action.taskQueue, stack.services.taskQueues.maintenance);
      assert.equal(description.action.workflowId, scheduleId);
      assert.deepEqual(description.action.args, [{}]);
      assert.equal(description.policies.overlap, 'SKIP');
      assert.equal(description.state.paused, false);
    } finally {
      await handle.delete().catch(() => undefined);
    }
    await assert.rejects(handle.describe());
  });
});

describe('trash-cleanup workflow (S3 storage)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ workers: true, env: s3TestEnv() });
  });
  after(() => stack.close());

  test('the sweep removes the purged chunk objects from the bucket and keeps the referenced ones', async () => {
    assert.equal(stack.services.storage.driver, 's3');
    const storage = stack.services.storage as S3Storage;
    await sweepKeepsReferencedChunks(stack, (tenantId) => countObjects(storage, `${tenantId}/chunks/`));
  });
});
