// The scaidrive CLI as an operator runs it: config fail-fast, doctor on a healthy and a broken stack,
// create-tenant and dev-token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { api, harness, startTestStack, testEnv, type TestStack } from '../helpers/stack';
import { FakeIdentityProvider } from '../helpers/fake-identity-provider';

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
    // Workers for every task queue, the search ones included, and the harness's Weaviate.
    stack = await startTestStack({ search: true });
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
    SCAIDRIVE_WEAVIATE_URL: s.config.weaviateUrl!,
    SCAIDRIVE_WEAVIATE_GRPC_PORT: String(s.config.weaviateGrpcPort),
  });

  test('on a healthy stack: every check OK, exit 0', async () => {
    const result = await cli(['doctor'], envOf(stack));
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^CHECK\s+STATUS\s+DETAIL/m);
    for (const check of ['database \\+ migrations', 'temporal namespace', 'temporal search attributes', `worker pollers: ${stack.services.taskQueues.identity}`, `worker pollers: ${stack.services.taskQueues['search-low']}`, 'storage read/write', 'weaviate', 'embedding provider', 'identity JWKS']) {
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

describe('CLI commands next to a dev stack (no SCAIDRIVE_ENV, no secrets)', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack.close());

  /** What a developer's second shell has: the database, the dev stack's data dir and port — nothing else. */
  const shellEnv = (s: TestStack): Record<string, string> => ({
    SCAIDRIVE_DATABASE_URL: s.config.database.url,
    SCAIDRIVE_DATA_DIR: s.config.dataDir,
    SCAIDRIVE_PORT: String(s.config.port),
    SCAIDRIVE_LOG_LEVEL: 'silent',
  });

  test('migrate and create-tenant need only the database, even with SCAIDRIVE_ENV=production', async () => {
    for (const env of [shellEnv(stack), { ...shellEnv(stack), SCAIDRIVE_ENV: 'production' }]) {
      const migrated = await cli(['migrate'], env);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.match(migrated.stdout, /Database is up to date/);
      const created = await cli(['create-tenant', '--name', 'Second shell'], env);
      assert.equal(created.code, 0, created.stderr);
      assert.match(JSON.parse(created.stdout).id, /^ten_/);
    }
  });

  test('dev-token mints a token the running stack accepts, for a tenant that exists', async () => {
    const created = await cli(['create-tenant', '--name', 'Token tenant'], shellEnv(stack));
    const tenant = JSON.parse(created.stdout);
    const minted = await cli(['dev-token', '--tenant', tenant.id, '--user', 'yara', '--admin'], shellEnv(stack));
    assert.equal(minted.code, 0, minted.stderr);
    const response = await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: minted.stdout.trim() });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.id, tenant.id);

    const unknown = await cli(['dev-token', '--tenant', 'ten_01ARZ3NDEKTSV4RRFFQ69G5FAV', '--user', 'yara'], shellEnv(stack));
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Tenant ten_01ARZ3NDEKTSV4RRFFQ69G5FAV does not exist/);
    const badExpiry = await cli(['dev-token', '--tenant', tenant.id, '--user', 'yara', '--expires-in', 'soon'], shellEnv(stack));
    assert.equal(badExpiry.code, 2);
    assert.match(badExpiry.stderr, /--expires-in/);
  });

  test('dev-token in a directory without the dev stack\'s key refuses instead of minting with a new key', async () => {
    const elsewhere = await mkdtemp(path.join(harness.dataDir, 'elsewhere-'));
    const result = await cli(['dev-token', '--tenant', 'ten_01ARZ3NDEKTSV4RRFFQ69G5FAV', '--user', 'yara'], { ...shellEnv(stack), SCAIDRIVE_DATA_DIR: elsewhere });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /No dev issuer key at .*dev-issuer-key\.json: start `scaidrive dev` first/);
  });
});

describe('scaidrive dev with a real identity issuer', () => {
  let idp: FakeIdentityProvider;
  before(async () => {
    idp = await FakeIdentityProvider.start();
  });
  after(() => idp.close());

  const freePort = () =>
    new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });

  test('starts, prints where tokens come from (no dev token), and accepts the issuer\'s tokens', { timeout: 180_000 }, async () => {
    const port = await freePort();
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCAIDRIVE_')));
    const env = {
      ...base,
      SCAIDRIVE_SCAIKEY_URL: idp.url,
      SCAIDRIVE_JWT_AUDIENCE: idp.audience,
      SCAIDRIVE_DATABASE_URL: harness.databaseUrl,
      // The harness's Temporal already listens there, so dev does not start one of its own.
      SCAIDRIVE_TEMPORAL_ADDRESS: harness.temporalAddress,
      // And its Weaviate: dev starts no local one when SCAIDRIVE_WEAVIATE_URL is set.
      SCAIDRIVE_WEAVIATE_URL: harness.weaviateUrl,
      SCAIDRIVE_WEAVIATE_GRPC_PORT: String(harness.weaviateGrpcPort),
      // The database is every test file's: this dev stack must not dispatch their vectorization entries.
      SCAIDRIVE_SEARCH_DISPATCHER: 'false',
      SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: `cli-dev-${randomUUID().slice(0, 8)}`,
      SCAIDRIVE_DATA_DIR: await mkdtemp(path.join(harness.dataDir, 'dev-')),
      SCAIDRIVE_TOOLS_DIR: harness.toolsDir,
      SCAIDRIVE_PORT: String(port),
      SCAIDRIVE_DATABASE_POOL_SIZE: '5',
      SCAIDRIVE_LOG_LEVEL: 'silent',
    };
    const child = spawn(process.execPath, [bin, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const banner = await Promise.race([
        new Promise<string>((resolve) => {
          const check = () => (/Dev tenant[\s\S]*\n\n/.test(stdout) ? resolve(stdout) : setTimeout(check, 100));
          check();
        }),
        exited.then((code) => {
          throw new Error(`scaidrive dev exited with ${code}: ${stderr}`);
        }),
      ]);
      assert.match(banner, /ScaiDrive is running:/);
      assert.match(banner, new RegExp(`API +http://127\\.0\\.0\\.1:${port}/api/v1`));
      assert.doesNotMatch(banner, /Admin token|dev-token|eyJ/, 'no dev-issuer token with a real issuer configured');
      assert.ok(banner.includes(`from your identity issuer ${idp.url}`), banner);
      const tenantId = /Dev tenant +(ten_\w+)/.exec(banner)![1]!;
      assert.ok(banner.includes(`tenant_id=${tenantId}`), banner);

      const token = await idp.token({ tenantId, subject: 'dev-user', roles: ['tenant_admin'] });
      const me = await api(`http://127.0.0.1:${port}`, 'GET', '/api/v1/admin/tenant', { token });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.id, tenantId);
      assert.equal(child.exitCode, null, 'still running');
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  });
});
