// Reusable buffers for chunk bodies. A proxied upload receives one chunk-sized buffer per chunk PUT (8–64 MiB);
// allocating each afresh costs page faults when the body is copied in and pressure on V8's garbage collector
// (the upload benchmark's profile: ~1.2 s copying into fresh buffers and ~1.7 s of GC per GiB). Buffers of the
// same size are handed out again once a request is done with them. What the pool keeps is bounded, and let go
// after a quiet minute, so an idle API process does not hold on to upload memory.
const MiB = 1024 * 1024;

export class ChunkBufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooled = 0;
  private trimTimer?: NodeJS.Timeout;

  constructor(
    /** Bytes the pool may keep unused. */
    readonly maxPooledBytes: number,
    /** Smaller bodies are allocated as usual (Node's own pool serves the small ones). */
    readonly minSize = MiB,
    private readonly idleTrimMs = 60_000,
  ) {}

  get pooledBytes(): number {
    return this.pooled;
  }

  /** A buffer of exactly `size` bytes (contents undefined: the caller overwrites all of it). */
  take(size: number): Buffer {
    const reused = size >= this.minSize ? this.free.get(size)?.pop() : undefined;
    if (!reused) return size >= this.minSize ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
    this.pooled -= size;
    return reused;
  }

  /**
   * Returns a buffer taken from this pool once nothing refers to it any more (never one handed to another
   * thread, kept elsewhere, or still being written to a socket).
   */
  give(buffer: Buffer): void {
    const size = buffer.length;
    // Only whole, attached buffers of pooled sizes; a detached (transferred) one has length 0.
    if (size < this.minSize || buffer.byteOffset !== 0 || buffer.buffer.byteLength !== size) return;
    if (this.pooled + size > this.maxPooledBytes) return;
    const list = this.free.get(size) ?? [];
    list.push(buffer);
    this.free.set(size, list);
    this.pooled += size;
    clearTimeout(this.trimTimer);
    this.trimTimer = setTimeout(() => this.clear(), this.idleTrimMs).unref();
  }

  clear(): void {
    this.free.clear();
    this.pooled = 0;
  }
}
