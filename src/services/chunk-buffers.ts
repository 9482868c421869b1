// Reusable buffers for chunk bodies. A proxied upload receives one chunk-sized buffer per chunk PUT (8–64 MiB).
// Fresh memory is expensive: on the machines we measure on, faulting in a fresh buffer costs ~5 CPU-s per GiB
// (reusing one: ~0.04), and every fresh allocation adds pressure on V8's garbage collector. Buffers of the same
// size are handed out again once a request is done with them. Spare buffers count against the process's buffer
// budget like buffers in use (the budget bounds every chunk byte the process holds), are let go when a request
// needs their room, and after a quiet minute, so an idle API process does not hold on to upload memory.
import { MessageChannel } from 'node:worker_threads';
import type { ByteBudget } from './upload-limits';

const MiB = 1024 * 1024;

/** A message port whose other end is closed: what is transferred to it is dropped (see releaseNow). */
const discard = (() => {
  const { port1, port2 } = new MessageChannel();
  port2.close();
  port1.unref();
  return port1;
})();

/**
 * Gives a chunk buffer's memory back to the system now. A buffer merely dropped stays in the process until V8's next
 * full collection, which may be seconds (or, in an idle process, minutes) away; meanwhile the budget has handed its
 * room to a new buffer (of another size: 64 MiB chunks after 8 MiB ones), and the process holds both. Transferring its memory to a closed message port detaches the buffer (every view of it now has
 * length 0, so a stray reference reads nothing rather than reused bytes) and the dropped message frees it. Only for
 * buffers nothing else reads or writes any more.
 */
export function releaseNow(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (!(memory instanceof ArrayBuffer) || buffer.byteOffset !== 0 || memory.byteLength !== buffer.length || buffer.length === 0) return;
  discard.postMessage(memory, [memory]);
}

export class ChunkBufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooled = 0;
  private trimTimer?: NodeJS.Timeout;

  constructor(
    /** The budget spare buffers count against. */
    private readonly budget: ByteBudget,
    /** Smaller bodies are allocated as usual (Node's own pool serves the small ones). */
    readonly minSize = MiB,
    private readonly idleTrimMs = 60_000,
  ) {}

  get pooledBytes(): number {
    return this.pooled;
  }

  /** A spare buffer of exactly `size` bytes together with its share of the budget (now the caller's), if there is one. */
  takeReserved(size: number): Buffer | undefined {
    const reused = this.free.get(size)?.pop();
    if (reused) this.pooled -= size;
    return reused;
  }

  /** A buffer of exactly `size` bytes (contents undefined: the caller overwrites all of it), holding no budget. */
  take(size: number): Buffer {
    const reused = size >= this.minSize ? this.takeReserved(size) : undefined;
    if (reused) this.budget.give(size);
    return reused ?? (size >= this.minSize ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size));
  }

  /**
   * Keeps `buffer` for reuse together with the caller's share of the budget for it. False when it is not kept (the
   * caller still holds that share). Only buffers nothing refers to any more (never one handed to another thread,
   * kept elsewhere, or still being written to a socket).
   */
  keep(buffer: Buffer): boolean {
    if (!this.poolable(buffer)) return false;
    this.add(buffer);
    return true;
  }

  /** Keeps `buffer` (which holds no budget) for reuse if the budget has room for it. */
  give(buffer: Buffer): boolean {
    if (!this.poolable(buffer) || !this.budget.tryTake(buffer.length)) return false;
    this.add(buffer);
    return true;
  }

  /** Lets spare buffers go until `bytes` of the budget are free (or none is left). */
  makeRoom(bytes: number): void {
    for (const [size, list] of this.free) {
      while (list.length > 0 && this.budget.capacity - this.budget.inUse < bytes) {
        releaseNow(list.pop()!);
        this.pooled -= size;
        this.budget.give(size);
      }
    }
  }

  clear(): void {
    for (const list of this.free.values()) list.forEach(releaseNow);
    this.budget.give(this.pooled);
    this.free.clear();
    this.pooled = 0;
  }

  private poolable(buffer: Buffer): boolean {
    // Only whole, attached buffers of pooled sizes; a detached (transferred) one has length 0.
    return buffer.length >= this.minSize && buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length;
  }

  private add(buffer: Buffer): void {
    const list = this.free.get(buffer.length) ?? [];
    list.push(buffer);
    this.free.set(buffer.length, list);
    this.pooled += buffer.length;
    clearTimeout(this.trimTimer);
    this.trimTimer = setTimeout(() => this.clear(), this.idleTrimMs).unref();
  }
}
