// Watching a local service process we started (MinIO, Weaviate): its output appended to a log file, the last
// bit kept for the error message when it dies during start-up (the reason is usually in its last lines), and
// whether it has exited or failed to spawn.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface WatchedProcess {
  readonly spawnError: Error | undefined;
  exited(): boolean;
  /** The last `count` lines it printed. */
  lastLines(count?: number): string;
}

export function watchProcess(child: ChildProcess, logFile: string): WatchedProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let tail = '';
  const keepTail = (chunk: Buffer) => (tail = (tail + chunk.toString('utf8')).slice(-2_000));
  child.stdout!.on('data', keepTail);
  child.stderr!.on('data', keepTail);
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  return {
    get spawnError() {
      return spawnError;
    },
    exited: () => spawnError !== undefined || child.exitCode !== null || child.signalCode !== null,
    lastLines: (count = 6) => tail.trim().split('\n').slice(-count).join('\n'),
  };
}
