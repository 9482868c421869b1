// Starts a local MinIO server (S3-compatible blob store) on its own ports and waits until it is healthy.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { isPortOpen, waitForPort } from '../temporal/dev-server';
import { watchProcess } from '../process-watch';

export interface MinioServerOptions {
  binary: string;
  dataDir: string;
  host: string;
  port: number;
  consolePort: number;
  rootUser: string;
  rootPassword: string;
  /** Where MinIO's stdout/stderr go; defaults to `<dataDir>/minio.log`. */
  logFile?: string;
  /** How long to wait for the health check; 60 s by default. */
  timeoutMs?: number;
}

export async function startMinio(options: MinioServerOptions): Promise<ChildProcess> {
  const { binary, dataDir, host, port, consolePort } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!existsSync(binary)) throw new Error(`MinIO binary not found at ${binary}; run scripts/setup.sh`);
  if (options.rootPassword.length < 8) throw new Error('MinIO root password must be at least 8 characters');
  // Something already on the port would answer the health check in MinIO's place (with other data and credentials).
  if (await isPortOpen(host, port)) throw new Error(`Cannot start MinIO: ${host}:${port} is already in use`);
  await mkdir(dataDir, { recursive: true });
  const logFile = options.logFile ?? path.join(dataDir, 'minio.log');
  await mkdir(path.dirname(logFile), { recursive: true });

  const child = spawn(binary, ['server', dataDir, '--address', `${host}:${port}`, '--console-address', `${host}:${consolePort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      MINIO_ROOT_USER: options.rootUser,
      MINIO_ROOT_PASSWORD: options.rootPassword,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
    },
  });
  const watched = watchProcess(child, logFile);
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const hasExited = () => watched.exited();
  const exitError = async () => {
    if (watched.spawnError) return new Error(`MinIO failed to start (${binary}): ${watched.spawnError.message}`);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000))]);
    const how = child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode;
    const lastLines = watched.lastLines();
    return new Error(`MinIO exited (${how}) before it was healthy on ${host}:${port}; log: ${logFile}${lastLines ? `\n${lastLines}` : ''}`);
  };

  try {
    const deadline = Date.now() + timeoutMs;
    await waitForPort(host, port, timeoutMs, 'MinIO', child);
    const healthUrl = `http://${host}:${port}/minio/health/live`;
    let lastProblem = 'no answer';
    while (Date.now() < deadline) {
      if (hasExited()) throw await exitError();
      try {
        const response = await fetch(healthUrl, { signal: AbortSignal.timeout(2_000) });
        await response.body?.cancel();
        if (response.status === 200) return child;
        lastProblem = `HTTP ${response.status}`;
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`MinIO was not healthy at ${healthUrl} within ${timeoutMs} ms (${lastProblem}); see ${logFile}`);
  } catch (error) {
    if (hasExited()) throw await exitError();
    child.kill('SIGTERM');
    throw error;
  }
}
