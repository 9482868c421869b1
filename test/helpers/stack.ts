// Test helpers: a config pointing at the harness's services, an in-process API on a free port, workers on a
// task queue of the test's own, tenants and tokens.
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type { Dispatcher } from 'undici';
import { after, before } from 'node:test';
import { loadConfig, type Config, type ConfigVariable } from '../../src/config';
import { createServices, type Services } from '../../src/bootstrap';
import { closeServer, createApp, listen } from '../../src/api/app';
import { createTenant } from '../../src/services/identity.service';
import { createWorkers, type WorkerSet } from '../../src/workers/worker-runtime';
import { taskQueueKinds } from '../../src/temporal/task-queues';
import type { TenantSettings } from '../../src/db/database';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` (the harness starts the services)`);
  return value;
}

export const harness = {
  get databaseUrl() {
    return required('TEST_DATABASE_URL');
  },
  get temporalAddress() {
    return required('TEST_TEMPORAL_ADDRESS');
  },
  get dataDir() {
    return required('TEST_DATA_DIR');
  },
  get toolsDir() {
    return required('TEST_TOOLS_DIR');
  },
  get weaviateUrl() {
    return required('TEST_WEAVIATE_URL');
  },
  get weaviateGrpcPort() {
    return Number(required('TEST_WEAVIATE_GRPC_PORT'));
  },
};

/** The environment a test stack runs with; each call gets its own data dir and task-queue prefix. */
export async function testEnv(overrides: Partial<Record<ConfigVariable, string>> = {}): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(path.join(harness.dataDir, 'stack-'));
  return {
    SCAIDRIVE_ENV: 'test',
    // TEST_LOG_LEVEL=debug shows the stacks' own log lines when diagnosing a test.
    SCAIDRIVE_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SCAIDRIVE_DATABASE_URL: harness.databaseUrl,
    SCAIDRIVE_DATABASE_POOL_SIZE: '10',
    SCAIDRIVE_TEMPORAL_ADDRESS: harness.temporalAddress,
    SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: `t-${randomUUID().slice(0, 8)}`,
    SCAIDRIVE_DATA_DIR: dataDir,
    SCAIDRIVE_TOOLS_DIR: harness.toolsDir,
    SCAIDRIVE_PORT: '0',
    // Rate limits are tested on their own (test/api/rate-limits.test.ts); other tests must not run into them.
    SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: '1000000',
    SCAIDRIVE_RATE_LIMIT_API_KEY_PER_MINUTE: '1000000',
    SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: '1000000',
    ...overrides,
  };
}

export interface TestStack {
  config: Config;
  services: Services;
  baseUrl: string;
  server: http.Server;
  workers?: WorkerSet;
  /** Tenants made by createTestTenant: the only ones this stack's search dispatcher serves (the database is shared). */
  tenantIds: string[];
  close(): Promise<void>;
}

/**
 * `workers` runs workers for every task queue but the search ones; `search` adds those (and the vectorization
 * dispatcher) and points the stack at the harness's Weaviate.
 */
export async function startTestStack(options: { env?: Partial<Record<ConfigVariable, string>>; workers?: boolean; search?: boolean } = {}): Promise<TestStack> {
  const searchEnv = options.search ? { SCAIDRIVE_WEAVIATE_URL: harness.weaviateUrl, SCAIDRIVE_WEAVIATE_GRPC_PORT: String(harness.weaviateGrpcPort) } : {};
  const config = loadConfig(await testEnv({ ...searchEnv, ...options.env }), {});
  const services = await createServices(config, 'test');
  await services.storage.ensureReady();
  const { app } = createApp(services);
  const server = await listen(app, '127.0.0.1', 0);
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let workers: WorkerSet | undefined;
  let running: Promise<void> | undefined;
  const tenantIds: string[] = [];
  if (options.workers || options.search) {
    const kinds = taskQueueKinds.filter((kind) => options.search || !kind.startsWith('search-'));
    workers = await createWorkers(config, services, kinds, { searchTenants: () => tenantIds });
    running = workers.run();
  }
  return {
    config,
    services,
    baseUrl,
    server,
    workers,
    tenantIds,
    async close() {
      await closeServer(server, { force: true });
      if (workers) {
        await workers.shutdown();
        await running;
      }
      await services.close();
    },
  };
}

export async function createTestTenant(stack: TestStack, settings: Partial<TenantSettings> = {}) {
  const tenant = await createTenant(stack.services.db, { name: `test-${randomUUID().slice(0, 8)}`, settings });
  stack.tenantIds.push(tenant.id);
  return tenant;
}

/** A token from the stack's dev issuer for `subject` in `tenantId`. */
export function tokenFor(stack: TestStack, tenantId: string, subject: string, options: { admin?: boolean; email?: string; expiresInSeconds?: number } = {}) {
  return stack.services.devIssuer!.sign({
    tenantId,
    subject,
    email: options.email ?? `${subject}@example.test`,
    roles: options.admin ? ['tenant_admin'] : [],
    expiresInSeconds: options.expiresInSeconds,
  });
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A small JSON client over fetch. `body` objects are sent as JSON; strings are sent raw. */
export async function api<T = any>(
  baseUrl: string,
  method: string,
  pathname: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; dispatcher?: Dispatcher } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (typeof options.body === 'string') body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${pathname}`, { method, headers, body, ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}) } as RequestInit);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}

export interface StackContext {
  stack: TestStack;
  /** A tenant of this test file's own. */
  tenantId: string;
}

/**
 * Registers the usual setup in the enclosing `describe`: a test stack (before) with a tenant of its own, closed
 * again (after). Read the fields inside tests or hooks, once `before` has run.
 */
export function withStack(options: Parameters<typeof startTestStack>[0] = {}): StackContext {
  const context = {} as StackContext;
  before(async () => {
    context.stack = await startTestStack(options);
    context.tenantId = (await createTestTenant(context.stack)).id;
  });
  after(async () => {
    await context.stack?.close();
  });
  return context;
}
