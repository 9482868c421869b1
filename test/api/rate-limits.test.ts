// Rate limits (spec §12, issue #8): per user, per API key and per tenant, with RateLimit-* headers and 429
// RATE_LIMITED + Retry-After; in Redis one budget is shared by every API replica, exact under parallel requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { burst, statusCounts } from '../helpers/race';

const V1 = '/api/v1';

describe('rate limits in memory', () => {
  let stack: TestStack;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;

  before(async () => {
    stack = await startTestStack({
      env: { SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: '5', SCAIDRIVE_RATE_LIMIT_API_KEY_PER_MINUTE: '3', SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: '1000' },
    });
    const tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(() => stack.close());

  test('a user gets their budget with RateLimit headers, then 429 with Retry-After; others are unaffected', async () => {
    // newUser already spent one request (GET /me).
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('ratelimit-limit'), '5');
      remaining.push(res.headers.get('ratelimit-remaining')!);
      assert.ok(Number(res.headers.get('ratelimit-reset')) >= 1 && Number(res.headers.get('ratelimit-reset')) <= 60);
    }
    assert.deepEqual(remaining, ['3', '2', '1', '0']);
    const limited = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token });
    assertError(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('ratelimit-remaining'), '0');
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/me`, { token: bob.token })).status, 200, 'another user has a budget of their own');
  });

  test('health and metrics are never limited', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await api(stack.baseUrl, 'GET', `${V1}/health`)).status, 200);
    assert.equal((await api(stack.baseUrl, 'GET', '/metrics')).status, 200);
  });

  test('an API key has its own budget', async () => {
    const created = await api(stack.baseUrl, 'POST', `${V1}/admin/api-keys`, { token: admin.token, body: { name: 'ci', scopes: ['admin'] } });
    assert.equal(created.status, 201, created.text);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await api(stack.baseUrl, 'GET', `${V1}/admin/users`, { token: created.body.secret })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });
});

describe('rate limits in Redis, shared by two API replicas', () => {
  let first: TestStack;
  let second: TestStack;
  let tenantId: string;

  before(async () => {
    const env = { SCAIDRIVE_REDIS_URL: 'redis://127.0.0.1:6379', SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: '10', SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: '15' };
    first = await startTestStack({ env });
    // The same data dir: both replicas trust the same dev issuer key, as replicas share one issuer.
    second = await startTestStack({ env: { ...env, SCAIDRIVE_DATA_DIR: first.config.dataDir } });
    tenantId = (await createTestTenant(first)).id;
  });
  after(async () => {
    await first.close();
    await second.close();
  });

  test('40 parallel requests spread over both replicas: exactly the budget passes', async () => {
    const user = await newUser(first, tenantId, `carol-${randomUUID().slice(0, 6)}`); // spends 1 on the first replica
    const results = await burst(first.baseUrl, 40, (i, dispatcher) =>
      api(i % 2 === 0 ? first.baseUrl : second.baseUrl, 'GET', `${V1}/me`, { token: user.token, dispatcher: i % 2 === 0 ? dispatcher : undefined }),
    );
    assert.deepEqual(statusCounts(results), { 200: 9, 429: 31 });
  });

  test('the tenant budget is shared by its users across replicas', async () => {
    // 10 requests were counted for the tenant above (only allowed requests draw on it).
    const dave = await newUser(second, tenantId, `dave-${randomUUID().slice(0, 6)}`); // 11
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await api(i % 2 ? first.baseUrl : second.baseUrl, 'GET', `${V1}/me`, { token: dave.token })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  });
});
