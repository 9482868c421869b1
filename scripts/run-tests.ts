// The test harness behind `npm test`: starts the real services the suite needs (a Temporal dev server and MinIO
// on their own ports; PostgreSQL is the machine's), prepares a fresh test database, runs node's test runner, cleans up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createDb } from '../src/db/database';
import { dropDatabase, ensureDatabase } from '../src/db/ensure-database';
import { migrateToLatest } from '../src/db/migrator';
import { startTemporalDevServer } from '../src/temporal/dev-server';
import { startMinio } from '../src/storage/minio-server';
import { startWeaviate } from '../src/search/weaviate-server';
import { waitForTemporal } from '../src/temporal/client';
import { testPorts } from '../test/helpers/ports';
import { createTestCertificates } from '../test/helpers/test-ca';

const toolsDir = process.env.SCAIDRIVE_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'scaidrive', 'bin');
const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/scaidrive_test';
/** Fixed credentials of the harness's throwaway MinIO (loopback only). */
const minioCredentials = { accessKeyId: 'scaidrive-test', secretAccessKey: 'scaidrive-test-secret' };

async function findTestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-test-'));
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    // Wait (briefly) for the services to exit so they are not still writing into dataDir while it is removed.
    await Promise.all(children.map((child) => stopChild(child)));
    await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const started = Date.now();
    const timed = <T>(what: string, promise: Promise<T>) =>
      promise.then((value) => {
        process.stdout.write(`harness: ${what} up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        return value;
      });
    // Started together; each one that comes up is registered for cleanup even if the other fails.
    const register = (child: ChildProcess) => (children.push(child), child);
    const results = await Promise.allSettled([
      timed(
        'Temporal',
        startTemporalDevServer({ binary: path.join(toolsDir, 'temporal'), dataDir, host: '127.0.0.1', port: testPorts.temporal, uiPort: testPorts.temporalUi, headless: true }),
      ).then(register),
      timed(
        'MinIO',
        startMinio({
          binary: path.join(toolsDir, 'minio'),
          dataDir: path.join(dataDir, 'minio', 'data'),
          logFile: path.join(dataDir, 'minio', 'minio.log'),
          host: '127.0.0.1',
          port: testPorts.minio,
          consolePort: testPorts.minioConsole,
          rootUser: minioCredentials.accessKeyId,
          rootPassword: minioCredentials.secretAccessKey,
        }),
      ).then(register),
      timed(
        'Weaviate',
        startWeaviate({
          binary: path.join(toolsDir, 'weaviate-server'),
          dataDir: path.join(dataDir, 'weaviate'),
          host: '127.0.0.1',
          port: testPorts.weaviate,
          grpcPort: testPorts.weaviateGrpc,
        }),
      ).then(register),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const temporal = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${testPorts.temporal}` }) });
    await waitForTemporal(temporal);
    await temporal.connection.close();

    await dropDatabase(databaseUrl);
    await ensureDatabase(databaseUrl);
    const db = createDb(databaseUrl, { poolSize: 2 });
    await migrateToLatest(db);
    await db.destroy();
    // HTTPS fakes (Microsoft Graph) use a certificate of a CA made for this run, trusted by every test process.
    const tlsDir = path.join(dataDir, 'tls');
    const certificates = await createTestCertificates(tlsDir);
    process.stdout.write(`harness: services ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    let files = await findTestFiles(path.resolve('test'));
    if (filters.length) files = files.filter((f) => filters.some((filter) => f.includes(filter)));
    const env = {
      ...process.env,
      TEST_DATABASE_URL: databaseUrl,
      TEST_TEMPORAL_ADDRESS: `127.0.0.1:${testPorts.temporal}`,
      TEST_DATA_DIR: dataDir,
      TEST_TLS_DIR: tlsDir,
      NODE_EXTRA_CA_CERTS: certificates.caFile,
      TEST_TOOLS_DIR: toolsDir,
      TEST_WEAVIATE_URL: `http://127.0.0.1:${testPorts.weaviate}`,
      TEST_WEAVIATE_GRPC_PORT: String(testPorts.weaviateGrpc),
      TEST_S3_ENDPOINT: `http://127.0.0.1:${testPorts.minio}`,
      TEST_S3_ACCESS_KEY_ID: minioCredentials.accessKeyId,
      TEST_S3_SECRET_ACCESS_KEY: minioCredentials.secretAccessKey,
    };
    const runFiles = (list: string[], concurrency: number) =>
      new Promise<number>((resolve) => {
        if (list.length === 0) return resolve(0);
        const runner = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--test-reporter=spec', ...list], { stdio: 'inherit', env });
        runner.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
      });
    // `*.alone.test.ts` compare timings within one run (one tenant's latency with and without another's load):
    // they run first, one at a time, so no other test file's load lands in their measurements.
    const alone = files.filter((f) => f.endsWith('.alone.test.ts'));
    const aloneCode = await runFiles(alone, 1);
    const restCode = await runFiles(files.filter((f) => !alone.includes(f)), 2);
    return aloneCode || restCode;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`harness: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
