// Bounds link-password hashing per process: at most `concurrency` scrypt runs at once, on worker threads of the
// lowest CPU priority, with a bounded queue. Unbounded on libuv's pool (shared with file I/O), a burst of
// password checks from one tenant stalled every tenant's downloads and readiness (issue #7).
import { Worker } from 'node:worker_threads';
import type { ScryptOptions } from 'node:crypto';
import { AppError } from '../errors';

export interface HashingGateOptions {
  /** Hashes running at once (each holds one worker thread and ~32 MiB). */
  concurrency: number;
  /** Requests waiting for a slot; beyond that the caller gets 503 with Retry-After at once. */
  maxQueued: number;
}

/** Seconds a refused caller is told to wait: one hash takes well under a second, the queue drains fast. */
const busyRetryAfterSeconds = 2;

// Plain CommonJS evaluated in the worker (no TypeScript loader there). It lowers its own thread's priority to
// nice 19 (Linux: setpriority on a thread id affects that thread only), so the event loop and file I/O win the
// CPU whenever both want it; elsewhere it simply runs at normal priority.
const workerSource = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) require('node:os').setPriority(tid, 19);
} catch {}
parentPort.on('message', ({ password, salt, keyLength, options }) => {
  try {
    const key = scryptSync(password, Buffer.from(salt), keyLength, options);
    parentPort.postMessage({ key });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});`;

interface HashWorker {
  worker: Worker;
  busy: boolean;
}

export class HashingGate {
  private running = 0;
  private readonly queue: { owner: string; start: () => void }[] = [];
  private readonly queuedByOwner = new Map<string, number>();
  private readonly workers: HashWorker[] = [];

  constructor(readonly options: HashingGateOptions) {}

  /** scrypt through the gate, on a low-priority worker thread. `owner` is the tenant the hash is done for. */
  scrypt(owner: string, password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
    return this.run(owner, () => this.onWorker(password, salt, keyLength, options));
  }

  /**
   * Runs `task` when a slot is free. `owner` (a tenant id) may hold at most half the queue, so one tenant's
   * burst leaves room for the others' password checks instead of taking every waiting place.
   */
  async run<T>(owner: string, task: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) await this.waitForSlot(owner);
    else this.running++;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  get stats() {
    return { running: this.running, queued: this.queue.length };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map(({ worker }) => worker.terminate()));
  }

  /**
   * 503 now when `owner` could not even queue: callers check before doing any other work for the request
   * (rate-limit rows, SQL), so refusing a burst costs next to nothing.
   */
  assertCapacity(owner: string): void {
    if (this.running < this.options.concurrency) return;
    const ownerShare = Math.max(1, Math.ceil(this.options.maxQueued / 2));
    if (this.queue.length >= this.options.maxQueued || (this.queuedByOwner.get(owner) ?? 0) >= ownerShare) {
      throw new AppError(503, 'SERVICE_UNAVAILABLE', 'Too many password checks in progress; retry shortly', { retry_after_seconds: busyRetryAfterSeconds }, { 'Retry-After': String(busyRetryAfterSeconds) });
    }
  }

  private waitForSlot(owner: string): Promise<void> {
    this.assertCapacity(owner);
    const queuedForOwner = this.queuedByOwner.get(owner) ?? 0;
    this.queuedByOwner.set(owner, queuedForOwner + 1);
    return new Promise((resolve) => {
      this.queue.push({
        owner,
        start: () => {
          const left = (this.queuedByOwner.get(owner) ?? 1) - 1;
          if (left === 0) this.queuedByOwner.delete(owner);
          else this.queuedByOwner.set(owner, left);
          resolve();
        },
      });
    });
  }

  /** Hands the slot straight to the next waiter (so `running` never dips and lets a newcomer jump the queue). */
  private release(): void {
    const next = this.queue.shift();
    if (next) next.start();
    else this.running--;
  }

  /** Runs one scrypt on an idle worker (the gate guarantees one is idle or may be started). */
  private onWorker(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
    let slot = this.workers.find((w) => !w.busy);
    if (!slot) {
      const worker = new Worker(workerSource, { eval: true });
      worker.unref(); // idle hashing threads never keep the process alive
      slot = { worker, busy: false };
      this.workers.push(slot);
    }
    const taken = slot;
    taken.busy = true;
    return new Promise<Buffer>((resolve, reject) => {
      const done = () => {
        taken.worker.off('message', onMessage);
        taken.worker.off('error', onError);
        taken.busy = false;
      };
      const onMessage = (message: { key?: Uint8Array; error?: string }) => {
        done();
        if (message.key) resolve(Buffer.from(message.key));
        else reject(new Error(`scrypt failed: ${message.error}`));
      };
      const onError = (error: Error) => {
        done();
        // A dead worker is dropped; the next hash starts a fresh one.
        this.workers.splice(this.workers.indexOf(taken), 1);
        reject(error);
      };
      taken.worker.on('message', onMessage);
      taken.worker.once('error', onError);
      taken.worker.postMessage({ password, salt, keyLength, options });
    });
  }
}
