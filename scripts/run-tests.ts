// The test harness behind `npm test`: starts the real services the suite needs (a Temporal dev server on its
// own ports; PostgreSQL is the machine's), prepares a fresh test database, runs node's test runner, cleans up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createDb } from '../src/db/database';
import { dropDatabase, ensureDatabase } from '../src/db/ensure-database';
import { migrateToLatest } from '../src/db/migrator';
import { startTemporalDevServer } from '../src/temporal/dev-server';
import { waitForTemporal } from '../src/temporal/client';
import { testPorts } from '../test/helpers/ports';

const toolsDir = process.env.SCAIDRIVE_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'scaidrive', 'bin');
const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/scaidrive_test';

async function findTestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-test-'));
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const child of children) child.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const started = Date.now();
    children.push(
      await startTemporalDevServer({ binary: path.join(toolsDir, 'temporal'), dataDir, host: '127.0.0.1', port: testPorts.temporal, uiPort: testPorts.temporalUi, headless: true }),
    );
    const temporal = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${testPorts.temporal}` }) });
    await waitForTemporal(temporal);
    await temporal.connection.close();

    await dropDatabase(databaseUrl);
    await ensureDatabase(databaseUrl);
    const db = createDb(databaseUrl, 2);
    await migrateToLatest(db);
    await db.destroy();
    process.stdout.write(`harness: services ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    let files = await findTestFiles(path.resolve('test'));
    if (filters.length) files = files.filter((f) => filters.some((filter) => f.includes(filter)));
    const runner = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', '--test-reporter=spec', ...files],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          TEST_DATABASE_URL: databaseUrl,
          TEST_TEMPORAL_ADDRESS: `127.0.0.1:${testPorts.temporal}`,
          TEST_DATA_DIR: dataDir,
          TEST_TOOLS_DIR: toolsDir,
        },
      },
    );
    return await new Promise<number>((resolve) => runner.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
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
