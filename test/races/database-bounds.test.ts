// Every query is bounded (issue #7, finding 1): a statement past `statement_timeout` answers 503 with
// Retry-After, a client that disconnects cancels its running queries, and an exhausted pool is a 503 — none
// of them a 500, and none of them slowing other tenants' requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';

const V1 = '/api/v1';

/** Holds a row lock on a folder from outside the API, as a long transaction elsewhere would. */
async function lockFolderRow(folderId: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: harness.databaseUrl });
  await client.connect();
  await client.query('begin');
  await client.query('select id from nodes where id = $1 for update', [folderId]);
  return {
    async release() {
      await client.query('rollback');
      await client.end();
    },
  };
}

/** Backends of the test database waiting for a lock on `nodes` (the API's blocked statements). */
const monitor = new pg.Pool({ connectionString: harness.databaseUrl, max: 1 });
async function lockWaiters(): Promise<number> {
  const { rows } = await monitor.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%nodes%'`,
  );
  return rows[0]!.n;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

describe('statement timeout', () => {
  let stack: TestStack;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_DATABASE_STATEMENT_TIMEOUT_SECONDS: '1' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    bob = await newUser(stack, (await createTestTenant(stack)).id, 'bob');
  });
  after(() => stack.close());

  test('a statement blocked past the timeout answers 503 with Retry-After; other tenants stay fast', async () => {
    const lock = await lockFolderRow(alice.rootFolderId);
    try {
      const blocked = api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: alice.rootFolderId, name: 'waits' } });
      const started = Date.now();
      const other = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: bob.token });
      assert.equal(other.status, 200);
      assert.ok(Date.now() - started < 900, 'another tenant is not held up by the blocked statement');
      const res = await blocked;
      assertError(res, 503, 'SERVICE_UNAVAILABLE');
      assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After is sent');
    } finally {
      await lock.release();
    }
    const retried = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: alice.rootFolderId, name: 'waits' } });
    assert.equal(retried.status, 201, retried.text);
  });
});

describe('client disconnects and pool exhaustion', () => {
  let stack: TestStack;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_DATABASE_STATEMENT_TIMEOUT_SECONDS: '60', SCAIDRIVE_DATABASE_POOL_SIZE: '3' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(async () => {
    await stack.close();
    await monitor.end();
  });

  test('a client that goes away cancels the query still running for it', async () => {
    const lock = await lockFolderRow(alice.rootFolderId);
    try {
      const abort = new AbortController();
      const request = fetch(`${stack.baseUrl}${V1}/folders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ parent_id: alice.rootFolderId, name: 'abandoned' }),
        signal: abort.signal,
      }).catch((error: Error) => error);
      assert.ok(await waitFor(async () => (await lockWaiters()) >= 1, 10_000), 'the API statement waits for the lock');
      abort.abort();
      assert.ok((await request) instanceof Error);
      // The lock is still held: only cancellation (not the 60 s timeout) can end the waiting statement.
      assert.ok(await waitFor(async () => (await lockWaiters()) === 0, 5_000), 'the abandoned statement was cancelled');
    } finally {
      await lock.release();
    }
    const names = await stack.services.db.selectFrom('nodes').select('name').where('parent_id', '=', alice.rootFolderId).where('name', '=', 'abandoned').execute();
    assert.equal(names.length, 0, 'the cancelled request committed nothing');
  });

  test('an exhausted connection pool answers 503 with Retry-After, then recovers', async () => {
    const lock = await lockFolderRow(alice.rootFolderId);
    let waiting: Promise<unknown>[] = [];
    try {
      // Three requests hold all three pooled connections while they wait for the row lock.
      waiting = [1, 2, 3].map((i) => api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: alice.rootFolderId, name: `held ${i}` } }));
      assert.ok(await waitFor(async () => (await lockWaiters()) >= 3, 10_000), 'the pool is exhausted');
      const res = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token });
      assertError(res, 503, 'SERVICE_UNAVAILABLE');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
    } finally {
      await lock.release();
    }
    const held = (await Promise.all(waiting)) as { status: number }[];
    assert.deepEqual(held.map((r) => r.status), [201, 201, 201]);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token })).status, 200);
  });
});
