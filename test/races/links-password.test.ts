// Race: link password guessing (issue #7, finding 5). Wrong attempts are reserved atomically BEFORE the password is
// evaluated, so 60 parallel guesses from one address — over /unlock or X-Link-Password — get at most 10 evaluated.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { createLink, standAtPasswordWindowStart } from '../links/link-helpers';

const password = 'correct horse battery';

describe('races: link password attempts', () => {
  let stack: TestStack;
  let alice: TestUser;
  let fileId: string;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'secret.bin', randomData(1024));
    assert.equal(upload.status, 201);
    fileId = upload.body.file.id;
  });
  after(() => stack.close());

  async function failuresOf(linkId: string, address: string): Promise<number> {
    const rows = await stack.services.db.selectFrom('link_password_failures').select('failures').where('link_id', '=', linkId).where('address', '=', address).execute();
    return rows.reduce((sum, row) => sum + row.failures, 0);
  }

  function assertAtMostTenEvaluated(responses: { status: number; headers: Headers; body: any }[], rightIndex: number) {
    const counts = statusCounts(responses);
    assert.ok((counts[401] ?? 0) <= 10, `at most 10 wrong passwords evaluated: ${JSON.stringify(counts)}`);
    assert.ok((counts[401] ?? 0) >= 1, `some guesses were evaluated: ${JSON.stringify(counts)}`);
    assert.equal((counts[401] ?? 0) + (counts[429] ?? 0) + (counts[200] ?? 0), responses.length, JSON.stringify(counts));
    assert.ok((counts[200] ?? 0) <= 1, 'only the right password can succeed');
    responses.forEach((response, index) => {
      if (response.status === 200) assert.equal(index, rightIndex, 'a wrong password never succeeds');
      if (response.status === 401) assertError(response, 401, 'LINK_PASSWORD_INVALID');
      if (response.status === 429) {
        assertError(response, 429, 'LINK_RATE_LIMITED');
        const retryAfter = Number(response.headers.get('retry-after'));
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 900, `Retry-After ${retryAfter}`);
      }
    });
  }

  test('60 parallel unlocks (59 wrong, 1 right) from one address: ≤ 10 evaluated, the rest 429; the counter holds ≤ 10', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    const attacker = '203.0.113.50';
    const rightIndex = 37;
    standAtPasswordWindowStart(stack);
    const responses = await burst(stack.baseUrl, 60, (i, dispatcher) =>
      api(stack.baseUrl, 'POST', `/api/v1/public/links/${link.token}/unlock`, {
        body: { password: i === rightIndex ? password : `guess-${i}` },
        headers: { 'x-forwarded-for': attacker },
        dispatcher,
      }),
    );
    assertAtMostTenEvaluated(responses, rightIndex);
    const failures = await failuresOf(link.id, attacker);
    assert.equal(failures, statusCounts(responses)[401] ?? 0, 'the counter holds exactly the evaluated wrong guesses');
    assert.ok(failures <= 10);
    // Afterwards the limit holds for the right password too, until the window ends.
    if (failures === 10) {
      assertError(await api(stack.baseUrl, 'POST', `/api/v1/public/links/${link.token}/unlock`, { body: { password }, headers: { 'x-forwarded-for': attacker } }), 429, 'LINK_RATE_LIMITED');
    }
  });

  test('60 parallel X-Link-Password downloads (59 wrong, 1 right): the same limit, nothing counted for refused requests', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    const attacker = '203.0.113.51';
    const rightIndex = 5;
    standAtPasswordWindowStart(stack);
    const responses = await burst(stack.baseUrl, 60, async (i, dispatcher) => {
      const response = await api(stack.baseUrl, 'GET', `/api/v1/public/links/${link.token}/content`, {
        headers: { 'x-forwarded-for': attacker, 'x-link-password': i === rightIndex ? password : `guess-${i}` },
        dispatcher,
      });
      return response;
    });
    assertAtMostTenEvaluated(responses, rightIndex);
    assert.ok((await failuresOf(link.id, attacker)) <= 10);
    const row = await stack.services.db.selectFrom('links').select('download_count').where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.equal(row.download_count, statusCounts(responses)[200] ?? 0, 'only a granted download is counted');
  });

  test('8 parallel right passwords from one address all succeed and leave no failure behind', async () => {
    // In-flight checks hold a reserved attempt until they are evaluated, so more than 10 parallel checks from
    // one address would be refused even when right: clients are meant to unlock once and use the session.
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    const address = '203.0.113.52';
    standAtPasswordWindowStart(stack);
    const responses = await burst(stack.baseUrl, 8, (_, dispatcher) =>
      api(stack.baseUrl, 'POST', `/api/v1/public/links/${link.token}/unlock`, { body: { password }, headers: { 'x-forwarded-for': address }, dispatcher }),
    );
    assert.deepEqual(statusCounts(responses), { 200: 8 });
    assert.equal(await failuresOf(link.id, address), 0, 'a right password gives its reserved attempt back');
    const rows = await stack.services.db.selectFrom('link_password_failures').select('failures').where('link_id', '=', link.id).execute();
    assert.deepEqual(rows, [], 'a counter back at zero is removed');
  });
});
