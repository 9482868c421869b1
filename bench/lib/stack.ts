// A throw-away ScaiDrive stack for benchmarks, built from the project's own launchers: a Temporal dev server,
// MinIO, a fresh PostgreSQL database, a tenant, and the API and the workers as their own processes
// (`node dist/scaidrive.mjs api|worker`, compiled by `npm run build`) so their memory and CPU can be measured from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { startTemporalDevServer, isPortOpen } from '../../src/temporal/dev-server';
import { waitForTemporal } from '../../src/temporal/client';
import { startMinio } from '../../src/storage/minio-server';
import { dropDatabase, ensureDatabase } from '../../src/db/ensure-database';
import { createDb, type Db, type TenantSettings } from '../../src/db/database';
import { migrateToLatest } from '../../src/db/migrator';
import { createTenant } from '../../src/services/identity.service';
import { loadDevIssuer } from '../../src/auth/dev-issuer';
import { taskQueues } from '../../src/temporal/task-queues';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const toolsDir = process.env.SCAIDRIVE_TOOLS_DIR || path.join(os.homedir(), '.cache', 'scaidrive', 'bin');

/** Clean-up steps, run in reverse order of registration; each runs even when an earlier one fails. */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  /** Registers a step; one added after run() started (a launch that finished late) runs right away. */
  add(name: string, run: () => Promise<void> | void): void {
    if (this.running) {
      this.running = this.running.then(() => this.runStep({ name, run }));
      return;
    }
    this.steps.push({ name, run });
  }

  /** Runs every step once; later calls (a signal handler and a finally block) wait for the same run. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) await this.runStep(step);
    })();
    return this.running;
  }

  private async runStep(step: { name: string; run: () => Promise<void> | void }): Promise<void> {
    try {
      await step.run();
    } catch (error) {
      process.stderr.write(`cleanup: ${step.name} failed: ${(error as Error).message}\n`);
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. Only for children we started. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
  if (!timedOut) return;
  child.kill('SIGKILL');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface BenchPorts {
  temporal: number;
  temporalUi: number;
  minio: number;
  minioConsole: number;
  api: number;
}

export interface BenchStackOptions {
  tempDir: string;
  ports: BenchPorts;
  /** e.g. postgres://postgres@127.0.0.1:5432/scaidrive_bench; dropped and recreated. */
  databaseUrl: string;
  bucket: string;
  tenantSettings?: Partial<TenantSettings>;
  /**
   * When set, the API and the worker run under `--cpu-prof` and write their profiles to `<dir>/api` and
   * `<dir>/worker` when they stop (profiling slows them down: not for the reported figures).
   */
  cpuProfileDir?: string;
  /** Extra environment of the API and the worker (e.g. SCAIDRIVE_GRAPH_URL, NODE_EXTRA_CA_CERTS for a fake). */
  env?: Record<string, string>;
  /** Progress lines go here. */
  log: (line: string) => void;
}

export interface BenchStack {
  apiUrl: string;
  dataDir: string;
  api: ChildProcess;
  worker: ChildProcess;
  minio: ChildProcess;
  temporalServer: ChildProcess;
  temporal: Client;
  db: Db;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bucket: string };
  tenantId: string;
  token: string;
  /** A dev-issuer token for another user of the tenant (created on its first request). */
  tokenFor(subject: string): Promise<string>;
  logs: { api: string; worker: string; minio: string; temporal: string };
  /** Starts one more API process of this stack on `port` (a second replica), stopped by the stack's clean-up. */
  startApi(port: number, nodeFlags?: string[]): Promise<{ url: string; process: ChildProcess }>;
}

/** The environment of a ScaiDrive process: ours, minus any SCAIDRIVE_* of the caller (unknown keys stop start-up). */
function scaidriveEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('SCAIDRIVE_')) env[key] = value;
  return { ...env, ...settings };
}

/** Node flags that write a V8 CPU profile into `dir` when the process ends (also on SIGTERM, via the preload). */
function cpuProfileFlags(dir: string | undefined, exitOnSigterm: boolean): string[] {
  if (!dir) return [];
  const preload = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'exit-on-sigterm.mjs')).href;
  return ['--cpu-prof', '--cpu-prof-dir', dir, ...(exitOnSigterm ? ['--import', preload] : [])];
}

/** dist/scaidrive.mjs, which must be at least as new as every source file (else: run `npm run build`). */
function compiledCli(): string {
  const compiled = path.join(repoRoot, 'dist', 'scaidrive.mjs');
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run \`npm run build\` (npm run bench does)`);
  const builtAt = statSync(compiled).mtimeMs;
  const newer = (dir: string): string | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const found = entry.isDirectory() ? newer(full) : statSync(full).mtimeMs > builtAt ? full : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const stale = newer(path.join(repoRoot, 'src'));
  if (stale) throw new Error(`${compiled} is older than ${stale}: run \`npm run build\` (npm run bench does)`);
  return compiled;
}

function spawnScaidrive(command: 'api' | 'worker', env: NodeJS.ProcessEnv, logFile: string, nodeFlags: string[] = []): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    // process.execPath directly (no shell, no npx): the pid we get is the node process whose /proc we read. The
    // compiled CLI (`npm run bench` builds it first), as in production: no TypeScript loader in the measured process.
    return spawn(process.execPath, [...nodeFlags, compiledCli(), command], { cwd: repoRoot, env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

async function waitForReady(url: string, child: ChildProcess, logFile: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`API exited (${child.exitCode ?? child.signalCode}) before it was ready; log ${logFile}:\n${tail(logFile)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const text = await response.text();
      if (response.status === 200) return;
      last = `${response.status} ${text.slice(0, 300)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`API not ready at ${url} within ${timeoutMs} ms (${last}); log ${logFile}:\n${tail(logFile)}`);
}

async function waitForPollers(client: Client, taskQueue: string, child: ChildProcess, logFile: string, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Worker exited (${child.exitCode ?? child.signalCode}) before polling; log ${logFile}:\n${tail(logFile)}`);
    const counts = await Promise.all(
      [1, 2].map(async (taskQueueType) => {
        const response = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType });
        return response.pollers?.length ?? 0;
      }),
    );
    if (counts.every((n) => n > 0)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`No worker polled ${taskQueue} within ${timeoutMs} ms; log ${logFile}:\n${tail(logFile)}`);
}

export async function startBenchStack(options: BenchStackOptions, cleanup: Cleanup): Promise<BenchStack> {
  const { tempDir, ports, log } = options;
  const host = '127.0.0.1';
  for (const [name, port] of Object.entries(ports)) {
    if (await isPortOpen(host, port)) throw new Error(`Port ${port} (${name}) is already in use on ${host}`);
  }
  const dataDir = path.join(tempDir, 'scaidrive-data');
  await mkdir(dataDir, { recursive: true });
  const logs = {
    api: path.join(tempDir, 'api.log'),
    worker: path.join(tempDir, 'worker.log'),
    minio: path.join(tempDir, 'minio.log'),
    temporal: path.join(tempDir, 'temporal', 'temporal.log'),
  };
  const s3 = {
    endpoint: `http://${host}:${ports.minio}`,
    region: 'us-east-1',
    accessKeyId: 'scaidrive-bench',
    secretAccessKey: `bench-${Math.random().toString(36).slice(2)}-secret`,
    bucket: options.bucket,
  };

  log(`starting Temporal dev server on ${host}:${ports.temporal} and MinIO on ${host}:${ports.minio}`);
  // allSettled: whichever starts is registered for clean-up even when the other fails.
  const started = await Promise.allSettled([
    startTemporalDevServer({ binary: path.join(toolsDir, 'temporal'), dataDir: path.join(tempDir, 'temporal'), host, port: ports.temporal, uiPort: ports.temporalUi, headless: true }).then((child) => {
      cleanup.add('stop Temporal dev server', () => stopChild(child));
      return child;
    }),
    startMinio({
      binary: path.join(toolsDir, 'minio'),
      dataDir: path.join(tempDir, 'minio'),
      logFile: logs.minio,
      host,
      port: ports.minio,
      consolePort: ports.minioConsole,
      rootUser: s3.accessKeyId,
      rootPassword: s3.secretAccessKey,
    }).then((child) => {
      cleanup.add('stop MinIO', () => stopChild(child));
      return child;
    }),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const [temporalServer, minio] = started.map((r) => (r as PromiseFulfilledResult<ChildProcess>).value) as [ChildProcess, ChildProcess];

  const temporal = new Client({ connection: await Connection.connect({ address: `${host}:${ports.temporal}` }), namespace: 'default' });
  cleanup.add('close Temporal client', () => temporal.connection.close());
  await waitForTemporal(temporal);

  log(`recreating database ${new URL(options.databaseUrl).pathname.slice(1)} and migrating`);
  await dropDatabase(options.databaseUrl);
  await ensureDatabase(options.databaseUrl);
  cleanup.add('drop bench database', () => dropDatabase(options.databaseUrl));
  const db = createDb(options.databaseUrl, { poolSize: 2 });
  cleanup.add('close database pool', () => db.destroy());
  await migrateToLatest(db);
  const tenant = await createTenant(db, { name: 'Benchmark', settings: options.tenantSettings });

  const apiUrl = `http://${host}:${ports.api}`;
  // Create the dev issuer key before the processes start, so the API and the worker do not race to create it.
  const issuer = await loadDevIssuer(dataDir, apiUrl, 'scaidrive');
  const token = await issuer.sign({ tenantId: tenant.id, subject: 'bench', roles: [] });

  const env = scaidriveEnv({
    SCAIDRIVE_ENV: 'development',
    SCAIDRIVE_HOST: host,
    SCAIDRIVE_PORT: String(ports.api),
    SCAIDRIVE_DATABASE_URL: options.databaseUrl,
    SCAIDRIVE_TEMPORAL_ADDRESS: `${host}:${ports.temporal}`,
    SCAIDRIVE_DATA_DIR: dataDir,
    SCAIDRIVE_S3_ENDPOINT: s3.endpoint,
    SCAIDRIVE_S3_BUCKET: s3.bucket,
    SCAIDRIVE_S3_ACCESS_KEY_ID: s3.accessKeyId,
    SCAIDRIVE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    SCAIDRIVE_S3_FORCE_PATH_STYLE: 'true',
    SCAIDRIVE_LOG_LEVEL: 'warn',
    SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '300',
    ...options.env,
  });

  log(`starting the API (${apiUrl}) and the workers as their own processes`);
  const profileDir = (name: string) => (options.cpuProfileDir ? path.join(options.cpuProfileDir, name) : undefined);
  // The API has no SIGTERM handler of its own; the worker's shuts down and exits normally (writing its profile).
  const api = spawnScaidrive('api', env, logs.api, cpuProfileFlags(profileDir('api'), true));
  cleanup.add('stop API process', () => stopChild(api));
  const worker = spawnScaidrive('worker', env, logs.worker, cpuProfileFlags(profileDir('worker'), false));
  cleanup.add('stop worker process', () => stopChild(worker));
  await waitForReady(`${apiUrl}/api/v1/health/ready`, api, logs.api);
  await waitForPollers(temporal, taskQueues('scaidrive').uploads, worker, logs.worker);

  const startApi = async (port: number, nodeFlags: string[] = []) => {
    const url = `http://${host}:${port}`;
    const logFile = path.join(tempDir, `api-${port}.log`);
    // Same public URL as the first: replicas behind one address accept the same dev-issuer tokens (their issuer).
    const child = spawnScaidrive('api', { ...env, SCAIDRIVE_PORT: String(port), SCAIDRIVE_PUBLIC_URL: apiUrl }, logFile, nodeFlags);
    cleanup.add(`stop API process on ${port}`, () => stopChild(child));
    await waitForReady(`${url}/api/v1/health/ready`, child, logFile);
    return { url, process: child };
  };
  const tokenFor = (subject: string) => issuer.sign({ tenantId: tenant.id, subject, roles: [] });
  return { apiUrl, dataDir, api, worker, minio, temporalServer, temporal, db, s3, tenantId: tenant.id, token, tokenFor, logs, startApi };
}
