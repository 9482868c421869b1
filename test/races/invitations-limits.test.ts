// Issue #7 (low): invitation flooding. One pending invitation per share and address (409 INVITATION_PENDING,
// exact under parallel requests), and at most 20 invitations per inviter in 10 minutes (429 RATE_LIMITED with
// Retry-After, exact under parallel requests; refused invitations do not use up the budget).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { V1, createShare, uniq, user } from '../shares/share-helpers';

describe('races: invitation limits', () => {
  let stack: TestStack;
  let tenantId: string;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
  });
  after(() => stack.close());

  const invite = (token: string, shareId: string, email: string, dispatcher?: Dispatcher) =>
    api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/invitations`, { token, body: { email, role: 'reader' }, dispatcher });
  const invitationsOf = (shareId: string) => stack.services.db.selectFrom('invitations').selectAll().where('share_id', '=', shareId).execute();
  const mailsTo = (email: string) => stack.services.db.selectFrom('mail_outbox').select('id').where('tenant_id', '=', tenantId).where('recipient', '=', email).execute();

  test('20 parallel invitations of one address to one share: one 201, 19 × 409 naming it; one pending row, one mail', async () => {
    const owner = await user(stack, tenantId, uniq('owner'));
    const share = await createShare(stack, owner);
    const email = `${uniq('guest')}@example.test`;
    const responses = await burst(stack.baseUrl, 20, (_, dispatcher) => invite(owner.token, share.id, email, dispatcher));
    assert.deepEqual(statusCounts(responses), { 201: 1, 409: 19 });
    const created = responses.find((r) => r.status === 201)!;
    for (const r of responses.filter((x) => x.status === 409)) {
      assertError(r, 409, 'INVITATION_PENDING');
      assert.equal(r.body.details.invitation_id, created.body.id);
    }
    const rows = await invitationsOf(share.id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.status, 'pending');
    assert.equal((await mailsTo(email)).length, 1);
    // The same address differently cased is the same address.
    assertError(await invite(owner.token, share.id, email.toUpperCase()), 409, 'INVITATION_PENDING');
    // The refused ones did not count against the inviter's budget: 19 more invitations still go through.
    for (let i = 0; i < 19; i += 1) assert.equal((await invite(owner.token, share.id, `${uniq('more')}@example.test`)).status, 201);
  });

  test('once answered or expired, the address can be invited again', async () => {
    const owner = await user(stack, tenantId, uniq('owner'));
    const share = await createShare(stack, owner);
    const email = `${uniq('guest')}@example.test`;
    const first = await invite(owner.token, share.id, email);
    assert.equal(first.status, 201, first.text);
    const guest = await user(stack, tenantId, uniq('guest'), { email });
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/invitations/${first.body.token}/decline`, { token: guest.token })).status, 200);
    const second = await invite(owner.token, share.id, email);
    assert.equal(second.status, 201, second.text);

    // An expired pending invitation frees the slot; its token then answers 410, not 409.
    await stack.services.db.updateTable('invitations').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', second.body.id).execute();
    const third = await invite(owner.token, share.id, email);
    assert.equal(third.status, 201, third.text);
    const expired = await stack.services.db.selectFrom('invitations').select('status').where('id', '=', second.body.id).executeTakeFirstOrThrow();
    assert.equal(expired.status, 'expired');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/invitations/${second.body.token}/accept`, { token: guest.token }), 410, 'INVITATION_EXPIRED');
  });

  test('30 parallel invitations by one inviter: exactly 20 × 201, 10 × 429 with Retry-After; 20 rows', async () => {
    const owner = await user(stack, tenantId, uniq('spammer'));
    const shareA = await createShare(stack, owner);
    const shareB = await createShare(stack, owner);
    const responses = await burst(stack.baseUrl, 30, (i, dispatcher) => invite(owner.token, i % 2 ? shareA.id : shareB.id, `${uniq(`victim${i}`)}@example.test`, dispatcher));
    assert.deepEqual(statusCounts(responses), { 201: 20, 429: 10 });
    for (const r of responses.filter((x) => x.status === 429)) {
      assertError(r, 429, 'RATE_LIMITED');
      const retryAfter = Number(r.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600, `Retry-After ${r.headers.get('retry-after')}`);
    }
    const rows = await stack.services.db.selectFrom('invitations').select('id').where('created_by', '=', owner.userId).execute();
    assert.equal(rows.length, 20);
    const mails = await stack.services.db.selectFrom('mail_outbox').select('id').where('tenant_id', '=', tenantId).where('recipient', 'like', 'victim%').execute();
    assert.ok(mails.length >= 20);
    // Another inviter of the same tenant has a budget of their own.
    const colleague = await user(stack, tenantId, uniq('colleague'));
    const own = await createShare(stack, colleague);
    assert.equal((await invite(colleague.token, own.id, `${uniq('guest')}@example.test`)).status, 201);
  });
});
