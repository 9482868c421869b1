// Operations endpoints: liveness, readiness (and its 503 naming the failing dependency), metrics, OpenAPI, Swagger UI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { api, startTestStack, type TestStack } from '../helpers/stack';
import { signScaikeyWebhook } from '../../src/api/routes/webhooks.router';

const run = promisify(execFile);

describe('health, metrics and API docs', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack.close());

  test('GET /health is 200', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/health');
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { status: 'ok' });
  });

  test('GET /health/ready is 200 with every dependency green', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/v1/health/ready');
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.status, 'ready');
    for (const name of ['database', 'temporal', 'storage']) assert.equal(response.body.checks[name].status, 'ok', name);
    assert.equal(response.body.checks.weaviate.status, 'not_configured');
  });

  test('GET /metrics exposes the HTTP latency histogram by route', async () => {
    await api(stack.baseUrl, 'GET', '/api/v1/health');
    const response = await api(stack.baseUrl, 'GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(response.text, /scaidrive_http_request_duration_seconds_bucket\{[^}]*route="\/api\/v1\/health"/);
    assert.match(response.text, /# TYPE scaidrive_chunks_deduplicated_total counter/);
  });

  test('GET /api/openapi.json is an OpenAPI 3.1 document generated from the route schemas', async () => {
    const response = await api(stack.baseUrl, 'GET', '/api/openapi.json');
    assert.equal(response.status, 200);
    assert.equal(response.body.openapi, '3.1.0');
    const paths = response.body.paths;
    for (const path of ['/api/v1/health/ready', '/api/v1/me', '/api/v1/admin/tenant', '/api/v1/admin/users/{id}/deactivate', '/api/v1/webhooks/scaikey']) {
      assert.ok(paths[path], `missing ${path}`);
    }
    const patchTenant = paths['/api/v1/admin/tenant'].patch;
    assert.ok(patchTenant.requestBody.content['application/json'].schema);
    assert.ok(patchTenant.responses['422']);
    assert.deepEqual(paths['/api/v1/admin/users/{id}/deactivate'].post.parameters.map((p: any) => [p.in, p.name]), [['path', 'id']]);
  });

  test('the Swagger UI renders the spec in a real browser', async (t) => {
    const page = await api(stack.baseUrl, 'GET', '/api/docs');
    assert.equal(page.status, 200);
    assert.match(page.text, /swagger-ui-bundle\.js/);
    assert.equal((await api(stack.baseUrl, 'GET', '/api/docs/swagger-ui-bundle.js')).status, 200);
    const chromium = '/usr/bin/chromium';
    assert.ok(existsSync(chromium), 'chromium is installed by scripts/setup.sh');
    const { stdout } = await run(
      chromium,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${stack.config.dataDir}/chromium`, '--virtual-time-budget=15000', '--dump-dom', `${stack.baseUrl}/api/docs`],
      { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
    t.diagnostic(`rendered DOM: ${stdout.length} characters`);
    assert.match(stdout, /ScaiDrive API/);
    assert.match(stdout, /class="[^"]*opblock[^"]*"/);
    assert.match(stdout, /\/api\/v1\/health\/ready/);
  });
});

describe('readiness when a dependency is down', () => {
  test('Temporal unreachable → 503 naming temporal', async () => {
    const stack = await startTestStack({ env: { SCAIDRIVE_TEMPORAL_ADDRESS: '127.0.0.1:1', SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET: 'webhook-secret-for-tests-0123456789' } });
    try {
      // A request that needs a workflow gets 503 (retry later), not a 500.
      const body = JSON.stringify({ id: 'evt-down', type: 'user.deactivated', tenant_id: 'ten_x', subject: 'x' });
      const timestamp = Math.floor(Date.now() / 1000);
      const webhook = await api(stack.baseUrl, 'POST', '/api/v1/webhooks/scaikey', {
        body,
        headers: { 'content-type': 'application/json', 'x-scaikey-timestamp': String(timestamp), 'x-scaikey-signature': signScaikeyWebhook('webhook-secret-for-tests-0123456789', timestamp, body) },
      });
      assert.equal(webhook.status, 503, webhook.text);
      assert.equal(webhook.body.code, 'SERVICE_UNAVAILABLE');
      assert.ok(webhook.headers.get('retry-after'));

      const response = await api(stack.baseUrl, 'GET', '/api/v1/health/ready');
      assert.equal(response.status, 503);
      assert.equal(response.body.code, 'SERVICE_UNAVAILABLE');
      assert.deepEqual(response.body.details.failing, ['temporal']);
      assert.deepEqual(response.body.details.failing_codes, ['TEMPORAL_UNAVAILABLE']);
      assert.match(response.body.detail, /temporal/);
      assert.equal(response.body.details.checks.database.status, 'ok');
      // Liveness is unaffected.
      assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/health')).status, 200);
    } finally {
      await stack.close();
    }
  });

  test('database unreachable → 503 naming database', async () => {
    const stack = await startTestStack({ env: { SCAIDRIVE_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/scaidrive_test' } });
    try {
      const response = await api(stack.baseUrl, 'GET', '/api/v1/health/ready');
      assert.equal(response.status, 503);
      assert.deepEqual(response.body.details.failing, ['database']);
      assert.deepEqual(response.body.details.failing_codes, ['DATABASE_UNAVAILABLE']);
      assert.equal(response.body.details.checks.temporal.status, 'ok');
    } finally {
      await stack.close();
    }
  });
});
