// Starts `temporal server start-dev` (SQLite file, UI, Scai* search attributes) for `scaidrive dev` and the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { scaiSearchAttributeNames } from './search-attributes';

export interface DevServerOptions {
  binary: string;
  dataDir: string;
  host: string;
  port: number;
  uiPort: number;
  headless?: boolean;
}

export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitForPort(host: string, port: number, timeoutMs: number, what: string, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before listening on ${host}:${port}`);
    if (await isPortOpen(host, port)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

export async function startTemporalDevServer(options: DevServerOptions): Promise<ChildProcess> {
  if (!existsSync(options.binary)) throw new Error(`Temporal CLI not found at ${options.binary}; run scripts/setup.sh`);
  await mkdir(options.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    options.host,
    '--port',
    String(options.port),
    '--ui-port',
    String(options.uiPort),
    '--db-filename',
    path.join(options.dataDir, 'temporal.db'),
    '--log-level',
    'error',
    ...scaiSearchAttributeNames.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
    ...(options.headless ? ['--headless'] : []),
  ];
  const log = createWriteStream(path.join(options.dataDir, 'temporal.log'), { flags: 'a' });
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  await waitForPort(options.host, options.port, 60_000, 'Temporal dev server', child);
  return child;
}
