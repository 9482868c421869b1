// End to end through the API, the Temporal dev server and a worker: a signed ScaiKey webhook deactivates a
// user via the identity-event workflow; bad signatures are refused and a replay changes nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { signScaikeyWebhook } from '../../src/api/routes/webhooks.router';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';

const secret = 'webhook-secret-for-tests-0123456789';

describe('ScaiKey webhook → identity-event workflow', () => {
  let stack: TestStack;
  let tenantId: string;

  before(async () => {
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET: secret } });
    tenantId = (await createTestTenant(stack)).id;
  });
  after(() => stack.close());

  function deliver(event: object, options: { secret?: string; timestamp?: number; requestId?: string } = {}) {
    const body = JSON.stringify(event);
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    return api(stack.baseUrl, 'POST', '/api/v1/webhooks/scaikey', {
      body,
      headers: {
        'content-type': 'application/json',
        'x-scaikey-timestamp': String(timestamp),
        'x-scaikey-signature': signScaikeyWebhook(options.secret ?? secret, timestamp, body),
        ...(options.requestId ? { 'x-request-id': options.requestId } : {}),
      },
    });
  }

  test('a signed user.deactivated event suspends the user through the workflow', async () => {
    const token = await tokenFor(stack, tenantId, 'gina');
    assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/me', { token })).status, 200);

    const event = { id: `evt-${Date.now()}-1`, type: 'user.deactivated', tenant_id: tenantId, subject: 'gina' };
    const response = await deliver(event, { requestId: 'webhook-req-1' });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.status, 'applied');
    assert.equal(response.body.workflow_id, `identity-event/${event.id}`);

    const refused = await api(stack.baseUrl, 'GET', '/api/v1/me', { token });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'AUTHZ_USER_SUSPENDED');

    // The workflow is visible in Temporal with its search attribute and the request id in its memo.
    const description = await stack.services.temporal.workflow.getHandle(response.body.workflow_id).describe();
    assert.equal(description.status.name, 'COMPLETED');
    assert.equal(description.taskQueue, stack.services.taskQueues.identity);
    assert.deepEqual(description.searchAttributes.ScaiTenantId, [tenantId]);
    assert.equal((await description.memo)?.request_id, 'webhook-req-1');
  });

  test('replaying the same event is harmless and reported as a duplicate', async () => {
    const token = await tokenFor(stack, tenantId, 'hank');
    await api(stack.baseUrl, 'GET', '/api/v1/me', { token });
    const deactivate = { id: `evt-${Date.now()}-2`, type: 'user.deactivated', tenant_id: tenantId, subject: 'hank' };
    assert.equal((await deliver(deactivate)).body.status, 'applied');

    // An admin re-activates hank; a replay of the old deactivation must not suspend him again.
    const admin = await tokenFor(stack, tenantId, 'root', { admin: true });
    const hank = await stack.services.db.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('external_id', '=', 'hank').executeTakeFirstOrThrow();
    assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/admin/users/${hank.id}/activate`, { token: admin })).status, 200);

    const replay = await deliver(deactivate);
    assert.equal(replay.status, 200);
    assert.equal(replay.body.status, 'duplicate');
    assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/me', { token })).status, 200);
    const events = await stack.services.db.selectFrom('identity_events').selectAll().where('id', '=', deactivate.id).execute();
    assert.equal(events.length, 1);
  });

  test('an event for a user never seen before pre-creates them inactive', async () => {
    const event = { id: `evt-${Date.now()}-3`, type: 'user.deactivated', tenant_id: tenantId, subject: 'ivy' };
    assert.equal((await deliver(event)).status, 200);
    const response = await api(stack.baseUrl, 'GET', '/api/v1/me', { token: await tokenFor(stack, tenantId, 'ivy') });
    assert.equal(response.status, 403);
    assert.equal(response.body.code, 'AUTHZ_USER_SUSPENDED');
  });

  test('a bad signature, a stale timestamp or no signature is 401 and starts nothing', async () => {
    const event = { id: `evt-${Date.now()}-4`, type: 'user.deactivated', tenant_id: tenantId, subject: 'jack' };
    const forged = await deliver(event, { secret: 'some-other-secret-0123456789' });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.code, 'WEBHOOK_SIGNATURE_INVALID');
    const stale = await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    assert.equal(stale.status, 401);
    const unsigned = await api(stack.baseUrl, 'POST', '/api/v1/webhooks/scaikey', { body: event });
    assert.equal(unsigned.status, 401);
    const events = await stack.services.db.selectFrom('identity_events').selectAll().where('id', '=', event.id).execute();
    assert.equal(events.length, 0);
  });

  test('a signed but malformed event is 422', async () => {
    const response = await deliver({ id: 'evt-x', type: 'user.exploded', tenant_id: tenantId, subject: 'k' });
    assert.equal(response.status, 422);
    assert.equal(response.body.detail[0].type, 'enum');
  });
});
