// Operators see and retry every workflow of their tenant (spec §12, issue #8 §3): listing from Temporal
// visibility by ScaiTenantId with status/kind filters and signed cursors, retry as a new run with the same
// input, 409 while running (one winner among parallel retries), other tenants' workflows invisible.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { burst, statusCounts } from '../helpers/race';
import { scaiSearchAttributes } from '../../src/temporal/search-attributes';

const V1 = '/api/v1';

/** Visibility is eventually consistent: polls the listing until `match` finds the wanted item. */
async function eventually(stack: TestStack, token: string, query: string, match: (item: any) => boolean): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?${query}`, { token });
    assert.equal(res.status, 200, res.text);
    const found = res.body.items.find(match);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no workflow matching in ${query}: ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

describe('admin workflows', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: TestUser;
  let member: TestUser;
  let otherAdmin: TestUser;
  const parked: string[] = [];

  before(async () => {
    stack = await startTestStack({ workers: true });
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
    member = await newUser(stack, tenantId, 'member');
    otherAdmin = await newUser(stack, (await createTestTenant(stack)).id, 'other-admin', { admin: true });
  });
  after(async () => {
    for (const id of parked) await stack.services.temporal.workflow.getHandle(id).terminate('test cleanup').catch(() => undefined);
    await stack.close();
  });

  /** A workflow of this tenant on a task queue nobody polls: it stays running until terminated. */
  async function startParked(): Promise<string> {
    const workflowId = `upload-finalize/upl_parked${randomUUID().slice(0, 8)}`;
    await stack.services.temporal.workflow.start('uploadFinalizationWorkflow', {
      workflowId,
      taskQueue: `parked-${randomUUID()}`,
      args: ['upl_parked'],
      typedSearchAttributes: scaiSearchAttributes({ tenantId }),
    });
    parked.push(workflowId);
    return workflowId;
  }

  test('a completed workflow is listed with its kind, times and Temporal UI link; retry runs it again', async () => {
    const usage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/tenant?recalculate=true`, { token: admin.token });
    assert.equal(usage.status, 200, usage.text);
    const id = `quota-recalc/${tenantId}`;
    const item = await eventually(stack, admin.token, 'status=completed&kind=quota-recalc', (w) => w.workflow_id === id);
    assert.equal(item.kind, 'quota-recalc');
    assert.equal(item.status, 'completed');
    assert.ok(Date.parse(item.start_time) <= Date.parse(item.close_time));
    assert.equal(item.failure_message, null);
    assert.ok(item.temporal_ui_url.endsWith(`/namespaces/default/workflows/${encodeURIComponent(id)}/${item.run_id}/history`), item.temporal_ui_url);

    const retried = await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token });
    assert.equal(retried.status, 202, retried.text);
    assert.equal(retried.body.previous_run_id, item.run_id);
    assert.notEqual(retried.body.run_id, item.run_id);
    const result = await stack.services.temporal.workflow.getHandle(id, retried.body.run_id).result();
    assert.equal(typeof result.subjects, 'number', 'the new run got the same input and finished');
    const memo = (await stack.services.temporal.workflow.getHandle(id, retried.body.run_id).describe()).memo;
    assert.equal(memo?.request_id, retried.headers.get('x-request-id'));

    // 20 parallel retries of a workflow that finishes in a moment: a request may come late enough to retry the
    // new run after it finished, but no run is ever retried twice — the runs form one chain.
    const results = await burst(stack.baseUrl, 20, (_, dispatcher) =>
      api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token, dispatcher }),
    );
    for (const res of results.filter((r) => r.status !== 202)) assertError(res, 409, 'WORKFLOW_RUNNING');
    const started = results.filter((r) => r.status === 202).map((r) => r.body);
    assert.ok(started.length >= 1, 'one of them starts a run');
    const retriedRuns = started.map((run) => run.previous_run_id);
    assert.equal(new Set(retriedRuns).size, retriedRuns.length, `a run was retried twice: ${retriedRuns.join(', ')}`);
    const chain = new Set([retried.body.run_id, ...started.map((run) => run.run_id)]);
    for (const previous of retriedRuns) assert.ok(chain.has(previous), `${previous} is not a run of this chain`);
    await stack.services.temporal.workflow.getHandle(id).result();
  });

  test('a running workflow cannot be retried; a terminated one shows why and can be', async () => {
    const id = await startParked();
    await eventually(stack, admin.token, 'status=running&kind=upload-finalize', (w) => w.workflow_id === id);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token }), 409, 'WORKFLOW_RUNNING');
    await stack.services.temporal.workflow.getHandle(id).terminate('operator stopped it');
    const terminated = await eventually(stack, admin.token, 'status=terminated', (w) => w.workflow_id === id);
    assert.equal(terminated.failure_message, 'operator stopped it');
    // Of 20 parallel retries exactly one starts a run (it stays running: nobody polls its queue), the others get 409.
    const results = await burst(stack.baseUrl, 20, (_, dispatcher) =>
      api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token, dispatcher }),
    );
    assert.deepEqual(statusCounts(results), { 202: 1, 409: 19 });
    for (const res of results.filter((r) => r.status === 409)) assertError(res, 409, 'WORKFLOW_RUNNING');
    const retried = results.find((r) => r.status === 202)!;
    assert.equal(retried.body.previous_run_id, terminated.run_id);
    const description = await stack.services.temporal.workflow.getHandle(id).describe();
    assert.equal(description.status.name, 'RUNNING');
    assert.equal(description.runId, retried.body.run_id);
  });

  test('a retry that lost the race for the run it saw starts nothing; a claim abandoned for a minute is taken over', async () => {
    const id = await startParked();
    const handle = stack.services.temporal.workflow.getHandle(id);
    await handle.terminate('operator stopped it');
    const previousRunId = (await handle.describe()).runId;
    // A parallel retry of this run has claimed it and is starting the new run right now.
    await stack.services.db.insertInto('workflow_retries').values({ workflow_id: id, previous_run_id: previousRunId, tenant_id: tenantId, request_id: 'req_parallel' }).execute();
    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token }), 409, 'WORKFLOW_RUNNING');
    const untouched = await handle.describe();
    assert.equal(untouched.runId, previousRunId, 'the loser started no run');
    assert.equal(untouched.status.name, 'TERMINATED');

    // That request died before starting anything; after a minute its claim is someone else's.
    await stack.services.db.updateTable('workflow_retries').set({ claimed_at: sql<Date>`now() - interval '61 seconds'` }).where('workflow_id', '=', id).execute();
    const retried = await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: admin.token });
    assert.equal(retried.status, 202, retried.text);
    assert.equal(retried.body.previous_run_id, previousRunId);
    const claim = await stack.services.db.selectFrom('workflow_retries').selectAll().where('workflow_id', '=', id).executeTakeFirstOrThrow();
    assert.equal(claim.run_id, retried.body.run_id);
    assert.equal(claim.request_id, retried.headers.get('x-request-id'));
    assert.equal((await handle.describe()).runId, retried.body.run_id);
  });

  test('pages with signed cursors; forged or foreign cursors are 400', async () => {
    await startParked();
    await startParked();
    await eventually(stack, admin.token, 'status=running', () => true);
    const first = await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?limit=1`, { token: admin.token });
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 1);
    assert.equal(typeof first.body.next_cursor, 'string');
    const second = await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?limit=1&cursor=${first.body.next_cursor}`, { token: admin.token });
    assert.equal(second.status, 200, second.text);
    assert.notEqual(second.body.items[0]?.run_id, first.body.items[0].run_id);
    const [payload] = first.body.next_cursor.split('.');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?cursor=${payload}.AAAA`, { token: admin.token }), 400, 'INVALID_CURSOR');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?cursor=${first.body.next_cursor}`, { token: otherAdmin.token }), 400, 'INVALID_CURSOR');
  });

  test("another tenant's admin sees none of it and cannot retry it; members are refused", async () => {
    const id = `quota-recalc/${tenantId}`;
    const other = await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?limit=100`, { token: otherAdmin.token });
    assert.equal(other.status, 200);
    assert.equal(other.body.items.length, 0);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent(id)}/retry`, { token: otherAdmin.token }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/workflows/${encodeURIComponent('no-such/workflow')}/retry`, { token: admin.token }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/admin/workflows`, { token: member.token }), 403, 'FORBIDDEN');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?status=exploded`, { token: admin.token }), 422, 'VALIDATION_ERROR');
  });
});
