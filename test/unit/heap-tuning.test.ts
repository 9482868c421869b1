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
