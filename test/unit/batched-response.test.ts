// A download's body goes into the response in batches: the pieces of one event-loop turn as one writev, with
// back-pressure, the source released when the response closes, and what came before a source error still sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Readable, Writable } from 'node:stream';
import { maxBatchBytes, pipeInBatches } from '../../src/api/batched-response';

const piece = (i: number) => Buffer.alloc(64 * 1024, i % 251);

/** A response stand-in recording each write the socket would make (one entry per write or writev). */
function recordingSink(options: { stalled?: boolean } = {}) {
  const writes: Buffer[][] = [];
  const sink = new Writable({
    writev(chunks, callback) {
      writes.push(chunks.map((c) => c.chunk as Buffer));
      if (!options.stalled) callback();
    },
    write(chunk: Buffer, _encoding, callback) {
      writes.push([chunk]);
      if (!options.stalled) callback();
    },
  });
  return { sink, writes };
}

/** A source that makes `perTurn` pieces available at once each time it is read, `total` in all (it may be endless). */
function burstySource(total: number, perTurn: number): Readable {
  let made = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        for (let i = 0; i < perTurn && made < total; i++) this.push(piece(made++));
        if (made === total) this.push(null);
      });
    },
  });
}

test('the pieces of one turn go out as one write; every byte arrives, in order', async () => {
  const { sink, writes } = recordingSink();
  const source = burstySource(64, 4);
  pipeInBatches(source, sink);
  await new Promise((resolve) => sink.once('finish', resolve));
  const pieces = writes.flat();
  assert.equal(pieces.length, 64);
  pieces.forEach((p, i) => assert.ok(p.equals(piece(i)), `piece ${i}`));
  assert.ok(writes.length <= 64 / 4 + 1, `${writes.length} writes for 64 pieces arriving 4 at a time`);
  assert.ok(writes.some((w) => w.length >= 4), 'batches of several pieces');
});

test('a response that stops draining pauses the source after one batch', async () => {
  const { sink } = recordingSink({ stalled: true });
  const source = Readable.from((function* () { for (let i = 0; i < 200; i++) yield piece(i); })());
  pipeInBatches(source, sink);
  for (let i = 0; i < 20; i++) await nextTurn();
  assert.ok(source.isPaused(), 'the source is paused');
  assert.ok(sink.writableLength <= maxBatchBytes + 64 * 1024, `${sink.writableLength} bytes wait in the response`);
  assert.ok(source.readableLength + sink.writableLength < 200 * 64 * 1024, 'the source was not read to its end');
  sink.destroy();
});

test('closing the response destroys the source', { timeout: 10_000 }, async () => {
  const { sink } = recordingSink();
  const source = burstySource(Infinity, 2);
  pipeInBatches(source, sink);
  await nextTurn();
  await nextTurn();
  sink.destroy();
  await new Promise((resolve) => source.once('close', resolve));
  assert.ok(source.destroyed);
});

test('a source error sends the pieces handed on before it, then closes the response', async () => {
  const { sink, writes } = recordingSink();
  const source = new Readable({ read() {} });
  source.on('error', () => undefined); // the caller's logging listener
  pipeInBatches(source, sink);
  source.push(piece(0));
  source.push(piece(1));
  await new Promise((resolve) => source.once('data', resolve));
  source.destroy(new Error('a chunk is gone'));
  await new Promise((resolve) => sink.once('close', resolve));
  assert.equal(writes.flat().length, 2, 'both pieces were written before the close');
  assert.equal(sink.writableFinished, false, 'the response did not end normally');
});
