// Builds Temporal workers: the workflow bundle is made once and shared by every task queue's worker.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import type { Config } from '../config';
import { taskQueues, type TaskQueueKind } from '../temporal/task-queues';
import { createActivities, type ActivityDeps } from '../activities';
import { activityLogging } from './activity-logging';
import type { Client } from '@temporalio/client';
import { SearchDispatcher } from '../services/search-dispatcher';

// The workflow sources, bundled by the SDK when a worker starts: next to this module when it runs from src/, under
// src/ when it runs compiled into dist/scaidrive.mjs (scripts/build.mjs).
const workflowsDir = existsSync(fileURLToPath(new URL('../workflows/index.ts', import.meta.url))) ? new URL('../workflows/', import.meta.url) : new URL('../src/workflows/', import.meta.url);
const workflowsPath = fileURLToPath(new URL('index.ts', workflowsDir));
const workflowInterceptorsPath = fileURLToPath(new URL('interceptors.ts', workflowsDir));

let runtimeInstalled = false;

/** Routes the SDK's own logs to ours, once per process. */
function installRuntime(deps: ActivityDeps): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const log = deps.logger.child({ component: 'temporal-worker' });
  Runtime.install({
    logger: {
      log: (level, message, meta) => (level === 'ERROR' ? log.error(meta ?? {}, message) : level === 'WARN' ? log.warn(meta ?? {}, message) : log.debug(meta ?? {}, message)),
      trace: (message, meta) => log.trace(meta ?? {}, message),
      debug: (message, meta) => log.debug(meta ?? {}, message),
      info: (message, meta) => log.debug(meta ?? {}, message),
      warn: (message, meta) => log.warn(meta ?? {}, message),
      error: (message, meta) => log.error(meta ?? {}, message),
    },
  });
}

let bundle: Promise<WorkflowBundle> | undefined;

export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [workflowInterceptorsPath], logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
  return bundle;
}

export interface WorkerSet {
  workers: Worker[];
  /** Runs every worker until shutdown() is called or one fails. */
  run(): Promise<void>;
  shutdown(): Promise<void>;
}

/** What workers need: the activities' clients, and a Temporal client for the search dispatcher. */
export type WorkerDeps = ActivityDeps & { temporal: Client };

export interface WorkerOptions {
  /** The search dispatcher takes only these tenants' entries (test stacks sharing a database); all when absent. */
  searchTenants?: () => readonly string[];
}

export async function createWorkers(config: Config, deps: WorkerDeps, kinds: readonly TaskQueueKind[], options: WorkerOptions = {}): Promise<WorkerSet> {
  installRuntime(deps);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const activities = createActivities(deps);
  const queues = taskQueues(config.temporal.taskQueuePrefix);
  const workflowCode = await workflowBundle();
  const workers = await Promise.all(
    kinds.map((kind) =>
      Worker.create({
        connection,
        namespace: config.temporal.namespace,
        taskQueue: queues[kind],
        workflowBundle: workflowCode,
        activities,
        // A backlog on the low queue (a connector importing 100k files) keeps only a few vectorizations in flight, so
        // the high queue's fresh uploads never wait behind it for the embedding provider or this process's CPU.
        ...(kind === 'search-low' ? { maxConcurrentActivityTaskExecutions: config.searchLowConcurrency } : {}),
        interceptors: { activity: [activityLogging(deps.logger.child({ component: 'activity' }))] },
      }),
    ),
  );
  // Wherever the high-priority search queue is worked, the vectorization queue is dispatched too (unless turned off).
  const dispatcher = kinds.includes('search-high') && config.searchDispatcher
    ? new SearchDispatcher({ db: deps.db, databaseUrl: config.database.url, temporal: deps.temporal, taskQueues: queues, search: deps.search, logger: deps.logger.child({ component: 'search-dispatcher' }), onlyTenants: options.searchTenants })
    : undefined;
  let running: Promise<void> | undefined;
  return {
    workers,
    run() {
      running ??= (async () => {
        await dispatcher?.start();
        await Promise.all(workers.map((w) => w.run()));
      })().finally(async () => {
        await dispatcher?.stop();
        await connection.close();
      });
      return running;
    },
    async shutdown() {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
