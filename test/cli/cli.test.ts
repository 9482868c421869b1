// The scaidrive CLI as an operator runs it: config fail-fast, doctor on a healthy and a broken stack,
// create-tenant and dev-token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { api, startTestStack, testEnv, type TestStack } from '../helpers/stack';

const bin = path.resolve('bin/scaidrive.mjs');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  // Only the given SCAIDRIVE_* variables: the CLI must not pick up the developer's own.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCAIDRIVE_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...base, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('configuration fails fast', () => {
  test('an unknown SCAIDRIVE_ key stops start-up naming it', async () => {
    const result = await cli(['doctor'], { ...(await testEnv()), SCAIDRIVE_DATABSE_URL: 'postgres://typo' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Unknown configuration variable SCAIDRIVE_DATABSE_URL/);
  });

  for (const [name, value] of [
    ['SCAIDRIVE_PORT', 'eighty'],
    ['SCAIDRIVE_DATABASE_URL', 'not a url'],
    ['SCAIDRIVE_LOG_LEVEL', 'loud'],
    ['SCAIDRIVE_TEMPORAL_ADDRESS', 'no-port'],
    ['SCAIDRIVE_JWT_ALGORITHMS', 'RS256,none'],
  ] as const) {
    test(`a bad ${name} stops start-up naming it`, async () => {
      const result = await cli(['api'], { ...(await testEnv()), [name]: value });
      assert.equal(result.code, 2);
      assert.match(result.stderr, new RegExp(`Invalid value for ${name}`));
    });
  }

  test('production without an identity issuer refuses to start', async () => {
    const result = await cli(['api'], { ...(await testEnv()), SCAIDRIVE_ENV: 'production' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /SCAIDRIVE_SCAIKEY_URL is required in production/);
  });
});

describe('scaidrive doctor', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ workers: true });
  });
  after(() => stack.close());

  const envOf = (s: TestStack): Record<string, string> => ({
    SCAIDRIVE_ENV: 'test',
    SCAIDRIVE_DATABASE_URL: s.config.database.url,
    SCAIDRIVE_TEMPORAL_ADDRESS: s.config.temporal.address,
    SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: s.config.temporal.taskQueuePrefix,
    SCAIDRIVE_DATA_DIR: s.config.dataDir,
    // Same port setting as the stack, so the dev issuer's `iss` (its public URL) matches.
    SCAIDRIVE_PORT: String(s.config.port),
    SCAIDRIVE_LOG_LEVEL: 'silent',
  });

  test('on a healthy stack: every check OK, exit 0', async () => {
    const result = await cli(['doctor'], envOf(stack));
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^CHECK\s+STATUS\s+DETAIL/m);
    for (const check of ['database \\+ migrations', 'temporal namespace', 'temporal search attributes', `worker pollers: ${stack.services.taskQueues.identity}`, 'storage read/write', 'identity JWKS']) {
      assert.match(result.stdout, new RegExp(`^${check}\\s+OK`, 'm'));
    }
    assert.match(result.stdout, /All checks passed/);
  });

  test('with Temporal unreachable and no workers: failing rows, exit 1', async () => {
    const result = await cli(['doctor'], { ...envOf(stack), SCAIDRIVE_TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^temporal namespace\s+FAIL\s+TEMPORAL_UNAVAILABLE/m);
    assert.match(result.stdout, /^database \+ migrations\s+OK/m);
    assert.match(result.stdout, /check\(s\) failed/);
  });

  test('a task queue nobody polls is reported', async () => {
    const result = await cli(['doctor'], { ...envOf(stack), SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: 'nobody-home' });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^worker pollers: nobody-home-identity\s+FAIL\s+TEMPORAL_NO_WORKER/m);
  });

  test('create-tenant prints the tenant; dev-token mints a token the API accepts', async () => {
    const created = await cli(['create-tenant', '--name', 'Acme', '--partner', 'Acme Partner'], envOf(stack));
    assert.equal(created.code, 0, created.stderr);
    const tenant = JSON.parse(created.stdout);
    assert.match(tenant.id, /^ten_/);
    assert.match(tenant.partner_id, /^ptn_/);
    assert.equal(tenant.settings.trash_retention_days, 30);

    const minted = await cli(['dev-token', '--tenant', tenant.id, '--user', 'zoe', '--admin'], envOf(stack));
    assert.equal(minted.code, 0, minted.stderr);
    const response = await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: minted.stdout.trim() });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.name, 'Acme');
  });
});
