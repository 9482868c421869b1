// Race: email-code abuse on require_email links (issue #7, finding 15). Mails per link, verify-email requests per
// client address and confirmations per client address are each one atomic reservation, so parallel bursts
// (50 addresses at once, many client addresses at once) stay within the limits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { awaitRoomInEmailWindow, createLink, type CreatedLink } from '../links/link-helpers';

describe('races: link email codes', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let fileId: string;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1' } });
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'guarded.bin', randomData(512));
    assert.equal(upload.status, 201);
    fileId = upload.body.file.id;
  });
  after(() => stack.close());

  const mailsTo = async (recipients: string[]) =>
    (await stack.services.db.selectFrom('mail_outbox').select('recipient').where('tenant_id', '=', tenantId).where('kind', '=', 'link_email_code').where('recipient', 'in', recipients).execute()).length;
  const counter = async (link: CreatedLink, scope: string) =>
    stack.services.db.selectFrom('link_rate_counters').select(['subject', 'count']).where('link_id', '=', link.id).where('scope', '=', scope).execute();
  const verify = (link: CreatedLink, email: string, from: string, dispatcher?: any) =>
    api(stack.baseUrl, 'POST', `/api/v1/public/links/${link.token}/verify-email`, { body: { email }, headers: { 'x-forwarded-for': from }, dispatcher });
  const confirm = (link: CreatedLink, email: string, code: string, from: string, dispatcher?: any) =>
    api(stack.baseUrl, 'POST', `/api/v1/public/links/${link.token}/verify-email/confirm`, { body: { email, code }, headers: { 'x-forwarded-for': from }, dispatcher });

  function assertLimited(responses: { status: number; headers: Headers; body: any }[]) {
    for (const response of responses.filter((r) => r.status === 429)) {
      assertError(response, 429, 'LINK_RATE_LIMITED');
      assert.ok(Number(response.headers.get('retry-after')) >= 1, 'Retry-After');
    }
  }

  test('50 allowed addresses from 50 client addresses in parallel: at most 10 mails for the link, then 429 for everyone', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['@partner.test'] });
    const emails = Array.from({ length: 50 }, (_, i) => `user${i}@partner.test`);
    await awaitRoomInEmailWindow();
    const responses = await burst(stack.baseUrl, 50, (i, dispatcher) => verify(link, emails[i]!, `198.51.100.${i + 1}`, dispatcher));
    const counts = statusCounts(responses);
    assert.equal((counts[202] ?? 0) + (counts[429] ?? 0), 50, JSON.stringify(counts));
    assertLimited(responses);
    const mails = await mailsTo(emails);
    assert.ok(mails >= 1 && mails <= 10, `mails queued: ${mails}`);
    const [budget] = await counter(link, 'email_mail');
    assert.equal(budget?.count, mails, 'the link budget counts exactly the mails queued');
    assert.equal(await stack.services.db.selectFrom('link_email_codes').select('email').where('link_id', '=', link.id).execute().then((r) => r.length), mails, 'a code row only with its mail');
    if (mails === 10) {
      // The budget is used up: allowed and unknown addresses alike get 429 (nothing is revealed).
      assertError(await verify(link, 'late@partner.test', '198.51.100.200'), 429, 'LINK_RATE_LIMITED');
      assertError(await verify(link, 'nobody@elsewhere.test', '198.51.100.201'), 429, 'LINK_RATE_LIMITED');
    }
  });

  test('30 parallel requests for ONE address from different clients queue exactly one mail', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['bob@example.test'] });
    await awaitRoomInEmailWindow();
    const responses = await burst(stack.baseUrl, 30, (i, dispatcher) => verify(link, 'bob@example.test', `192.0.2.${i + 1}`, dispatcher));
    assert.deepEqual(statusCounts(responses), { 202: 30 });
    assert.equal(await mailsTo(['bob@example.test']), 1);
  });

  test('30 parallel requests from ONE client address: at most 10 accepted, the rest 429, whoever they name', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['@corp.test'] });
    const emails = Array.from({ length: 30 }, (_, i) => (i % 2 ? `u${i}@corp.test` : `u${i}@elsewhere.test`));
    await awaitRoomInEmailWindow();
    const responses = await burst(stack.baseUrl, 30, (i, dispatcher) => verify(link, emails[i]!, '203.0.113.77', dispatcher));
    const counts = statusCounts(responses);
    assert.equal(counts[202] ?? 0, 10, JSON.stringify(counts));
    assert.equal(counts[429] ?? 0, 20, JSON.stringify(counts));
    assertLimited(responses);
    assert.deepEqual(await counter(link, 'email_request'), [{ subject: '203.0.113.77', count: 10 }]);
    assert.ok((await mailsTo(emails)) <= 10);
  });

  test('60 parallel wrong confirmations from one client across 6 addresses: at most 10 evaluated, the rest 429', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['@guess.test'] });
    const emails = Array.from({ length: 6 }, (_, i) => `g${i}@guess.test`);
    await awaitRoomInEmailWindow();
    // Codes exist for all six addresses (requested from other clients), so every guess could be evaluated.
    for (const [i, email] of emails.entries()) assert.equal((await verify(link, email, `192.0.2.${100 + i}`)).status, 202);
    const responses = await burst(stack.baseUrl, 60, (i, dispatcher) => confirm(link, emails[i % 6]!, String(100000 + i), '203.0.113.88', dispatcher));
    const counts = statusCounts(responses);
    assert.ok((counts[403] ?? 0) <= 10, JSON.stringify(counts));
    assert.equal((counts[403] ?? 0) + (counts[429] ?? 0) + (counts[200] ?? 0), 60, JSON.stringify(counts));
    for (const response of responses.filter((r) => r.status === 403)) assertError(response, 403, 'LINK_EMAIL_CODE_INVALID');
    assertLimited(responses);
    const [confirmations] = await counter(link, 'email_confirm');
    assert.ok(confirmations && confirmations.count <= 10 && confirmations.count === (counts[403] ?? 0), JSON.stringify(confirmations));
    // The codes' own attempts add up to the evaluated guesses, never more.
    const attempts = await stack.services.db.selectFrom('link_email_codes').select('attempts').where('link_id', '=', link.id).execute();
    assert.ok(attempts.reduce((sum, row) => sum + row.attempts, 0) <= 10);
  });
});
