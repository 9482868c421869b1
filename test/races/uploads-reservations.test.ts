// Quota reservations of open upload sessions (issue #7, finding 13; spec §6): parallel session creations
// never reserve past a limit, abort/finalize/expiry release a reservation exactly once, and the number
// of sessions in progress per user is capped (429 + Retry-After).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, newUser, putChunk, randomData, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { createMaintenanceActivities } from '../../src/activities/maintenance.activities';

const KiB = 1024;
const MiB = 1024 * KiB;
const maxOpenSessions = 10;

describe('uploads: quota reservations', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: TestUser;
  before(async () => {
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '60', SCAIDRIVE_UPLOAD_MAX_OPEN_SESSIONS_PER_USER: String(maxOpenSessions) } });
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(() => stack.close());

  const setUserLimit = async (userId: string, limit: number | null) =>
    assert.equal((await api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/user/${userId}`, { token: admin.token, body: { limit_bytes: limit } })).status, 200);
  const quotaRow = (level: string, id: string) => stack.services.db.selectFrom('quotas').selectAll().where('level', '=', level as 'user').where('subject_id', '=', id).executeTakeFirstOrThrow();

  /** Every quota row of the tenant: reserved = what its sessions hold, used = what its versions were charged. */
  async function assertCountersConsistent() {
    const rows = await sql<{ level: string; subject_id: string; reserved_bytes: number; held: number; used_bytes: number; charged: number }>`
      select q.level, q.subject_id, q.reserved_bytes, q.used_bytes,
        (select coalesce(sum(s.reserved_bytes), 0) from upload_sessions s
          where s.reserved_subjects @> jsonb_build_array(jsonb_build_object('level', q.level, 'subject_id', q.subject_id)))::bigint as held,
        (select coalesce(sum(v.size), 0) from versions v
          where v.charged @> jsonb_build_array(jsonb_build_object('level', q.level, 'subject_id', q.subject_id)))::bigint as charged
      from quotas q where q.tenant_id = ${tenantId}`.execute(stack.services.db);
    for (const row of rows.rows) {
      assert.equal(Number(row.reserved_bytes), Number(row.held), `${row.level} ${row.subject_id}: reserved_bytes vs open sessions`);
      assert.equal(Number(row.used_bytes), Number(row.charged), `${row.level} ${row.subject_id}: used_bytes vs versions`);
    }
  }

  test('50 parallel 1 MiB session creations against a 3 MiB quota: exactly 3 open; abort releases', async () => {
    const user = await newUser(stack, tenantId, 'racer');
    await setUserLimit(user.userId, 3 * MiB);
    const responses = await burst(stack.baseUrl, 50, (i, dispatcher) =>
      api(stack.baseUrl, 'POST', '/api/v1/uploads', { token: user.token, dispatcher, body: { parent_id: user.rootFolderId, name: `r-${i}.bin`, size: MiB } }),
    );
    assert.deepEqual(statusCounts(responses), { 201: 3, 507: 47 });
    for (const refused of responses.filter((r) => r.status === 507)) {
      assertError(refused, 507, 'QUOTA_EXCEEDED');
      assert.equal(refused.body.details.level, 'user');
    }
    const row = await quotaRow('user', user.userId);
    assert.equal(row.reserved_bytes, 3 * MiB);
    assert.equal(row.used_bytes, 0);
    await assertCountersConsistent();

    // Abort gives the reservation back: one more session fits, then no more.
    const opened = responses.filter((r) => r.status === 201);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${opened[0]!.body.id}`, { token: user.token })).status, 204);
    assert.equal((await quotaRow('user', user.userId)).reserved_bytes, 2 * MiB);
    assert.equal((await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'again.bin', size: MiB })).status, 201);
    assertError(await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'over.bin', size: MiB }), 507, 'QUOTA_EXCEEDED');
    await assertCountersConsistent();
  });

  test('a direct upload without a reservation cannot take bytes reserved by open sessions', async () => {
    const user = await newUser(stack, tenantId, 'direct');
    await setUserLimit(user.userId, 2 * 10_000);
    assert.equal((await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'held.bin', size: 10_000 })).status, 201);
    assert.equal((await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'held2.bin', size: 10_000 })).status, 201);
    const direct = await fetch(`${stack.baseUrl}/api/v1/folders/${user.rootFolderId}/files/d.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${user.token}` },
      // A streamed body (no Content-Length): nothing is reserved up front; the commit must still respect reservations.
      body: new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array(100)), c.close()) }),
      duplex: 'half',
    } as RequestInit);
    const body = await direct.json();
    assertError({ status: direct.status, body }, 507, 'QUOTA_EXCEEDED');
    await assertCountersConsistent();
  });

  for (const expired of [false, true]) {
    test(`abort × 15, finalize × 15 and the expiry sweep in parallel release once (${expired ? 'expired' : 'live'} session)`, async () => {
      const user = await newUser(stack, tenantId, `once-${expired}`);
      await setUserLimit(user.userId, 10 * MiB);
      const data = randomData(64 * KiB);
      const session = (await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'once.bin', size: data.length, chunk_size: 64 * KiB })).body;
      assert.equal((await putChunk(stack, user.token, session.id, 0, data)).status, 200);
      assert.equal((await quotaRow('user', user.userId)).reserved_bytes, data.length);
      if (expired) await stack.services.db.updateTable('upload_sessions').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', session.id).execute();

      const maintenance = createMaintenanceActivities({ db: stack.services.db, storage: stack.services.storage, logger: stack.services.logger });
      const [responses] = await Promise.all([
        burst(stack.baseUrl, 30, (i, dispatcher) =>
          i % 2 === 0
            ? api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${session.id}`, { token: user.token, dispatcher })
            : api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/finalize`, { token: user.token, dispatcher }),
        ),
        maintenance.expireUploadSessions(),
        maintenance.expireUploadSessions(),
      ]);
      for (const response of responses) assert.ok([200, 202, 204, 404, 409, 410].includes(response.status), `${response.status} ${response.text}`);
      // Let a finalize that answered 202 finish before reading the counters.
      const handle = stack.services.temporal.workflow.getHandle(`upload-finalize/${session.id}`);
      await handle.result().catch(() => undefined);

      const row = await quotaRow('user', user.userId);
      const versions = await stack.services.db.selectFrom('versions').select('size').where('upload_id', '=', session.id).execute();
      assert.ok(versions.length <= 1);
      assert.equal(row.reserved_bytes, 0, 'the reservation is released exactly once');
      assert.equal(row.used_bytes, versions.length * data.length, 'charged only when committed');
      if (expired) assert.equal(versions.length, 0);
      await assertCountersConsistent();
    });
  }

  test(`at most ${maxOpenSessions} sessions in progress per user: the rest get 429 with Retry-After`, async () => {
    const user = await newUser(stack, tenantId, 'many');
    const responses = await burst(stack.baseUrl, 30, (i, dispatcher) =>
      api(stack.baseUrl, 'POST', '/api/v1/uploads', { token: user.token, dispatcher, body: { parent_id: user.rootFolderId, name: `m-${i}.bin`, size: 1 } }),
    );
    assert.deepEqual(statusCounts(responses), { 201: maxOpenSessions, 429: 30 - maxOpenSessions });
    for (const refused of responses.filter((r) => r.status === 429)) {
      assertError(refused, 429, 'TOO_MANY_UPLOAD_SESSIONS');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
    }
    const open = await stack.services.db.selectFrom('upload_sessions').select('id').where('user_id', '=', user.userId).where('status', '=', 'open').execute();
    assert.equal(open.length, maxOpenSessions);
    // Expired sessions do not count (and give their reservation back when the next one is created).
    await stack.services.db.updateTable('upload_sessions').set({ expires_at: new Date(Date.now() - 1000) }).where('user_id', '=', user.userId).execute();
    assert.equal((await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'after-expiry.bin', size: 1 })).status, 201);
    await assertCountersConsistent();
  });
});
