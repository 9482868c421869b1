// A real `scaidrive api` process next to a test stack: same database, same data dir (so the same server secret and
// dev issuer: the stack's tokens and cursors work on it) and public URL — another replica behind one address.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { TestStack } from './stack';

export interface ApiProcess {
  baseUrl: string;
  pid: number;
  /** Everything the process wrote so far. */
  output(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  exitCode(): number | null;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `cli`: the entry point to run (the TypeScript sources through bin/scaidrive.mjs unless given, e.g. dist/scaidrive.mjs). */
export async function startApiProcess(stack: TestStack, cli = 'bin/scaidrive.mjs'): Promise<ApiProcess> {
  const config = stack.config;
  const port = await freePort();
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SCAIDRIVE_')));
  const logs: Buffer[] = [];
  const child = spawn(process.execPath, [path.resolve(cli), 'api'], {
    env: {
      ...inherited,
      SCAIDRIVE_ENV: 'test',
      SCAIDRIVE_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      SCAIDRIVE_HOST: '127.0.0.1',
      SCAIDRIVE_PORT: String(port),
      SCAIDRIVE_PUBLIC_URL: config.publicUrl,
      SCAIDRIVE_DATABASE_URL: config.database.url,
      SCAIDRIVE_TEMPORAL_ADDRESS: config.temporal.address,
      SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: config.temporal.taskQueuePrefix,
      SCAIDRIVE_DATA_DIR: config.dataDir,
      SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: '1000000',
      SCAIDRIVE_RATE_LIMIT_API_KEY_PER_MINUTE: '1000000',
      SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: '1000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => logs.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk));
  const baseUrl = `http://127.0.0.1:${port}`;
  const output = () => Buffer.concat(logs).toString();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`api process exited with ${child.exitCode}: ${output().slice(-2000)}`);
    const ok = await fetch(`${baseUrl}/api/v1/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`api process not up: ${output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    baseUrl,
    pid: child.pid!,
    output,
    exitCode: () => child.exitCode,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
