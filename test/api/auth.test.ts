// Auth matrix against a real JWKS-serving issuer: every way a token can be wrong, key rotation, suspension.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { FakeIdentityProvider } from '../helpers/fake-identity-provider';

describe('authentication', () => {
  let idp: FakeIdentityProvider;
  let stack: TestStack;
  let tenantId: string;

  before(async () => {
    idp = await FakeIdentityProvider.start();
    stack = await startTestStack({ env: { SCAIDRIVE_SCAIKEY_URL: idp.url, SCAIDRIVE_JWT_AUDIENCE: idp.audience } });
    tenantId = (await createTestTenant(stack)).id;
  });
  after(async () => {
    await stack.close();
    await idp.close();
  });

  const me = (token: string) => api(stack.baseUrl, 'GET', '/api/v1/me', { token });
  const nowSeconds = () => Math.floor(Date.now() / 1000);

  test('a valid token is accepted and provisions the user just in time', async () => {
    const token = await idp.token({ tenantId, subject: 'alice', email: 'alice@corp.test' });
    const response = await me(token);
    assert.equal(response.status, 200);
    assert.equal(response.body.tenant_id, tenantId);
    assert.match(response.body.id, /^usr_/);
    const row = await stack.services.db.selectFrom('users').selectAll().where('id', '=', response.body.id).executeTakeFirstOrThrow();
    assert.equal(row.external_id, 'alice');
    assert.equal(row.email, 'alice@corp.test');
    // The second request finds the same user.
    assert.equal((await me(token)).body.id, response.body.id);
  });

  test('a missing token is 401 with WWW-Authenticate', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/me');
    assert.equal(response.status, 401);
    assert.equal(response.body.code, 'AUTH_TOKEN_INVALID');
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
  });

  test('an expired token is 401 AUTH_TOKEN_EXPIRED', async () => {
    const response = await me(await idp.token({ tenantId, subject: 'alice', expiresIn: nowSeconds() - 120 }));
    assert.equal(response.status, 401);
    assert.equal(response.body.code, 'AUTH_TOKEN_EXPIRED');
  });

  const rejected: [string, () => Promise<string>][] = [
    ['a not-yet-valid token (nbf in the future)', () => idp.token({ tenantId, subject: 'alice', notBefore: nowSeconds() + 600 })],
    ['a token from another issuer', () => idp.token({ tenantId, subject: 'alice', issuer: 'https://evil.example' })],
    ['a token for another audience', () => idp.token({ tenantId, subject: 'alice', audience: 'other-service' })],
    ['a token signed by a key not in the JWKS', () => idp.token({ tenantId, subject: 'alice', foreignKey: true })],
    [
      'a token whose payload was changed after signing',
      async () => {
        const [header, , signature] = (await idp.token({ tenantId, subject: 'alice' })).split('.');
        const forged = Buffer.from(JSON.stringify({ iss: idp.url, aud: idp.audience, sub: 'mallory', tenant_id: tenantId, exp: nowSeconds() + 3600 })).toString('base64url');
        return `${header}.${forged}.${signature}`;
      },
    ],
    ['an unsigned token (alg: none)', async () => idp.unsignedToken({ tenantId, subject: 'alice' })],
    ['an HS256 token using the public key as the secret', () => idp.hs256WithPublicKey({ tenantId, subject: 'alice' })],
    ['a token naming a tenant that does not exist', () => idp.token({ tenantId: 'ten_01J00000000000000000000000', subject: 'alice' })],
    ['garbage', async () => 'not-a-jwt'],
  ];
  for (const [name, makeToken] of rejected) {
    test(`${name} is 401 AUTH_TOKEN_INVALID`, async () => {
      const response = await me(await makeToken());
      assert.equal(response.status, 401, response.text);
      assert.equal(response.body.code, 'AUTH_TOKEN_INVALID');
      assert.equal(typeof response.body.detail, 'string');
      assert.ok(response.body.request_id);
    });
  }

  test('a key rotated after the JWKS was cached is picked up by one early refetch', async () => {
    assert.equal((await me(await idp.token({ tenantId, subject: 'alice' }))).status, 200);
    const fetchesBefore = idp.jwksFetches;
    assert.ok(fetchesBefore >= 1);
    await idp.rotate();
    await new Promise((r) => setTimeout(r, 1100)); // the unknown-kid refetch cooldown
    const response = await me(await idp.token({ tenantId, subject: 'alice' }));
    assert.equal(response.status, 200, response.text);
    assert.equal(idp.jwksFetches, fetchesBefore + 1);
    // Further tokens with the new key are served from the cache.
    assert.equal((await me(await idp.token({ tenantId, subject: 'bob' }))).status, 200);
    assert.equal(idp.jwksFetches, fetchesBefore + 1);
  });

  test('a suspended user gets 403 AUTHZ_USER_SUSPENDED until re-activated', async () => {
    const admin = await idp.token({ tenantId, subject: 'admin', roles: ['tenant_admin'] });
    const carolToken = await idp.token({ tenantId, subject: 'carol' });
    const carol = (await me(carolToken)).body;
    const deactivated = await api(stack.baseUrl, 'POST', `/api/v1/admin/users/${carol.id}/deactivate`, { token: admin });
    assert.equal(deactivated.status, 200);
    assert.equal(deactivated.body.is_active, false);
    const refused = await me(carolToken);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'AUTHZ_USER_SUSPENDED');
    assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/admin/users/${carol.id}/activate`, { token: admin })).status, 200);
    assert.equal((await me(carolToken)).status, 200);
  });

  test('roles come from the token: members cannot reach admin routes', async () => {
    const member = await idp.token({ tenantId, subject: 'dave' });
    const refused = await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: member });
    assert.equal(refused.status, 403);
    const admin = await idp.token({ tenantId, subject: 'erin', roles: ['tenant_admin'] });
    const allowed = await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: admin });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body.id, tenantId);
  });

  test('an admin cannot act on users of another tenant (404)', async () => {
    const otherTenant = (await createTestTenant(stack)).id;
    const outsider = (await me(await idp.token({ tenantId: otherTenant, subject: 'frank' }))).body;
    const admin = await idp.token({ tenantId, subject: 'admin', roles: ['tenant_admin'] });
    const response = await api(stack.baseUrl, 'POST', `/api/v1/admin/users/${outsider.id}/deactivate`, { token: admin });
    assert.equal(response.status, 404);
    assert.equal(response.body.code, 'NOT_FOUND');
  });
});
