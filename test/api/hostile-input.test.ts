// Hostile input never reaches SQL (issue #7, findings 9 and 10 and the low ones): NUL bytes and unpaired
// surrogates anywhere, forged cursors on every list, bodies in other charsets, claims with NUL — always a
// 4xx in the spec's error shape, never a 500.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, tokenFor, withStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';

const V1 = '/api/v1';
const cursorOf = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('hostile input', () => {
  const ctx = withStack();
  let admin: TestUser;

  before(async () => {
    admin = await newUser(ctx.stack, ctx.tenantId, 'admin', { admin: true });
  });

  test('NUL and unpaired surrogates in path, query and body are refused before SQL', async () => {
    const token = admin.token;
    assertError(await api(ctx.stack.baseUrl, 'GET', `${V1}/files/fil_%00`, { token }), 400, 'BAD_REQUEST', 'path NUL');
    assertError(await api(ctx.stack.baseUrl, 'GET', `${V1}/folders/%00/children`, { token }), 400, 'BAD_REQUEST', 'path NUL only');
    // Percent-encoded surrogate halves are not UTF-8: the router never decodes them into a string, so no such file.
    assertError(await api(ctx.stack.baseUrl, 'GET', `${V1}/files/%ED%A0%80`, { token }), 404, 'NOT_FOUND', 'path encoded surrogate');
    const query = await api(ctx.stack.baseUrl, 'GET', `${V1}/trash?space_id=%00`, { token });
    assertError(query, 422, 'VALIDATION_ERROR', 'query NUL');
    assert.deepEqual(query.body.detail[0].loc, ['query', 'space_id']);
    const body = await api(ctx.stack.baseUrl, 'POST', `${V1}/folders`, { token, body: `{"parent_id":"${admin.rootFolderId}","name":"a\\u0000b"}`, headers: { 'content-type': 'application/json' } });
    assertError(body, 422, 'VALIDATION_ERROR', 'body NUL');
    assert.deepEqual(body.body.detail[0].loc, ['body', 'name']);
    const surrogate = await api(ctx.stack.baseUrl, 'POST', `${V1}/shares`, { token, body: '{"name":"x\\ud800"}', headers: { 'content-type': 'application/json' } });
    assertError(surrogate, 422, 'VALIDATION_ERROR', 'body lone surrogate');
    const key = await api(ctx.stack.baseUrl, 'POST', `${V1}/admin/groups`, { token, body: '{"name":"g","\\u0000":1}', headers: { 'content-type': 'application/json' } });
    assertError(key, 422, 'VALIDATION_ERROR', 'object key NUL');
    const huge = await api(ctx.stack.baseUrl, 'GET', `${V1}/admin/users?limit=1e400`, { token });
    assertError(huge, 422, 'VALIDATION_ERROR', 'huge limit');
    const unauthenticated = await api(ctx.stack.baseUrl, 'GET', `${V1}/public/links/${'a'.repeat(43)}/children?folder_id=%00`);
    assert.ok(unauthenticated.status >= 400 && unauthenticated.status < 500, `public link NUL: ${unauthenticated.status}`);
    assertError(unauthenticated, unauthenticated.status, unauthenticated.body.code);
  });

  test('every list answers 400 INVALID_CURSOR to a forged cursor', async () => {
    const lists = [
      `${V1}/trash`,
      `${V1}/admin/audit`,
      `${V1}/admin/users`,
      `${V1}/admin/groups`,
      `${V1}/folders/${admin.rootFolderId}/children`,
      `${V1}/shares`,
    ];
    const forged = [
      cursorOf(['garbage', 'x']),
      cursorOf('1e400'),
      cursorOf('-1'),
      cursorOf('1e300'),
      cursorOf({ name: 1 }),
      cursorOf({ name: 'a\u0000', id: 'x' }),
      cursorOf('"\u0000"'),
      cursorOf('[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]'),
      'not base64!',
      '%00',
      cursorOf('{"name":"\\ud800","id":"x"}'),
    ];
    for (const list of lists) {
      const first = await api(ctx.stack.baseUrl, 'GET', `${list}?limit=1`, { token: admin.token });
      assert.equal(first.status, 200, `${list}: ${first.text}`);
      for (const cursor of forged) {
        const res = await api(ctx.stack.baseUrl, 'GET', `${list}?cursor=${encodeURIComponent(cursor)}`, { token: admin.token });
        // A cursor that decodes to a well-formed key of the list's own shape is not forged, just unknown: 200.
        if (res.status === 200) continue;
        assert.ok(res.status === 400 || res.status === 422, `${list} cursor ${cursor}: ${res.status} ${res.text}`);
        if (res.status === 400) assertError(res, 400, 'INVALID_CURSOR', `${list} cursor ${cursor}`);
      }
      const garbage = await api(ctx.stack.baseUrl, 'GET', `${list}?cursor=${cursorOf(['garbage', 'x'])}`, { token: admin.token });
      if (list.endsWith('/trash') || list.endsWith('/audit') || list.endsWith('/children')) assertError(garbage, 400, 'INVALID_CURSOR', list);
    }
  });

  test('a JSON body in another charset is 415; UTF-8 declared explicitly is fine', async () => {
    const latin1 = await api(ctx.stack.baseUrl, 'POST', `${V1}/shares`, { token: admin.token, body: '{"name":"caf\u00e9"}', headers: { 'content-type': 'application/json; charset=latin1' } });
    assertError(latin1, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const utf8 = await api(ctx.stack.baseUrl, 'POST', `${V1}/shares`, { token: admin.token, body: '{"name":"caf\u00e9"}', headers: { 'content-type': 'application/json; charset=UTF-8' } });
    assert.equal(utf8.status, 201, utf8.text);
    assert.equal(utf8.body.name, 'caf\u00e9');
  });

  test('a signed token whose claims carry NUL is 401, not a database error', async () => {
    for (const claims of [{ subject: 'eve\u0000' }, { subject: 'eve', email: 'eve\u0000@example.test' }, { subject: 'eve\ud800' }]) {
      const token = await ctx.stack.services.devIssuer!.sign({ tenantId: ctx.tenantId, subject: claims.subject, email: claims.email ?? 'eve@example.test', roles: [] });
      assertError(await api(ctx.stack.baseUrl, 'GET', `${V1}/me`, { token }), 401, 'AUTH_TOKEN_INVALID', JSON.stringify(claims));
    }
    const ok = await api(ctx.stack.baseUrl, 'GET', `${V1}/me`, { token: await tokenFor(ctx.stack, ctx.tenantId, 'eve') });
    assert.equal(ok.status, 200);
  });
});
