// Bounds concurrent slow password hashing per process. scrypt runs on libuv's small thread pool, which file I/O
// shares: unbounded, a burst of link-password checks from one tenant starves every tenant's downloads.
import { AppError } from '../errors';

export interface HashingGateOptions {
  /** Hashes running at once (each holds one libuv thread and ~32 MiB). */
  concurrency: number;
  /** Requests waiting for a slot; beyond that the caller gets 503 with Retry-After at once. */
  maxQueued: number;
}

/** Seconds a refused caller is told to wait: one hash takes well under a second, the queue drains fast. */
const busyRetryAfterSeconds = 2;

export class HashingGate {
  private running = 0;
  private readonly queue: { owner: string; start: () => void }[] = [];
  private readonly queuedByOwner = new Map<string, number>();

  constructor(readonly options: HashingGateOptions) {}

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

  private waitForSlot(owner: string): Promise<void> {
    const ownerShare = Math.max(1, Math.ceil(this.options.maxQueued / 2));
    const queuedForOwner = this.queuedByOwner.get(owner) ?? 0;
    if (this.queue.length >= this.options.maxQueued || queuedForOwner >= ownerShare) {
      throw new AppError(503, 'SERVICE_UNAVAILABLE', 'Too many password checks in progress; retry shortly', { retry_after_seconds: busyRetryAfterSeconds }, { 'Retry-After': String(busyRetryAfterSeconds) });
    }
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
}
