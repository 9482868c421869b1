// A real `scaidrive worker --queue …` process on a test stack's database, data dir (same secret key) and task
// queues, so a test can SIGKILL it mid-job and start another. Its log lines are collected.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ConfigVariable } from '../../src/config';
import type { TestStack } from './stack';
import type { TaskQueueKind } from '../../src/temporal/task-queues';

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

export function startConnectorWorker(stack: TestStack, logs: Buffer[], env: Partial<Record<ConfigVariable, string>> = {}): Promise<WorkerProcess> {
  return startWorkerProcess(stack, logs, ['connectors'], env);
}

/** A worker process for `queues`; resolves once it polls the first of them. `cli` as for startApiProcess. */
export async function startWorkerProcess(stack: TestStack, logs: Buffer[], queues: TaskQueueKind[], env: Partial<Record<ConfigVariable, string>> = {}, cli = 'bin/scaidrive.mjs'): Promise<WorkerProcess> {
  const config = stack.config;
  // The caller's SCAIDRIVE_* stay out (unknown keys stop start-up); NODE_EXTRA_CA_CERTS and the rest pass through.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SCAIDRIVE_')));
  const child = spawn(process.execPath, [path.resolve(cli), 'worker', ...queues.flatMap((queue) => ['--queue', queue])], {
    env: {
      ...inherited,
      SCAIDRIVE_ENV: 'test',
      SCAIDRIVE_LOG_LEVEL: 'debug',
      SCAIDRIVE_PORT: '0',
      SCAIDRIVE_DATABASE_URL: config.database.url,
      SCAIDRIVE_TEMPORAL_ADDRESS: config.temporal.address,
      SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: config.temporal.taskQueuePrefix,
      SCAIDRIVE_DATA_DIR: config.dataDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => logs.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk));
  const worker: WorkerProcess = {
    child,
    output: () => Buffer.concat(logs).toString(),
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const queue = await stack.services.temporal.workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: stack.services.taskQueues[queues[0]!] },
      taskQueueType: 1,
    });
    if ((queue.pollers ?? []).some((p) => p.lastAccessTime && Number(p.lastAccessTime.seconds) * 1000 > Date.now() - 2000) && child.exitCode === null) return worker;
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${worker.output().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error('worker did not start polling');
    await new Promise((r) => setTimeout(r, 200));
  }
}
