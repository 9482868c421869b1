// Races on connector jobs (issue #9 item 3): of parallel "sync" requests exactly one starts a job (the others
// 409 CONNECTOR_SYNC_RUNNING) and exactly one job row exists; of parallel cancels of one job exactly one wins.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { burst, statusCounts } from '../helpers/race';

const V1 = '/api/v1';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('connector job races', () => {
  let stack: TestStack;
  let admin: TestUser;
  let port: number;
  let tenantId: string;

  before(async () => {
    // No workers: jobs stay queued, so every request of a burst meets an active job.
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
    port = await closedPort();
  });
  after(async () => {
    // Only this file's jobs: other test files share the database and run their own connector jobs meanwhile.
    const jobs = await stack.services.db.selectFrom('connector_jobs').select('workflow_id').where('tenant_id', '=', tenantId).execute();
    for (const { workflow_id } of jobs) await stack.services.temporal.workflow.getHandle(workflow_id).terminate('test cleanup').catch(() => undefined);
    await stack.close();
  });

  const newConnector = async () => {
    const res = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token: admin.token,
      body: { host: '127.0.0.1', port, share: 'data', username: 'u', password: 'p', target_folder_id: admin.rootFolderId },
    });
    assert.equal(res.status, 201, res.text);
    return res.body.id as string;
  };

  test('40 parallel syncs start exactly one job', async () => {
    const id = await newConnector();
    const responses = await burst(stack.baseUrl, 40, (_, dispatcher) => api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token, dispatcher }));
    assert.deepEqual(statusCounts(responses), { 202: 1, 409: 39 });
    const winner = responses.find((r) => r.status === 202)!.body.job.id;
    for (const r of responses.filter((r) => r.status === 409)) {
      assertError(r, 409, 'CONNECTOR_SYNC_RUNNING');
      assert.equal(r.body.details.job_id, winner, 'the 409 names the active job');
    }
    const jobs = await stack.services.db.selectFrom('connector_jobs').selectAll().where('connector_id', '=', id).execute();
    assert.equal(jobs.length, 1, 'one job row');
    assert.equal(jobs[0]!.id, winner);
    const described = await stack.services.temporal.workflow.getHandle(jobs[0]!.workflow_id).describe();
    assert.equal(described.status.name, 'RUNNING', 'its workflow was started');
  });

  test('a delete racing 30 syncs: never a 5xx, and nothing of the connector is left', async () => {
    const id = await newConnector();
    const responses = await burst(stack.baseUrl, 31, (i, dispatcher) =>
      api(stack.baseUrl, i === 15 ? 'DELETE' : 'POST', `${V1}/smb-connectors/${id}${i === 15 ? '' : '/sync'}`, { token: admin.token, dispatcher }),
    );
    assert.equal(responses[15]!.status, 204);
    for (const r of responses) assert.ok([202, 204, 404, 409].includes(r.status), `${r.status} ${r.text}`);
    assert.ok((statusCounts(responses)[202] ?? 0) <= 1, 'at most one job was started');
    assert.equal((await stack.services.db.selectFrom('connectors').select('id').where('id', '=', id).execute()).length, 0);
    assert.equal((await stack.services.db.selectFrom('connector_jobs').select('id').where('connector_id', '=', id).execute()).length, 0);
  });

  test('30 parallel cancels: one 200, the rest 409, canceled once', async () => {
    const id = await newConnector();
    const sync = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(sync.status, 202);
    const jobId = sync.body.job.id;
    const responses = await burst(stack.baseUrl, 30, (_, dispatcher) => api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/jobs/${jobId}/cancel`, { token: admin.token, dispatcher }));
    assert.deepEqual(statusCounts(responses), { 200: 1, 409: 29 });
    for (const r of responses.filter((r) => r.status === 409)) assertError(r, 409, 'CONNECTOR_JOB_FINISHED');
    const row = await stack.services.db.selectFrom('connector_jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
    assert.equal(row.status, 'canceled');
    const lines = await stack.services.db.selectFrom('connector_job_log').select('line').where('job_id', '=', jobId).where('line', 'like', '%canceled by an admin%').execute();
    assert.equal(lines.length, 1, 'the cancel happened once');
    // Of parallel syncs after the cancel, again exactly one starts.
    const again = await burst(stack.baseUrl, 20, (_, dispatcher) => api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token, dispatcher }));
    assert.deepEqual(statusCounts(again), { 202: 1, 409: 19 });
    const active = await stack.services.db.selectFrom('connector_jobs').select('id').where('connector_id', '=', id).where('status', 'in', ['queued', 'running']).execute();
    assert.equal(active.length, 1);
  });
});
