// A resumable SHA-256 step (saved state + bytes → new saved state) run on a thread of its own, so the upload hash
// follower never holds the API's event loop: hash-wasm hashes ~400 MB/s on the thread that calls it, which at
// upload speed is a quarter of a core taken from request handling. One thread per process, started on first use,
// referenced only while steps are in flight (an idle thread never keeps the process alive); steps queue on it in order. A thread that dies fails
// the steps it held (the follower loses those steps, finalize hashes them) and is replaced on the next step.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

const hashWasmEntry = createRequire(import.meta.url).resolve('hash-wasm');

const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { createSHA256 } = require(workerData.hashWasmEntry);
const hasherReady = createSHA256();
parentPort.on('message', async ({ id, state, data }) => {
  try {
    const hasher = await hasherReady;
    if (state) hasher.load(state);
    else hasher.init();
    hasher.update(data);
    parentPort.postMessage({ id, state: hasher.save() });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});`;

interface Pending {
  resolve: (state: Uint8Array) => void;
  reject: (error: Error) => void;
}

let thread: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 0;

function startThread(): Worker {
  const worker = new Worker(threadSource, { eval: true, workerData: { hashWasmEntry } });
  worker.unref();
  worker.on('message', (message: { id: number; state?: Uint8Array; error?: string }) => {
    const step = pending.get(message.id);
    if (!step) return;
    pending.delete(message.id);
    if (message.state) step.resolve(message.state);
    else step.reject(new Error(`SHA-256 step failed: ${message.error}`));
    if (pending.size === 0) worker.unref();
  });
  const fail = (error: Error) => {
    if (thread === worker) thread = undefined;
    for (const step of pending.values()) step.reject(error);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the SHA-256 thread stopped (exit code ${code})`)));
  return worker;
}

/**
 * The saved SHA-256 state after hashing `data` on top of `state` (a hash-wasm `save()`; null = a fresh hash).
 * With `handOver`, a buffer that is a whole ArrayBuffer of its own moves to the thread without a copy and is
 * unusable here afterwards (the caller must own it: never a view into a pool or a buffer someone still reads).
 * Otherwise its bytes are copied (only its own bytes, not the whole ArrayBuffer it may be a view of).
 */
export function sha256Step(state: Uint8Array | null, data: Uint8Array, options: { handOver?: boolean } = {}): Promise<Uint8Array> {
  thread ??= startThread();
  const worker = thread;
  const id = nextId++;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  // Structured cloning copies a view's whole ArrayBuffer: a view into a larger one is copied down to its bytes.
  const sent = whole ? data : new Uint8Array(data);
  return new Promise<Uint8Array>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.ref();
    worker.postMessage({ id, state, data: sent }, whole && options.handOver ? [sent.buffer as ArrayBuffer] : []);
  });
}

/** Stops the thread (tests, shutdown); a later step starts a new one. */
export async function stopSha256Thread(): Promise<void> {
  const worker = thread;
  thread = undefined;
  if (worker) await worker.terminate();
}
