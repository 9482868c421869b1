// Password-protected links (spec §8): X-Link-Password per request, /unlock → a 1-hour link session (X-Link-Session
// header or HttpOnly cookie) bound to one link, and wrong attempts limited per link and client address
// (429 LINK_RATE_LIMITED with Retry-After, even for the right password) — addresses via X-Forwarded-For from
// the trusted proxy 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { signLinkSession } from '../../src/services/link-session';
import { createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { assertError, standAtPasswordWindowStart, createLink, publicApi, publicDownload, type CreatedLink } from './link-helpers';

const password = 'open sesame 42';

describe('password-protected links', () => {
  let stack: TestStack;
  let alice: TestUser;
  let data: Buffer;
  let fileId: string;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    data = randomData(4096);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'locked.bin', data);
    assert.equal(upload.status, 201);
    fileId = upload.body.file.id;
  });
  after(() => stack.close());

  const from = (address: string, headers: Record<string, string> = {}) => ({ 'x-forwarded-for': address, ...headers });

  test('no password → 401 LINK_PASSWORD_REQUIRED, a wrong one → 401 LINK_PASSWORD_INVALID, the right one in X-Link-Password → 200', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    assertError(await publicApi(stack, 'GET', link.token), 401, 'LINK_PASSWORD_REQUIRED');
    assertError(await publicDownload(stack, link.token), 401, 'LINK_PASSWORD_REQUIRED');
    const wrong = await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-password': 'open sesame 43' } });
    assertError(wrong, 401, 'LINK_PASSWORD_INVALID');
    assert.equal(wrong.body.details.attempts_remaining, 9);
    const meta = await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-password': password } });
    assert.equal(meta.status, 200, meta.text);
    const content = await publicDownload(stack, link.token, '', { 'x-link-password': password });
    assert.equal(content.status, 200);
    assert.ok(content.body.equals(data));
    // Nothing was counted for the refused requests.
    const row = await stack.services.db.selectFrom('links').select(['view_count', 'download_count']).where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { view_count: 1, download_count: 1 });
  });

  test('a non-ASCII password works in X-Link-Password (as UTF-8 bytes) and via unlock', async () => {
    const unicode = 'pässwörd-ünicode-密码';
    const link = await createLink(stack, alice.token, 'file', fileId, { password: unicode });
    const utf8Header = Buffer.from(unicode, 'utf8').toString('latin1');
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-password': utf8Header } })).status, 200);
    assert.equal((await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: unicode } })).status, 200);
    const latin1Only = await createLink(stack, alice.token, 'file', fileId, { password: 'café' });
    assert.equal((await publicApi(stack, 'GET', latin1Only.token, '', { headers: { 'x-link-password': 'café' } })).status, 200, 'a latin1 header value still works');
  });

  test('unlock → a 1-hour session that works via X-Link-Session and via the cookie, for this link only', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    const other = await createLink(stack, alice.token, 'file', fileId, { password });
    assertError(await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: 'nope' } }), 401, 'LINK_PASSWORD_INVALID');
    assertError(await publicApi(stack, 'POST', link.token, '/unlock', { body: {} }), 422, 'VALIDATION_ERROR');

    const unlocked = await publicApi(stack, 'POST', link.token, '/unlock', { body: { password } });
    assert.equal(unlocked.status, 200, unlocked.text);
    const session: string = unlocked.body.session;
    const expiresIn = Date.parse(unlocked.body.expires_at) - Date.now();
    assert.ok(expiresIn > 3590_000 && expiresIn <= 3600_000, `expires in ${expiresIn} ms`);
    const cookie = unlocked.headers.get('set-cookie') ?? '';
    assert.match(cookie, new RegExp(`^scaidrive_link_session=${session.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')};`));
    for (const attribute of ['HttpOnly', 'SameSite=Lax', 'Path=/api/v1/public/links', 'Max-Age=3600']) assert.ok(cookie.split('; ').includes(attribute), `${attribute} in ${cookie}`);
    assert.ok(!session.includes(password) && !Buffer.from(session.split('.')[0]!, 'base64url').toString().includes(password));

    const viaHeader = await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': session } });
    assert.equal(viaHeader.status, 200, viaHeader.text);
    const viaCookie = await publicDownload(stack, link.token, '', { cookie: `scaidrive_link_session=${session}` });
    assert.equal(viaCookie.status, 200);
    assert.ok(viaCookie.body.equals(data));

    // Another link does not accept it, a tampered or expired session is no session.
    assertError(await publicApi(stack, 'GET', other.token, '', { headers: { 'x-link-session': session } }), 401, 'LINK_PASSWORD_REQUIRED');
    assertError(await publicDownload(stack, other.token, '', { cookie: `scaidrive_link_session=${session}` }), 401, 'LINK_PASSWORD_REQUIRED');
    const [payload, signature] = session.split('.');
    const tampered = `${payload}.${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'BB' : 'AA'}`;
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': tampered } }), 401, 'LINK_PASSWORD_REQUIRED');
    // The payload is signed: stretching the expiry with the old signature does not verify.
    const forgedPayload = Buffer.from(JSON.stringify([link.id, 1, null, Math.floor(Date.now() / 1000) + 7200])).toString('base64url');
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': `${forgedPayload}.${signature}` } }), 401, 'LINK_PASSWORD_REQUIRED');
    const key = stack.services.secretKey;
    const now = Math.floor(Date.now() / 1000);
    const expired = signLinkSession(key, { linkId: link.id, password: true, email: null, expiresAt: now - 1 });
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': expired } }), 401, 'LINK_PASSWORD_REQUIRED');
    const almostExpired = signLinkSession(key, { linkId: link.id, password: true, email: null, expiresAt: now + 30 });
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': almostExpired } })).status, 200, 'valid until its hour is over');
    // A session still does not get around the link's other checks.
    await stack.services.db.updateTable('links').set({ enabled: false }).where('id', '=', link.id).execute();
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-session': session } }), 410, 'LINK_DISABLED');
  });

  test('wrong passwords: 10 → 401, then 429 with Retry-After (the right one too); another address and another link are not limited', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { password });
    const otherLink = await createLink(stack, alice.token, 'file', fileId, { password });
    const attacker = '203.0.113.10';
    const now = standAtPasswordWindowStart(stack);
    for (let attempt = 1; attempt <= 10; attempt++) {
      const response = attempt % 2
        ? await publicApi(stack, 'GET', link.token, '', { headers: from(attacker, { 'x-link-password': `guess-${attempt}` }) })
        : await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: `guess-${attempt}` }, headers: from(attacker) });
      assertError(response, 401, 'LINK_PASSWORD_INVALID');
      assert.equal(response.body.details.attempts_remaining, 10 - attempt);
    }
    const limited = await publicApi(stack, 'GET', link.token, '', { headers: from(attacker, { 'x-link-password': 'guess-11' }) });
    assertError(limited, 429, 'LINK_RATE_LIMITED');
    const retryAfter = Number(limited.headers.get('retry-after'));
    const windowEnd = Math.ceil(now / 900_000) * 900_000;
    assert.equal(retryAfter, (windowEnd - now) / 1000, 'Retry-After points at the end of the 15-minute window');

    // While limited, even the right password is refused — per request and via unlock.
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: from(attacker, { 'x-link-password': password }) }), 429, 'LINK_RATE_LIMITED');
    assertError(await publicDownload(stack, link.token, '', from(attacker, { 'x-link-password': password })), 429, 'LINK_RATE_LIMITED');
    const unlock = await publicApi(stack, 'POST', link.token, '/unlock', { body: { password }, headers: from(attacker) });
    assertError(unlock, 429, 'LINK_RATE_LIMITED');
    assert.ok(unlock.headers.get('retry-after'));

    // Another client address (the proxy reports another client) is not limited; nor is another link.
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: from('203.0.113.11', { 'x-link-password': password }) })).status, 200);
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: from(`198.51.100.1, ${attacker}`, { 'x-link-password': password }) })).status, 429, 'the rightmost untrusted hop is the client');
    assert.equal((await publicApi(stack, 'GET', otherLink.token, '', { headers: from(attacker, { 'x-link-password': password }) })).status, 200);
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: { 'x-link-password': password } })).status, 200, 'the proxy itself (no X-Forwarded-For) is another address');

    const rows = await stack.services.db.selectFrom('link_password_failures').select(['address', 'failures']).where('link_id', '=', link.id).execute();
    assert.deepEqual(rows, [{ address: attacker, failures: 10 }]);
  });

  test('a session obtained before the lockout keeps working (it proves the password already)', async () => {
    const link: CreatedLink = await createLink(stack, alice.token, 'file', fileId, { password });
    const address = '203.0.113.20';
    standAtPasswordWindowStart(stack);
    const unlocked = await publicApi(stack, 'POST', link.token, '/unlock', { body: { password }, headers: from(address) });
    assert.equal(unlocked.status, 200);
    for (let attempt = 0; attempt < 10; attempt++) await publicApi(stack, 'GET', link.token, '', { headers: from(address, { 'x-link-password': 'wrong' }) });
    assertError(await publicApi(stack, 'GET', link.token, '', { headers: from(address, { 'x-link-password': password }) }), 429, 'LINK_RATE_LIMITED');
    assert.equal((await publicApi(stack, 'GET', link.token, '', { headers: from(address, { 'x-link-session': unlocked.body.session }) })).status, 200);
  });
});
