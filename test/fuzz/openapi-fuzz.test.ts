// Issue #7, "tests that keep it fixed": every operation of the served OpenAPI document gets seeded, hostile
// requests (NUL, lone surrogates, huge numbers, wrong types, percent junk, forged cursors and tokens, plus
// real ids so requests reach the handlers); every answer must be < 500 and, for 4xx, in the spec's error shape.
// Reproduce a run with FUZZ_SEED=<printed seed> (FUZZ_SEED=random picks a new one).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Agent } from 'undici';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';
import { newUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { loadOperations, requestArbitrary, type Operation } from './openapi-operations';
import { createCallers, createResources, restoreCallerAccess, type FuzzCallers, type ResourcePools } from './fuzz-fixtures';
import { describe as describeRequest, judge, materialise, send, type SentRequest } from './fuzz-client';

const webhookSecret = 'fuzz-webhook-secret-0123456789';
const defaultSeed = 20_240_707;
const seed = process.env.FUZZ_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED ?? defaultSeed);
/** Requests per operation: ~80 operations × 18 ≈ 1,450 requests. */
const runsPerOperation = Number(process.env.FUZZ_RUNS_PER_OPERATION ?? 18);
/** Fresh fixtures every this many operations, since the fuzz deletes, transfers and deactivates as it goes. */
const operationsPerFixtureSet = 12;

/**
 * How much an operation destroys the fixtures or the callers' own access. Destructive operations run after
 * all the others, the most sweeping last, each on fresh fixtures, so the rest of the run still reaches real
 * resources. Nothing is excluded: these are only reordered.
 */
function destructiveness(operation: Operation): number {
  const { method, template } = operation;
  if (/\/(deactivate|webhooks\/scaikey)$/.test(template)) return 3; // can suspend the callers themselves
  if (template === '/api/v1/admin/tenant' && method === 'PATCH') return 2; // can shrink the tenant's limits
  if (method === 'DELETE' || /\/(transfer|decline|accept|finalize)$/.test(template)) return 1;
  return 0;
}

const b64 = (text: string) => Buffer.from(text).toString('base64url');

describe('OpenAPI fuzz (issue #7)', () => {
  let stack: TestStack;
  let callers: FuzzCallers;
  let pools: ResourcePools;
  let otherTenantFolderId: string;
  let dispatcher: Agent;

  before(async () => {
    stack = await startTestStack({
      workers: true,
      // The harness's Weaviate, so semantic and hybrid search are fuzzed on their real path (not a 503).
      search: true,
      // Finalize, quota recalculation and identity events wait for their workflow; 2 s keeps the run bounded.
      env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '2', SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET: webhookSecret },
    });
    const tenant = await createTestTenant(stack);
    const otherTenant = await createTestTenant(stack);
    otherTenantFolderId = (await newUser(stack, otherTenant.id, 'fuzz-outsider')).rootFolderId;
    callers = await createCallers(stack, tenant.id, otherTenant.id);
    pools = await createResources(stack, callers, 0, otherTenantFolderId);
    // At most 4 requests in flight (fixtures and fuzz requests run one at a time anyway): a fuzz test, not a load test.
    dispatcher = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  });
  after(async () => {
    await dispatcher?.close();
    await stack?.close();
  });

  test('the judge refuses what the fuzz must catch (so the fuzz can fail)', () => {
    const json = (requestId = 'req_1') => new Headers({ 'content-type': 'application/json', 'x-request-id': requestId });
    const error = (status: number, body: unknown, headers = json()) => judge({ status, headers, text: JSON.stringify(body) });
    const good = { detail: 'nope', code: 'NOT_FOUND', request_id: 'req_1' };
    assert.equal(error(404, good), null);
    assert.equal(error(422, { detail: [{ loc: ['body', 'name'], msg: 'bad', type: 'value_error' }], code: 'VALIDATION_ERROR', request_id: 'req_1' }), null);
    assert.equal(error(507, { ...good, code: 'QUOTA_EXCEEDED' }), null);
    assert.ok(error(500, { ...good, code: 'INTERNAL_ERROR' }));
    assert.ok(error(503, { ...good, code: 'SERVICE_UNAVAILABLE' }));
    assert.ok(judge({ status: 400, headers: json(), text: 'Bad Request' }));
    assert.ok(error(400, { ...good, detail: undefined }));
    assert.ok(error(400, { ...good, code: 'not snake' }));
    assert.ok(error(400, good, json('req_2')));
    assert.ok(error(422, { ...good, code: 'VALIDATION_ERROR' }));
    assert.ok(error(422, { detail: [{ loc: 'body', msg: 'bad' }], code: 'VALIDATION_ERROR', request_id: 'req_1' }));
    assert.ok(error(429, { ...good, code: 'RATE_LIMITED' }));
    assert.ok(judge({ status: 0, headers: new Headers(), text: 'transport error: ECONNRESET' }));
  });

  describe('regression cases', () => {
    test('NUL in a public link query: GET /public/links/{t}/children?folder_id=%00 (no token) → 4xx in the error shape', async () => {
      const token = pools.linkToken[1]!; // the folder link
      const res = await api(stack.baseUrl, 'GET', `/api/v1/public/links/${token}/children?folder_id=%00`);
      assert.ok(res.status >= 400 && res.status < 500, `expected a 4xx, got ${res.status} ${res.text}`);
      assert.equal(judge({ status: res.status, headers: res.headers, text: res.text }), null, res.text);
    });

    test('a forged trash cursor (base64url of ["garbage","x"]) → 400 INVALID_CURSOR', async () => {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/trash?cursor=${b64('["garbage","x"]')}`, { token: callers.admin.token });
      assertError(res, 400, 'INVALID_CURSOR');
    });

    test('an audit cursor of base64url("1e400") → 400 INVALID_CURSOR', async () => {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/admin/audit?cursor=${b64('1e400')}`, { token: callers.admin.token });
      assertError(res, 400, 'INVALID_CURSOR');
    });

    test('"\\u0000" in a JSON name → 422 at body.name, and nothing is created', async () => {
      const res = await api(stack.baseUrl, 'POST', '/api/v1/folders', { token: callers.admin.token, body: '{"parent_id":"' + callers.admin.rootFolderId + '","name":"evil\\u0000name"}', headers: { 'content-type': 'application/json' } });
      assertError(res, 422, 'VALIDATION_ERROR');
      assert.ok(res.body.detail.some((d: any) => JSON.stringify(d.loc) === '["body","name"]'), JSON.stringify(res.body.detail));
      const created = await stack.services.db.selectFrom('nodes').select('id').where('name', 'like', 'evil%').execute();
      assert.equal(created.length, 0);
    });

    test('a JWT whose sub contains NUL → 401, and no user is provisioned', async () => {
      const token = await tokenFor(stack, callers.tenantId, 'evil\u0000sub');
      const res = await api(stack.baseUrl, 'GET', '/api/v1/me', { token });
      assertError(res, 401, 'AUTH_TOKEN_INVALID');
      const users = await stack.services.db.selectFrom('users').select('id').where('tenant_id', '=', callers.tenantId).where('external_id', 'like', 'evil%').execute();
      assert.equal(users.length, 0);
    });
  });

  test('every operation answers hostile input below 500 and in the error shape', async () => {
    const operations = await loadOperations(stack.baseUrl);
    assert.ok(operations.length >= 50, `the OpenAPI document lists only ${operations.length} operations`);
    assert.ok(operations.every((o) => o.template.startsWith('/api/v1/')), 'every operation is under /api/v1');
    // A stable sort keeps the document's order within each level.
    // FUZZ_ONLY=<substring of "METHOD /path"> narrows a run to the operations an owner is fixing.
    const only = process.env.FUZZ_ONLY;
    const ordered = [...operations].sort((a, b) => destructiveness(a) - destructiveness(b));
    process.stdout.write(`openapi fuzz: seed ${seed} (FUZZ_SEED=${seed} reproduces it), ${ordered.length} operations × ${runsPerOperation} runs\n`);

    const failures = new Map<string, { request: SentRequest; status: number; problem: string; body: string; count: number }>();
    const reached = new Map<string, Map<number, number>>();
    let sent = 0;
    for (const [index, operation] of ordered.entries()) {
      // Skipped only on request (FUZZ_ONLY); the index, and so each operation's seed, stays the same.
      if (only && !`${operation.method} ${operation.template}`.includes(only)) continue;
      const destructive = destructiveness(operation) > 0;
      if (sent > 0 && (destructive || index % operationsPerFixtureSet === 0)) pools = await createResources(stack, callers, index, otherTenantFolderId);
      const key = `${operation.method} ${operation.template}`;
      reached.set(key, new Map());
      await fc.assert(
        fc.asyncProperty(requestArbitrary(operation), async (generated) => {
          const request = materialise(generated, callers, pools, webhookSecret);
          const answer = await send(stack.baseUrl, request, dispatcher);
          sent++;
          const statuses = reached.get(key)!;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          // A suspended caller or a one-byte cap would turn the operation's remaining runs into 403s and 413s.
          if (destructive) await restoreCallerAccess(stack, callers);
          const verdict = judge(answer);
          if (process.env.FUZZ_VERBOSE === '2') process.stdout.write(`    ${answer.status} ${describeRequest(request)} → ${answer.text.slice(0, 200)}\n`);
          if (!verdict) return;
          // Collected rather than thrown, so one run reports every distinct failure (and no stateful shrinking).
          const failureKey = `${key} → ${answer.status} ${verdict.code ?? ''} ${verdict.problem}`;
          const known = failures.get(failureKey);
          if (known) known.count++;
          else failures.set(failureKey, { request, status: answer.status, problem: verdict.problem, body: answer.text.slice(0, 300), count: 1 });
        }),
        // One seed per operation: adding an operation to the API does not change the others' inputs.
        { seed: seed + index, numRuns: runsPerOperation, endOnFailure: true },
      );
    }

    if (process.env.FUZZ_VERBOSE) for (const [k, statuses] of reached) process.stdout.write(`  ${k}: ${JSON.stringify(Object.fromEntries(statuses))}\n`);
    const neverPastAuth = [...reached].filter(([, statuses]) => ![...statuses.keys()].some((s) => s < 400 || ![401, 403, 404].includes(s))).map(([k]) => k);
    process.stdout.write(`openapi fuzz: ${sent} requests; operations that never got past 401/403/404: ${neverPastAuth.length ? neverPastAuth.join(', ') : 'none'}\n`);
    const report = [...failures].map(([key, f]) => `- ${key} (×${f.count})\n    repro: ${describeRequest(f.request)}\n    got: ${f.body}`).join('\n');
    assert.equal(failures.size, 0, `seed ${seed}: ${failures.size} distinct failures\n${report}`);
  });
});
