// The API's V8 heap flags take effect when set at run time: with them, V8 keeps the young generation at the size it
// had when they were set, under the same allocation churn that grows it to the default maximum without them.
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
