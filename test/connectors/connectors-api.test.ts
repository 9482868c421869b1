// SMB connector API (spec §10, issue #9 items 2–3) without a reachable server: CRUD for tenant admins with the
// password sealed (AES-256-GCM, key id stored) and never returned, validation, cross-tenant 404, the test
// endpoint's fast 502, jobs that fail with 502 semantics, job history (keyset), cancel, retry, the schedule
// (paused with the connector, firing a job) and the job's workflow found by ScaiConnectorId.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';

const V1 = '/api/v1';
const run = promisify(execFile);
const password = 'Sup3r-Secret-Passw0rd!';

/** A loopback port nothing listens on (bound, then released): connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

describe('SMB connectors API', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: TestUser;
  let member: TestUser;
  let otherAdmin: TestUser;
  let port: number;

  before(async () => {
    stack = await startTestStack({ workers: true });
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
    member = await newUser(stack, tenantId, 'member');
    otherAdmin = await newUser(stack, (await createTestTenant(stack)).id, 'other-admin', { admin: true });
    port = await closedPort();
  });
  after(async () => {
    const ids = await stack.services.db.selectFrom('connectors').select('id').where('tenant_id', '=', tenantId).execute();
    for (const { id } of ids) await api(stack.baseUrl, 'DELETE', `${V1}/smb-connectors/${id}`, { token: admin.token });
    await stack.close();
  });

  const create = (body: Record<string, unknown> = {}, token = admin.token) =>
    api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token,
      body: { host: '127.0.0.1', port, share: 'data', username: 'alice', password, target_folder_id: admin.rootFolderId, ...body },
    });

  const job = async (connectorId: string, jobId: string) => (await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${connectorId}/jobs/${jobId}`, { token: admin.token })).body;

  test('CRUD: the password is sealed under the key id, never returned; PATCH rotates it', async () => {
    const created = await create({ path: 'dept/finance', domain: 'CORP' });
    assert.equal(created.status, 201, created.text);
    assert.ok(!created.text.includes(password), 'the password is not in the response');
    assert.equal(created.body.has_password, true);
    assert.equal(created.body.password, undefined);
    assert.deepEqual(created.body.exclude_patterns, ['~$*', 'Thumbs.db', '.DS_Store']);
    assert.equal(created.body.conflict_resolution, 'overwrite');
    assert.equal(created.body.port, port);
    assert.match(created.body.id, /^con_/);
    const row = await stack.services.db.selectFrom('connectors').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(password), 'the password is not stored in clear');
    assert.match(row.secret_key_id, /^[0-9a-f]{16}$/);

    const got = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${created.body.id}`, { token: admin.token });
    assert.equal(got.status, 200);
    assert.equal(got.body.path, 'dept/finance');
    assert.ok(!got.text.includes(password));

    const patched = await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${created.body.id}`, { token: admin.token, body: { password: 'another-one', conflict_resolution: 'keep_both', username: 'bob' } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.username, 'bob');
    assert.equal(patched.body.host, '127.0.0.1', 'other settings are kept');
    assert.ok(!patched.text.includes('another-one'));
    const rotated = await stack.services.db.selectFrom('connectors').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
    assert.notEqual(rotated.secret_ciphertext, row.secret_ciphertext, 'a new ciphertext after rotation');

    const list = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors?limit=1`, { token: admin.token });
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 1);
    assert.ok(!list.text.includes(password));

    const deleted = await api(stack.baseUrl, 'DELETE', `${V1}/smb-connectors/${created.body.id}`, { token: admin.token });
    assert.equal(deleted.status, 204);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${created.body.id}`, { token: admin.token }), 404, 'NOT_FOUND');
  });

  test('bad input is 422, members get 403, other tenants 404', async () => {
    assertError(await create({ conflict_resolution: 'newest_wins' }), 422, 'VALIDATION_ERROR');
    assertError(await create({ password: undefined }), 422, 'VALIDATION_ERROR');
    assertError(await create({ port: 70000 }), 422, 'VALIDATION_ERROR');
    assertError(await create({ host: 'smb://evil/x' }), 422, 'VALIDATION_ERROR');
    assertError(await create({ schedule: { cron: 'every day' } }), 422, 'VALIDATION_ERROR');
    assertError(await create({ schedule: { interval_seconds: 1 } }), 422, 'VALIDATION_ERROR');
    // Well-formed but impossible: Temporal refuses it, and so do we (422, nothing created).
    const impossible = await create({ name: 'impossible cron', schedule: { cron: '99 99 * * *' } });
    assertError(impossible, 422, 'VALIDATION_ERROR');
    assert.deepEqual(impossible.body.detail[0].loc, ['body', 'schedule', 'cron']);
    assert.equal((await stack.services.db.selectFrom('connectors').select('id').where('name', '=', 'impossible cron').execute()).length, 0);
    assertError(await create({ exclude_patterns: 'not-a-list' }), 422, 'VALIDATION_ERROR');
    assertError(await create({ target_folder_id: 'fld_01ARZ3NDEKTSV4RRFFQ69G5FAV' }), 404, 'NOT_FOUND');
    assertError(await create({}, member.token), 403, 'FORBIDDEN');

    const mine = await create();
    assert.equal(mine.status, 201);
    for (const [method, path] of [
      ['GET', ''],
      ['PATCH', ''],
      ['DELETE', ''],
      ['POST', '/test'],
      ['POST', '/sync'],
      ['GET', '/jobs'],
    ] as const) {
      const res = await api(stack.baseUrl, method, `${V1}/smb-connectors/${mine.body.id}${path}`, { token: otherAdmin.token, body: method === 'PATCH' ? { name: 'x' } : undefined });
      assertError(res, 404, 'NOT_FOUND', `${method} ${path}`);
    }
    // An admin of another tenant cannot aim a connector at this tenant's folder either.
    assertError(await create({}, otherAdmin.token), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${mine.body.id}/jobs?cursor=%%%`, { token: admin.token }), 400, 'INVALID_CURSOR');
  });

  test('test endpoint: an unreachable server is 502 within seconds', async () => {
    const created = await create();
    const started = Date.now();
    const res = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${created.body.id}/test`, { token: admin.token });
    assertError(res, 502, 'CONNECTOR_UNREACHABLE');
    assert.ok(Date.now() - started < 10_000, 'answered fast');
    assert.ok(!res.text.includes(password));
  });

  test('sync of an unreachable server: 202, then failed with 502 semantics; history, cancel, retry, visibility', async () => {
    const created = await create();
    const id = created.body.id;
    const sync = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(sync.status, 202, sync.text);
    const first = sync.body.job;
    assert.match(first.id, /^job_/);
    assert.equal(first.trigger, 'manual');
    assert.equal(first.workflow_id, `connector-sync/${id}/${first.id}`);
    assert.ok(first.temporal_ui_url.includes(encodeURIComponent(first.workflow_id)));

    const failed = await until('the job to fail', async () => {
      const j = await job(id, first.id);
      return j.status === 'failed' ? j : undefined;
    });
    assert.equal(failed.error.code, 'CONNECTOR_UNREACHABLE');
    assert.equal(failed.error.status, 502);
    assert.ok(failed.started_at && failed.finished_at);
    assert.match(failed.stderr, /CONNECTOR_UNREACHABLE/);
    assert.ok(!failed.stderr.includes(password));

    // The job's workflow carries ScaiConnectorId and ScaiJobId (what `temporal workflow list --query` filters on).
    await until('the workflow in visibility', async () => {
      for await (const wf of stack.services.temporal.workflow.list({ query: `ScaiConnectorId="${id}" AND ScaiJobId="${first.id}"` })) if (wf.workflowId === first.workflow_id) return wf;
      return undefined;
    });
    // And the admin's own command finds it: the Temporal CLI with the README's query.
    const cli = await run(path.join(harness.toolsDir, 'temporal'), ['workflow', 'list', '--address', stack.config.temporal.address, '--query', `ScaiConnectorId="${id}"`, '--output', 'json']);
    const listed = JSON.parse(cli.stdout.trim() || '[]') as { execution?: { workflowId?: string } }[];
    assert.ok(listed.some((wf) => wf.execution?.workflowId === first.workflow_id), cli.stdout.slice(0, 500));

    assertError(await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/jobs/${first.id}/cancel`, { token: admin.token }), 409, 'CONNECTOR_JOB_FINISHED');
    const retry = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/jobs/${first.id}/retry`, { token: admin.token });
    assert.equal(retry.status, 202, retry.text);
    assert.equal(retry.body.job.trigger, 'retry');
    assert.equal(retry.body.job.retry_of, first.id);
    assert.notEqual(retry.body.job.id, first.id);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token }), 409, 'CONNECTOR_SYNC_RUNNING');

    const canceled = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/jobs/${retry.body.job.id}/cancel`, { token: admin.token });
    assert.equal(canceled.status, 200, canceled.text);
    assert.equal(canceled.body.job.status, 'canceled');
    // Canceled stays canceled: the workflow's end cannot overwrite it.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await job(id, retry.body.job.id)).status, 'canceled');

    const third = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(third.status, 202, 'a canceled job frees the connector');
    await until('the third job to end', async () => ((await job(id, third.body.job.id)).status === 'failed' ? true : undefined));

    // History: newest first, keyset pages of one.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${id}/jobs?limit=1${cursor ? `&cursor=${cursor}` : ''}`, { token: admin.token });
      assert.equal(page.status, 200, page.text);
      seen.push(...page.body.items.map((j: any) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [third.body.job.id, retry.body.job.id, first.id]);
  });

  test('a target folder deleted after set-up fails the job once (410 semantics), not every file', async () => {
    const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: admin.token, body: { parent_id: admin.rootFolderId, name: 'soon gone' } });
    assert.equal(folder.status, 201, folder.text);
    const created = await create({ target_folder_id: folder.body.id });
    assert.equal(created.status, 201, created.text);
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/folders/${folder.body.id}`, { token: admin.token })).status, 204);
    const sync = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${created.body.id}/sync`, { token: admin.token });
    assert.equal(sync.status, 202);
    const failed = await until('the job to fail', async () => {
      const j = await job(created.body.id, sync.body.job.id);
      return j.status === 'failed' ? j : undefined;
    });
    assert.deepEqual({ code: failed.error.code, status: failed.error.status }, { code: 'CONNECTOR_TARGET_GONE', status: 410 });
    assert.equal(failed.error_count, 0);
  });

  test('a job whose workflow was terminated in Temporal does not block the connector: the next sync fails it and starts', async () => {
    const created = await create();
    const id = created.body.id;
    const first = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(first.status, 202, first.text);
    // While it is active, a second sync is 409 naming it.
    const busy = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assertError(busy, 409, 'CONNECTOR_SYNC_RUNNING');
    assert.equal(busy.body.details.job_id, first.body.job.id);
    await stack.services.temporal.workflow.getHandle(first.body.job.workflow_id).terminate('operator stopped it');

    const second = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(second.status, 202, second.text);
    assert.notEqual(second.body.job.id, first.body.job.id);
    const orphan = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${id}/jobs/${first.body.job.id}`, { token: admin.token });
    assert.equal(orphan.body.status, 'failed');
    assert.equal(orphan.body.error.code, 'CONNECTOR_WORKFLOW_CLOSED');
    assert.match(orphan.body.error.detail, /terminated/);
  });

  test('schedule: a Temporal Schedule per connector, paused with the connector, firing jobs', async () => {
    const created = await create({ schedule: { interval_seconds: 10 } });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id;
    const handle = stack.services.temporal.schedule.getHandle(`connector-schedule/${id}`);
    assert.equal((await handle.describe()).state.paused, false);

    const fired = await until(
      'a scheduled job',
      async () => (await stack.services.db.selectFrom('connector_jobs').selectAll().where('connector_id', '=', id).where('trigger', '=', 'schedule').executeTakeFirst()) ?? undefined,
      40_000,
    );
    assert.equal(fired.workflow_id, `connector-sync/${id}/${fired.id}`);

    const paused = await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${id}`, { token: admin.token, body: { enabled: false } });
    assert.equal(paused.status, 200, paused.text);
    assert.equal((await handle.describe()).state.paused, true);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token }), 409, 'CONNECTOR_DISABLED');
    await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${id}`, { token: admin.token, body: { enabled: true } });
    assert.equal((await handle.describe()).state.paused, false);

    await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${id}`, { token: admin.token, body: { schedule: null } });
    await assert.rejects(handle.describe(), 'the schedule is removed with schedule: null');
  });
});
