// The error model (spec §3) for each status class reachable through the foundation's routes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';

function assertErrorShape(body: any, code: string): void {
  assert.equal(body.code, code);
  assert.equal(typeof body.request_id, 'string');
  assert.ok(body.detail !== undefined && body.detail !== '');
}

describe('error model', () => {
  let stack: TestStack;
  let admin: string;
  let member: string;

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_MAX_JSON_BODY_BYTES: '2048' } });
    const tenant = await createTestTenant(stack);
    admin = await tokenFor(stack, tenant.id, 'admin', { admin: true });
    member = await tokenFor(stack, tenant.id, 'member');
  });
  after(() => stack.close());

  test('every response carries X-Request-Id, echoed when well-formed and generated otherwise', async () => {
    const echoed = await api(stack.baseUrl, 'GET', '/api/v1/health', { headers: { 'x-request-id': 'client-abc.123' } });
    assert.equal(echoed.headers.get('x-request-id'), 'client-abc.123');
    const generated = await api(stack.baseUrl, 'GET', '/api/v1/health', { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.match(generated.headers.get('x-request-id')!, /^req_[0-9A-Z]{26}$/);
    const failing = await api(stack.baseUrl, 'GET', '/api/v1/nothing-here');
    assert.equal(failing.body.request_id, failing.headers.get('x-request-id'));
  });

  test('unknown route → 404 NOT_FOUND in the error shape', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/does-not-exist');
    assert.equal(response.status, 404);
    assertErrorShape(response.body, 'NOT_FOUND');
    assert.equal((await api(stack.baseUrl, 'GET', '/totally/elsewhere')).status, 404);
  });

  test('wrong method → 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const response = await api(stack.baseUrl, 'DELETE', '/api/v1/health');
    assert.equal(response.status, 405);
    assertErrorShape(response.body, 'METHOD_NOT_ALLOWED');
    assert.match(response.headers.get('allow') ?? '', /GET/);
  });

  test('schema violations → 422 with the seed\'s {loc, msg, type} entries', async () => {
    const response = await api(stack.baseUrl, 'PATCH', '/api/v1/admin/tenant', {
      token: admin,
      body: { name: '', settings: { trash_retention_days: 'thirty', upload_session_ttl_hours: 100000, max_file_size_bytes: 0, default_user_quota_bytes: true } },
    });
    assert.equal(response.status, 422);
    assertErrorShape(response.body, 'VALIDATION_ERROR');
    const byField = Object.fromEntries(response.body.detail.map((i: any) => [i.loc.join('.'), i]));
    assert.equal(byField['body.name'].type, 'string_too_short');
    assert.equal(byField['body.settings.trash_retention_days'].type, 'int_type');
    assert.equal(byField['body.settings.upload_session_ttl_hours'].type, 'less_than_equal');
    assert.equal(byField['body.settings.upload_session_ttl_hours'].msg, 'Input should be less than or equal to 720');
    assert.equal(byField['body.settings.max_file_size_bytes'].type, 'greater_than_equal');
    assert.equal(byField['body.settings.default_user_quota_bytes'].type, 'int_type');
  });

  test('missing fields, enums and booleans use missing / enum / string_type types', async () => {
    const missing = await api(stack.baseUrl, 'POST', '/api/v1/admin/api-keys', { token: admin, body: {} });
    assert.equal(missing.status, 422);
    assert.deepEqual(missing.body.detail.map((i: any) => [i.loc, i.type]), [
      [['body', 'name'], 'missing'],
      [['body', 'scopes'], 'missing'],
    ]);
    const badEnum = await api(stack.baseUrl, 'POST', '/api/v1/admin/api-keys', { token: admin, body: { name: 42, scopes: ['root'] } });
    assert.deepEqual(badEnum.body.detail.map((i: any) => [i.loc, i.type]), [
      [['body', 'name'], 'string_type'],
      [['body', 'scopes', 0], 'enum'],
    ]);
    assert.match(badEnum.body.detail[1].msg, /'admin', 'files:read' or 'files:write'/);
  });

  test('query validation → 422 with loc ["query", …]; malformed cursor → 400', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/admin/users?limit=5000', { token: admin });
    assert.equal(response.status, 422);
    assert.deepEqual(response.body.detail[0].loc, ['query', 'limit']);
    assert.equal(response.body.detail[0].type, 'less_than_equal');
    const notNumber = await api(stack.baseUrl, 'GET', '/api/v1/admin/users?limit=abc', { token: admin });
    assert.equal(notNumber.body.detail[0].type, 'int_type');
    const cursor = await api(stack.baseUrl, 'GET', '/api/v1/admin/users?cursor=%%%garbage', { token: admin });
    assert.equal(cursor.status, 400);
    assertErrorShape(cursor.body, 'INVALID_CURSOR');
  });

  test('malformed JSON → 422 at loc ["body"], never a 500', async () => {
    const response = await api(stack.baseUrl, 'PATCH', '/api/v1/admin/tenant', { token: admin, body: '{"name": "x",', headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 422);
    assertErrorShape(response.body, 'VALIDATION_ERROR');
    assert.deepEqual(response.body.detail[0].loc, ['body']);
  });

  test('a non-JSON body → 415', async () => {
    const response = await api(stack.baseUrl, 'PATCH', '/api/v1/admin/tenant', { token: admin, body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(response.status, 415);
    assertErrorShape(response.body, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('an oversized body → 413 PAYLOAD_TOO_LARGE, declared or streamed', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(5000) });
    const declared = await api(stack.baseUrl, 'PATCH', '/api/v1/admin/tenant', { token: admin, body: big, headers: { 'content-type': 'application/json' } });
    assert.equal(declared.status, 413);
    assertErrorShape(declared.body, 'PAYLOAD_TOO_LARGE');
    // Chunked transfer: no Content-Length, the limit is enforced by counting.
    const chunked = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL(`${stack.baseUrl}/api/v1/admin/tenant`);
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PATCH', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(big.slice(i * 500, (i + 1) * 500));
      req.end(big.slice(5000));
    });
    assert.equal(chunked.status, 413);
    assertErrorShape(chunked.body, 'PAYLOAD_TOO_LARGE');
  });

  test('huge headers → 431 with a JSON body', async () => {
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(stack.baseUrl);
      const req = http.request({ host: url.hostname, port: url.port, path: '/api/v1/health', headers: { 'x-padding': 'a'.repeat(32 * 1024) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(response.status, 431);
    assert.equal(JSON.parse(response.text).code, 'HEADERS_TOO_LARGE');
  });

  test('member on an admin route → 403 FORBIDDEN', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/admin/users', { token: member });
    assert.equal(response.status, 403);
    assertErrorShape(response.body, 'FORBIDDEN');
  });

  test('duplicate → 409 CONFLICT', async () => {
    assert.equal((await api(stack.baseUrl, 'POST', '/api/v1/admin/groups', { token: admin, body: { name: 'Finance' } })).status, 201);
    const duplicate = await api(stack.baseUrl, 'POST', '/api/v1/admin/groups', { token: admin, body: { name: 'FINANCE' } });
    assert.equal(duplicate.status, 409);
    assertErrorShape(duplicate.body, 'CONFLICT');
  });

  test('a path with a malformed escape is 400, not 500', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/admin/groups/%E0%A4%A', { token: admin });
    assert.ok(response.status === 400 || response.status === 404, `got ${response.status}`);
    assert.ok(response.body.code);
  });
});
