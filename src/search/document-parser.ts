// Parses a whole document (PDF, DOCX, HTML) on a worker thread, so a hostile or pathological file can neither
// block the worker process's event loop (heartbeats, other activities) nor outlive its time limit: a Promise race
// cannot stop synchronous parsing, terminating the thread does. Each thread has a heap limit, so a decompression
// bomb fails that one file instead of the whole process. Threads are kept warm between documents (starting one
// and loading the parsers costs far more than parsing a typical file) and replaced after a timeout or a crash.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import os from 'node:os';

export type ParsedFormat = 'pdf' | 'docx' | 'html';

export type ParseOutcome = { ok: true; text: string } | { ok: false; reason: string };

export interface ParseLimits {
  timeoutMs: number;
  /** Heap of the parsing thread (V8's old generation), in MiB. */
  maxHeapMb: number;
}

// The parsers' entry points, resolved here (the thread runs plain CommonJS, without the TypeScript loader).
const resolve = createRequire(import.meta.url).resolve;
const modules = { unpdf: resolve('unpdf'), mammoth: resolve('mammoth'), htmlToText: resolve('html-to-text') };

const workerSource = `
const { parentPort, workerData: { modules } } = require('node:worker_threads');
// pdf.js warns about fonts and structure on the console: noise in the worker process's log, never read.
for (const level of ['log', 'info', 'warn', 'error', 'debug']) console[level] = () => {};
async function parse(format, bytes) {
  if (format === 'pdf') {
    const { getDocumentProxy, extractText } = require(modules.unpdf);
    return (await extractText(await getDocumentProxy(bytes), { mergePages: true })).text;
  }
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'docx') return (await require(modules.mammoth).extractRawText({ buffer })).value;
  return require(modules.htmlToText).convert(buffer.toString('utf8'), { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }] });
}
parentPort.on('message', ({ format, bytes }) => {
  parse(format, bytes).then(
    (text) => parentPort.postMessage({ text: String(text) }),
    (error) => parentPort.postMessage({ error: String((error && error.message) || error) }),
  );
});`;

interface Job {
  format: ParsedFormat;
  bytes: Uint8Array;
  limits: ParseLimits;
  done: (outcome: ParseOutcome) => void;
}

interface ParserThread {
  worker: Worker;
  maxHeapMb: number;
  retired?: boolean;
  /** Set while a document is being parsed on the thread. */
  settle?: (outcome: ParseOutcome) => void;
}

/** A few warm parsing threads; documents beyond them wait their turn. */
export class DocumentParserPool {
  private readonly idle: ParserThread[] = [];
  private readonly queue: Job[] = [];
  private threads = 0;

  constructor(private readonly size: number) {}

  /**
   * The document's text, or why it could not be had: damaged (the parser's message), too slow (the thread is
   * terminated at `timeoutMs`) or too big in memory (the thread ran out of its heap).
   */
  parse(format: ParsedFormat, bytes: Uint8Array, limits: ParseLimits): Promise<ParseOutcome> {
    return new Promise((done) => {
      this.queue.push({ format, bytes, limits, done });
      this.next();
    });
  }

  private next(): void {
    while (this.queue.length > 0) {
      const thread = this.idle.pop() ?? (this.threads < this.size ? this.spawn(this.queue[0]!.limits.maxHeapMb) : undefined);
      if (!thread) return;
      const job = this.queue.shift()!;
      if (thread.maxHeapMb !== job.limits.maxHeapMb) {
        // Another heap limit than this thread was started with: a thread of its own.
        this.retire(thread);
        this.queue.unshift(job);
        continue;
      }
      this.run(thread, job);
    }
  }

  private spawn(maxHeapMb: number): ParserThread {
    this.threads++;
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { modules },
      resourceLimits: { maxOldGenerationSizeMb: maxHeapMb },
    });
    worker.unref(); // an idle parsing thread never keeps the process alive
    const thread: ParserThread = { worker, maxHeapMb };
    worker.on('error', (error: Error & { code?: string }) =>
      thread.settle?.({
        ok: false,
        reason: error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `extraction needed more than ${maxHeapMb} MiB` : `the file could not be read as its format: ${error.message.slice(0, 200)}`,
      }),
    );
    worker.on('exit', (code) => {
      thread.settle?.({ ok: false, reason: `the extraction thread stopped (exit code ${code})` });
      const index = this.idle.indexOf(thread);
      if (index >= 0) this.idle.splice(index, 1);
      if (!thread.retired) this.retire(thread); // died on its own: its place is free again
    });
    return thread;
  }

  private run(thread: ParserThread, job: Job): void {
    const timer = setTimeout(() => thread.settle?.({ ok: false, reason: `extraction took longer than ${job.limits.timeoutMs / 1000} s` }), job.limits.timeoutMs);
    thread.settle = (outcome) => {
      thread.settle = undefined;
      clearTimeout(timer);
      thread.worker.off('message', onMessage);
      // A thread that failed (timeout, heap, crash) may be mid-parse or broken: it is replaced, never reused.
      if (outcome.ok || outcome.reason.startsWith('the file could not be read')) this.idle.push(thread);
      else this.retire(thread);
      job.done(outcome);
      this.next();
    };
    const onMessage = (message: { text?: string; error?: string }) =>
      thread.settle?.(message.error === undefined ? { ok: true, text: message.text ?? '' } : { ok: false, reason: `the file could not be read as its format: ${message.error.slice(0, 200)}` });
    thread.worker.on('message', onMessage);
    thread.worker.postMessage({ format: job.format, bytes: job.bytes });
  }

  private retire(thread: ParserThread): void {
    if (thread.retired) return;
    thread.retired = true;
    this.threads--;
    thread.settle = undefined;
    void thread.worker.terminate();
  }
}

const sharedPool = new DocumentParserPool(Math.max(1, Math.floor(os.availableParallelism() / 2)));

/** Parses on the process's shared pool of parsing threads. */
export function parseDocument(format: ParsedFormat, bytes: Uint8Array, limits: ParseLimits): Promise<ParseOutcome> {
  return sharedPool.parse(format, bytes, limits);
}
