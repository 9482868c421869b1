// The API's V8 heap flags take effect when set at run time: with them, V8 keeps the young generation at the size it
// had when they were set, under the same allocation churn that grows it to the default maximum without them. And in
// a tuned process, request-body pieces copied out are collected every 8 MiB rather than when V8 gets round to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The young generation's size (MiB) before and after allocation churn, in a fresh process. */
async function newSpaceMiB(tuned: boolean): Promise<{ before: number; after: number }> {
  const script = `
    import v8 from 'node:v8';
    import { tuneHeapForApi } from './src/api/heap-tuning.ts';
    const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20;
    if (${tuned}) tuneHeapForApi();
    const before = newSpace();
    let kept = [];
    for (let i = 0; i < 3e6; i++) { kept.push({ i, s: 'x' + i }); if (kept.length > 2e5) kept = []; }
    process.stdout.write(JSON.stringify({ before, after: newSpace() }));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
  return JSON.parse(stdout) as { before: number; after: number };
}

test('set at run time, the flags keep the young generation at the size it had', async () => {
  const [plain, tuned] = await Promise.all([newSpaceMiB(false), newSpaceMiB(true)]);
  assert.equal(tuned.after, tuned.before, `tuned: new space ${tuned.before} → ${tuned.after} MiB`);
  assert.ok(plain.after >= 4 * tuned.after, `without the flags the same churn grows it (${plain.before} → ${plain.after} MiB)`);
});

/** The most memory held by array buffers while 64 MiB of 64 KiB body pieces are received and dropped, in a fresh process. */
async function droppedPiecesPeakMiB(tuned: boolean): Promise<number> {
  const script = `
    import { tuneHeapForApi, bodyPiecesDropped } from './src/api/heap-tuning.ts';
    if (${tuned}) tuneHeapForApi();
    const chunk = Buffer.allocUnsafeSlow(8 * 2 ** 20);
    let peak = 0;
    for (let i = 0; i < 1024; i++) {
      // A socket read: a fresh 64 KiB buffer of its own, copied into the chunk and dropped.
      const piece = Buffer.allocUnsafeSlow(64 * 1024).fill(i);
      piece.copy(chunk, (i % 128) * piece.length);
      bodyPiecesDropped(piece.length);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    process.stdout.write(JSON.stringify(peak / 2 ** 20));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
  return JSON.parse(stdout) as number;
}

test('in a tuned process, dropped body pieces are collected every 8 MiB instead of piling up', async () => {
  const [plain, tuned] = await Promise.all([droppedPiecesPeakMiB(false), droppedPiecesPeakMiB(true)]);
  // The 8 MiB chunk buffer itself, plus the pieces not collected yet (~8 MiB tuned; ~24 MiB untuned on Node 20).
  assert.ok(tuned < 8 + 12, `tuned: ${tuned.toFixed(1)} MiB held at the most (untuned ${plain.toFixed(1)})`);
  assert.ok(plain > 8 + 20, `untuned, the pieces pile up (${plain.toFixed(1)} MiB held at the most)`);
});

/**
 * Heap used (MiB) before and 1.5 s after a request to a server counting requests with requestInFlight, in a fresh
 * process holding ~55 MiB of old-generation garbage; with `holdOpen` another request's response is still unfinished
 * all along.
 */
async function heapAroundQuietMoment(tuned: boolean, holdOpen: boolean): Promise<{ before: number; after: number }> {
  const script = `
    import http from 'node:http';
    import v8 from 'node:v8';
    import { tuneHeapForApi, requestInFlight } from './src/api/heap-tuning.ts';
    if (${tuned}) tuneHeapForApi();
    const pending = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/hold') { res.write('started'); pending.push(res); } else res.end('ok');
    });
    server.on('request', (_req, res) => requestInFlight(res));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = 'http://127.0.0.1:' + server.address().port;
    (function garbage() { const kept = []; for (let i = 0; i < 40; i++) kept.push(Array.from({ length: 20000 }, (_, j) => ({ j, s: 'x' + j }))); return kept.length; })();
    const used = () => v8.getHeapStatistics().used_heap_size / 2 ** 20;
    const before = used();
    if (${holdOpen}) await new Promise((resolve) => http.get(base + '/hold', (res) => res.once('data', resolve)));
    await new Promise((resolve) => http.get(base + '/done', (res) => { res.resume(); res.once('end', resolve); }));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    process.stdout.write(JSON.stringify({ before, after: used() }));
    process.exit(0);`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
  return JSON.parse(stdout) as { before: number; after: number };
}

test('in a tuned process, a second with no request in flight collects the old generation; not while one is in flight', async () => {
  const [tuned, untuned, busy] = await Promise.all([heapAroundQuietMoment(true, false), heapAroundQuietMoment(false, false), heapAroundQuietMoment(true, true)]);
  assert.ok(tuned.after < tuned.before - 30, `tuned, after a quiet second: ${tuned.before.toFixed(1)} → ${tuned.after.toFixed(1)} MiB used`);
  assert.ok(untuned.after > untuned.before - 10, `untuned, nothing collects it: ${untuned.before.toFixed(1)} → ${untuned.after.toFixed(1)} MiB`);
  assert.ok(busy.after > busy.before - 10, `a response still open is not a quiet moment: ${busy.before.toFixed(1)} → ${busy.after.toFixed(1)} MiB`);
});
