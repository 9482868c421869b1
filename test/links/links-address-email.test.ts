// Link restrictions (spec §8, seed 003): IP allow-lists (IPv4 address, IPv4 and IPv6 CIDR) against the client
// address — X-Forwarded-For honoured only from SCAIDRIVE_TRUSTED_PROXIES — and require_email links, verified
// with a 6-digit code from mail_outbox (202 whatever the address, so nobody learns who is allowed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config';
import { createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { assertError, standAtPasswordWindowStart, createLink, publicApi, publicDownload, type CreatedLink } from './link-helpers';

async function ownerWithFile(stack: TestStack) {
  const alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'data.bin', randomData(256));
  assert.equal(upload.status, 201);
  return { alice, fileId: upload.body.file.id as string };
}

describe('SCAIDRIVE_TRUSTED_PROXIES', () => {
  test('accepts IPv4/IPv6 addresses and CIDR ranges; anything else stops start-up naming the variable', () => {
    const config = loadConfig({ SCAIDRIVE_ENV: 'test', SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,::1 ,2001:db8::/32' });
    assert.deepEqual(config.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '::1', '2001:db8::/32']);
    for (const bad of ['proxy.local', '10.0.0.0/33', '2001:db8::/129', '10.0.0.1/8/1', '300.1.1.1', '10.0.0.0/-1']) {
      assert.throws(
        () => loadConfig({ SCAIDRIVE_ENV: 'test', SCAIDRIVE_TRUSTED_PROXIES: bad }),
        (error: unknown) => error instanceof ConfigError && error.message.includes('SCAIDRIVE_TRUSTED_PROXIES') && error.message.includes(bad),
        bad,
      );
    }
  });
});

describe('IP allow-lists behind a trusted proxy (127.0.0.1)', () => {
  let stack: TestStack;
  let alice: TestUser;
  let fileId: string;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1,192.0.2.0/24' } });
    ({ alice, fileId } = await ownerWithFile(stack));
  });
  after(() => stack.close());

  const status = async (link: CreatedLink, forwardedFor?: string) =>
    (await publicDownload(stack, link.token, '', forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor })).status;

  test('IPv4 address, IPv4 CIDR and IPv6 CIDR: matching clients 200, others 403 LINK_IP_NOT_ALLOWED', async () => {
    const exact = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['198.51.100.7'] });
    const v4Range = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['10.0.0.0/8'] });
    const v6Range = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['2001:db8::/32'] });
    const mixed = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['198.51.100.0/24', '2001:db8:1::/48'] });
    const cases: [CreatedLink, string | undefined, number][] = [
      [exact, '198.51.100.7', 200],
      [exact, '198.51.100.8', 403],
      [exact, undefined, 403], // the proxy's own address
      [v4Range, '10.1.2.3', 200],
      [v4Range, '10.255.255.255', 200],
      [v4Range, '11.0.0.1', 403],
      [v4Range, '::ffff:10.1.2.3', 200], // IPv4-mapped is the IPv4 address
      [v4Range, '10.1.2.3:54321', 200], // some proxies append the port
      [v6Range, '2001:db8::5', 200],
      [v6Range, '2001:DB8:ffff::1', 200],
      [v6Range, '[2001:db8::5]:443', 200],
      [v6Range, '2001:db9::5', 403],
      [v6Range, '10.1.2.3', 403],
      [mixed, '198.51.100.200', 200],
      [mixed, '2001:db8:1:2::3', 200],
      [mixed, '2001:db8:2::3', 403],
      // Walking from the right: trusted hops are skipped, the first untrusted hop is the client…
      [v4Range, '10.1.2.3, 192.0.2.10', 200],
      [v4Range, '10.1.2.3, 192.0.2.10, 127.0.0.1', 200],
      // …and whatever the client wrote further left is ignored.
      [v4Range, '8.8.8.8, 10.1.2.3', 200],
      [v4Range, '10.1.2.3, 8.8.8.8', 403],
      // An unreadable hop ends the walk at the last readable address (here the proxy itself).
      [v4Range, '10.1.2.3, garbage', 403],
    ];
    for (const [link, forwardedFor, expected] of cases) {
      assert.equal(await status(link, forwardedFor), expected, `${JSON.stringify(link.allowed_ips)} from ${forwardedFor ?? '(no X-Forwarded-For)'}`);
    }
    const refused = await publicApi(stack, 'GET', v4Range.token, '', { headers: { 'x-forwarded-for': '11.0.0.1' } });
    assertError(refused, 403, 'LINK_IP_NOT_ALLOWED');
    const row = await stack.services.db.selectFrom('links').select(['view_count']).where('id', '=', v4Range.id).executeTakeFirstOrThrow();
    assert.equal(row.view_count, 0, 'refused requests are not counted');
  });

  test('checks run in the seed order: 410 before 403, 403 before 401', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['10.0.0.0/8'], password: 'pw-pw-pw' });
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': '11.0.0.1' } }), 403, 'LINK_IP_NOT_ALLOWED');
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': '10.0.0.1' } }), 401, 'LINK_PASSWORD_REQUIRED');
    assertError(await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: 'pw-pw-pw' }, headers: { 'x-forwarded-for': '11.0.0.1' } }), 403, 'LINK_IP_NOT_ALLOWED');
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': '10.0.0.1', 'x-link-password': 'pw-pw-pw' } })).status, 200);
    await stack.services.db.updateTable('links').set({ enabled: false }).where('id', '=', link.id).execute();
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': '11.0.0.1' } }), 410, 'LINK_DISABLED');
  });
});

describe('X-Forwarded-For from an untrusted peer (no SCAIDRIVE_TRUSTED_PROXIES)', () => {
  let stack: TestStack;
  let alice: TestUser;
  let fileId: string;

  before(async () => {
    stack = await startTestStack();
    ({ alice, fileId } = await ownerWithFile(stack));
  });
  after(() => stack.close());

  test('a spoofed X-Forwarded-For is ignored: the socket address decides', async () => {
    const intranet = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['10.0.0.0/8'] });
    assertError(await publicDownload(stack, intranet.token, '', { 'x-forwarded-for': '10.1.2.3' }), 403, 'LINK_IP_NOT_ALLOWED');
    const loopback = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['127.0.0.1'] });
    assert.equal((await publicDownload(stack, loopback.token, '', { 'x-forwarded-for': '10.9.9.9' })).status, 200);
    const loopbackRange = await createLink(stack, alice.token, 'file', fileId, { allowed_ips: ['127.0.0.0/8', '::1'] });
    assert.equal((await publicDownload(stack, loopbackRange.token, '', { 'x-forwarded-for': '2001:db8::5' })).status, 200);
  });

  test('wrong-password limits are keyed on the socket address, so a spoofed header does not buy new attempts', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password: 'right-password' });
    standAtPasswordWindowStart(stack);
    for (let attempt = 0; attempt < 10; attempt++) {
      assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': `198.51.100.${attempt}`, 'x-link-password': 'wrong' } }), 401, 'LINK_PASSWORD_INVALID');
    }
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-forwarded-for': '198.51.100.99', 'x-link-password': 'right-password' } }), 429, 'LINK_RATE_LIMITED');
    const rows = await stack.services.db.selectFrom('link_password_failures').select(['address', 'failures']).where('link_id', '=', link.id).execute();
    assert.deepEqual(rows, [{ address: '127.0.0.1', failures: 10 }]);
  });
});

describe('require_email links', () => {
  let stack: TestStack;
  let alice: TestUser;
  let fileId: string;

  before(async () => {
    stack = await startTestStack();
    ({ alice, fileId } = await ownerWithFile(stack));
  });
  after(() => stack.close());

  const outbox = (recipient: string) =>
    stack.services.db.selectFrom('mail_outbox').selectAll().where('recipient', '=', recipient).where('kind', '=', 'link_email_code').orderBy('id').execute();
  async function codeFor(recipient: string): Promise<string> {
    const mails = await outbox(recipient);
    assert.ok(mails.length > 0, `no mail for ${recipient}`);
    const code = /\b(\d{6})\b/.exec(mails[mails.length - 1]!.body)?.[1];
    assert.ok(code, mails[mails.length - 1]!.body);
    return code;
  }
  const verify = (link: CreatedLink, email: string) => publicApi(stack, 'POST', link.token, '/verify-email', { body: { email } });
  const confirm = (link: CreatedLink, email: string, code: string, headers: Record<string, string> = {}) =>
    publicApi(stack, 'POST', link.token, '/verify-email/confirm', { body: { email, code }, headers });

  test('without a verified address → 403 LINK_EMAIL_REQUIRED; a disallowed address gets 202 and no mail', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['bob@example.test', '@partner.test'] });
    assertError(await publicApi(stack, 'GET', link.token), 403, 'LINK_EMAIL_REQUIRED');
    assertError(await publicDownload(stack, link.token), 403, 'LINK_EMAIL_REQUIRED');
    for (const email of ['mallory@evil.test', 'x@sub.partner.test', 'bob@example.test.evil']) {
      const response = await verify(link, email);
      assert.equal(response.status, 202, response.text);
      assert.equal((await outbox(email)).length, 0, `no mail to ${email}`);
    }
    assertError(await verify(link, 'not an address'), 422, 'VALIDATION_ERROR');
    assertError(await confirm(link, 'mallory@evil.test', '123456'), 403, 'LINK_EMAIL_CODE_INVALID');
  });

  test('an allowed address (exact, any case) gets a code by mail; a wrong code → 403, the right one → a session → 200', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['bob@example.test', '@partner.test'] });
    const accepted = await verify(link, 'Bob@Example.TEST');
    assert.equal(accepted.status, 202);
    const mails = await outbox('bob@example.test');
    assert.equal(mails.length, 1);
    assert.equal(mails[0]!.subject, 'Your ScaiDrive verification code');
    assert.equal(mails[0]!.sent_at, null);
    const code = await codeFor('bob@example.test');
    const stored = await stack.services.db.selectFrom('link_email_codes').selectAll().where('link_id', '=', link.id).executeTakeFirstOrThrow();
    assert.ok(!stored.code_hash.includes(code), 'only a hash of the code is stored');
    assert.ok(stored.expires_at.getTime() - Date.now() > 590_000 && stored.expires_at.getTime() - Date.now() <= 600_000);

    const wrongCode = code === '000000' ? '000001' : '000000';
    assertError(await confirm(link, 'bob@example.test', wrongCode), 403, 'LINK_EMAIL_CODE_INVALID');
    const confirmed = await confirm(link, 'BOB@example.test', code);
    assert.equal(confirmed.status, 200, confirmed.text);
    assert.match(confirmed.headers.get('set-cookie') ?? '', /^scaidrive_link_session=[^;]+; Path=\/api\/v1\/public\/links; Max-Age=3600; HttpOnly; SameSite=Lax$/);
    const session = confirmed.body.session as string;
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': session } })).status, 200);
    assert.equal((await publicDownload(stack, link.token, '', { cookie: `scaidrive_link_session=${session}` })).status, 200);
    // The code is single-use.
    assertError(await confirm(link, 'bob@example.test', code), 403, 'LINK_EMAIL_CODE_INVALID');
    // Another link with the same list does not take this session.
    const other = await createLink(stack, alice.token, 'file', fileId, { require_email: ['bob@example.test'] });
    assertError(await publicApi(stack, 'GET', other.token, '', { headers: { 'x-link-session': session } }), 403, 'LINK_EMAIL_REQUIRED');
  });

  test('an @domain entry admits every address of that domain', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['@partner.test'] });
    assert.equal((await verify(link, 'carol@partner.test')).status, 202);
    const confirmed = await confirm(link, 'carol@partner.test', await codeFor('carol@partner.test'));
    assert.equal(confirmed.status, 200, confirmed.text);
    assert.equal((await publicDownload(stack, link.token, '', { 'x-link-session': confirmed.body.session })).status, 200);
  });

  test('a code allows 5 attempts; asking again within a minute sends no second mail', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['@partner.test'] });
    assert.equal((await verify(link, 'dave@partner.test')).status, 202);
    assert.equal((await verify(link, 'dave@partner.test')).status, 202);
    assert.equal((await outbox('dave@partner.test')).length, 1, 'one mail per minute');
    const code = await codeFor('dave@partner.test');
    const wrongCode = code === '999999' ? '999998' : '999999';
    const attempts = await Promise.all(Array.from({ length: 8 }, () => confirm(link, 'dave@partner.test', wrongCode)));
    assert.ok(attempts.every((r) => r.status === 403));
    assertError(await confirm(link, 'dave@partner.test', code), 403, 'LINK_EMAIL_CODE_INVALID');
    const row = await stack.services.db.selectFrom('link_email_codes').select('attempts').where('link_id', '=', link.id).executeTakeFirstOrThrow();
    assert.equal(row.attempts, 5);
    assert.equal((await verify(link, 'dave@partner.test')).status, 202);
    assert.equal((await outbox('dave@partner.test')).length, 1, 'no new code while the spent one is live');
  });

  test('password and email on one link: both proofs, in any order, end up in one session', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { require_email: ['erin@example.test'], password: 'both-factors' });
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-password': 'both-factors' } }), 403, 'LINK_EMAIL_REQUIRED');
    await verify(link, 'erin@example.test');
    const emailSession = await confirm(link, 'erin@example.test', await codeFor('erin@example.test'));
    assert.equal(emailSession.status, 200);
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': emailSession.body.session } }), 401, 'LINK_PASSWORD_REQUIRED');
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': emailSession.body.session, 'x-link-password': 'both-factors' } })).status, 200);
    const unlocked = await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: 'both-factors' }, headers: { 'x-link-session': emailSession.body.session } });
    assert.equal(unlocked.status, 200, unlocked.text);
    assert.equal((await publicDownload(stack, link.token, '', { 'x-link-session': unlocked.body.session })).status, 200);
  });
});
