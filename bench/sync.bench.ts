// `npm run bench -- sync` (issue #12): (a) changes/s pulled through GET /sync/changes from a 100k-change log vs a
// raw SQL keyset scan of the same rows in the same run; (b) API RSS per idle sync WebSocket (10k sockets);
// (c) commit → WebSocket hint latency with 1k sockets spread over two API processes.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { WebSocket } from 'ws';
import { Cleanup, repoRoot, startBenchStack } from './lib/stack';
import { fixed, localDate, markdownTable, writeResults } from './lib/report';
import { readMemory } from './lib/proc';

export const description = 'sync: changes/s via the API vs raw SQL (BENCH_SYNC_CHANGES, default 100000), RSS per idle WebSocket (BENCH_SYNC_SOCKETS, default 10000), commit → hint latency with 1k sockets on two API processes';

const changeCount = Number(process.env.BENCH_SYNC_CHANGES ?? 100_000);
const idleSockets = Number(process.env.BENCH_SYNC_SOCKETS ?? 10_000);
const hintSockets = 1_000;
const hintCommits = 30;
const pageSize = 1000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Opens sockets `count` at a time in batches and resolves when each has said `ready`; `onMessage` sees the rest. */
async function openSockets(url: string, count: number, onMessage?: (index: number, message: { type: string }) => void): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let offset = 0; offset < count; offset += 200) {
    const batch = Array.from({ length: Math.min(200, count - offset) }, (_, i) => {
      const index = offset + i;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      sockets.push(ws);
      return new Promise<void>((resolve, reject) => {
        ws.on('message', (data) => {
          const message = JSON.parse(String(data)) as { type: string };
          if (message.type === 'ready') resolve();
          else onMessage?.(index, message);
        });
        ws.once('close', (code, reason) => reject(new Error(`socket ${index} of ${new URL(url).host} closed with ${code} ${String(reason)}`)));
        ws.once('error', reject);
      });
    });
    await Promise.all(batch);
  }
  return sockets;
}

async function closeSockets(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-bench-sync-'));
  cleanup.add('remove temp dir', () => rm(tempDir, { recursive: true, force: true }));
  process.once('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));
  try {
    const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
    const stack = await startBenchStack(
      {
        tempDir,
        ports: { temporal: 27533, temporalUi: 28533, minio: 29500, minioConsole: 29501, api: 28500 },
        databaseUrl: 'postgres://postgres@127.0.0.1:5432/scaidrive_bench_sync',
        bucket: 'bench-sync',
        env: { SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN: String(idleSockets * 2), SCAIDRIVE_SYNC_WS_MAX_PER_TENANT: String(idleSockets * 2) },
        log,
      },
      cleanup,
    );
    log('starting a second API process (another replica on the same database)');
    const second = await stack.startApi(28501);
    const api = (base: string, pathname: string) => `${base}/api/v1${pathname}`;
    const headers = { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' };
    const getJson = async (url: string): Promise<any> => {
      const response = await fetch(url, { headers });
      const body = await response.json();
      if (response.status !== 200) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
      return body;
    };
    const me = await getJson(api(stack.apiUrl, '/me'));
    const spaceId: string = me.personal_space.id;
    const rootId: string = me.personal_space.root_folder_id;

    // (a) A cursor from a resync, then `changeCount` committed changes after it (inserted straight into the log in
    // batches: the commit trigger numbers them as any mutation's).
    let cursor: string = '0';
    for (let more = true; more; ) {
      const page = await getJson(api(stack.apiUrl, `/sync/changes?cursor=${cursor}&limit=${pageSize}`));
      cursor = encodeURIComponent(page.next_cursor);
      more = page.has_more;
    }
    const startPosition = Number((await sql<{ position: number }>`select position from change_log_heads where tenant_id = ${stack.tenantId}`.execute(stack.db)).rows[0]?.position ?? 0);
    log(`seeding ${changeCount} changes`);
    for (let offset = 0; offset < changeCount; offset += 10_000) {
      const n = Math.min(10_000, changeCount - offset);
      await sql`insert into change_log (tenant_id, type, node_id, parent_id, space_id, version_id, name, kind)
        select ${stack.tenantId}, 'created', 'fil_bench' || lpad((g + ${offset})::text, 8, '0'), ${rootId}, ${spaceId}, 'ver_bench' || g, 'file-' || (g + ${offset}) || '.txt', 'file'
        from generate_series(1, ${n}) g`.execute(stack.db);
    }
    await sql`analyze change_log`.execute(stack.db);

    log('pulling them through the API');
    let pulled = 0;
    const apiStarted = process.hrtime.bigint();
    for (let more = true; more; ) {
      const page = await getJson(api(stack.apiUrl, `/sync/changes?cursor=${cursor}&limit=${pageSize}`));
      pulled += page.changes.length;
      cursor = encodeURIComponent(page.next_cursor);
      more = page.has_more;
    }
    const apiSeconds = Number(process.hrtime.bigint() - apiStarted) / 1e9;
    if (pulled !== changeCount) throw new Error(`pulled ${pulled} changes, expected ${changeCount}`);

    log('scanning the same rows with raw SQL (keyset pages of the same size)');
    let scanned = 0;
    const sqlStarted = process.hrtime.bigint();
    for (let after = startPosition; ; ) {
      const rows = await sql<{ position: number }>`
        select position, type, node_id, kind, parent_id, space_id, version_id, name, at from change_log
        where tenant_id = ${stack.tenantId} and position > ${after} order by position limit ${pageSize}`.execute(stack.db);
      if (rows.rows.length === 0) break;
      scanned += rows.rows.length;
      after = Number(rows.rows[rows.rows.length - 1]!.position);
    }
    const sqlSeconds = Number(process.hrtime.bigint() - sqlStarted) / 1e9;
    const apiRate = pulled / apiSeconds;
    const sqlRate = scanned / sqlSeconds;

    // (b) Idle sockets on one API process: its RSS before and after.
    const wsUrl = (base: string) => `${base.replace('http', 'ws')}/api/v1/sync/ws?token=${encodeURIComponent(stack.token)}`;
    const heapUsed = async () => Number(/^scaidrive_process_nodejs_heap_size_used_bytes (\d+)/m.exec(await (await fetch(`${stack.apiUrl}/metrics`)).text())?.[1]);
    await sleep(2_000);
    const rssBefore = readMemory(stack.api.pid!)!.rssBytes;
    const heapBefore = await heapUsed();
    log(`opening ${idleSockets} idle WebSockets`);
    const idle = await openSockets(wsUrl(stack.apiUrl), idleSockets);
    // Idle long enough for V8 to collect the handshakes' garbage.
    await sleep(15_000);
    const rssAfter = readMemory(stack.api.pid!)!.rssBytes;
    const heapAfter = await heapUsed();
    const metrics = await (await fetch(`${stack.apiUrl}/metrics`)).text();
    const gauge = Number(/^scaidrive_sync_websocket_connections (\d+)/m.exec(metrics)?.[1]);
    const perSocket = (rssAfter - rssBefore) / idleSockets;
    await closeSockets(idle);

    // (c) 500 sockets on each API process; each commit goes through the first.
    log(`commit → hint latency: ${hintSockets} sockets over two API processes, ${hintCommits} commits`);
    const received: (number | undefined)[] = new Array(hintSockets);
    const onHint = (index: number, message: { type: string }) => {
      if (message.type === 'changes' && received[index] === undefined) received[index] = performance.now();
    };
    const hintSocketsOpen = [
      ...(await openSockets(wsUrl(stack.apiUrl), hintSockets / 2, (i, m) => onHint(i, m))),
      ...(await openSockets(wsUrl(second.url), hintSockets / 2, (i, m) => onHint(i + hintSockets / 2, m))),
    ];
    const latencies: number[] = [];
    const secondLatencies: number[] = [];
    let missed = 0;
    for (let commit = 0; commit < hintCommits; commit++) {
      received.fill(undefined);
      const started = performance.now();
      const response = await fetch(api(stack.apiUrl, '/folders'), { method: 'POST', headers, body: JSON.stringify({ parent_id: rootId, name: `hint-${commit}` }) });
      if (response.status !== 201) throw new Error(`mkdir: ${response.status} ${await response.text()}`);
      const deadline = performance.now() + 5_000;
      while (received.some((r) => r === undefined) && performance.now() < deadline) await sleep(5);
      received.forEach((at, index) => {
        if (at === undefined) {
          missed += 1;
          return;
        }
        latencies.push(at - started);
        if (index >= hintSockets / 2) secondLatencies.push(at - started);
      });
      await sleep(200);
    }
    await closeSockets(hintSocketsOpen);
    latencies.sort((a, b) => a - b);
    secondLatencies.sort((a, b) => a - b);

    const goals: (string | number)[][] = [
      ['(a) changes/s through the API', `${fixed(apiRate, 0)}/s`, '≥ 50,000/s', apiRate >= 50_000 ? 'met' : 'MISSED'],
      ['(a) API vs raw SQL scan', `${fixed(apiRate / sqlRate)}× (${fixed(apiRate, 0)} vs ${fixed(sqlRate, 0)}/s)`, '≥ 0.5×', apiRate / sqlRate >= 0.5 ? 'met' : 'MISSED'],
      ['(b) API RSS per idle WebSocket', `${fixed(perSocket / 1024)} KiB`, '≤ 8 KB', perSocket <= 8 * 1024 ? 'met' : 'MISSED'],
      ['(c) commit → hint p95 (1k sockets, 2 API processes)', `${fixed(percentile(latencies, 95))} ms`, '< 250 ms', percentile(latencies, 95) < 250 && missed === 0 ? 'met' : 'MISSED'],
    ];
    const date = localDate();
    const markdown = [
      `# Sync benchmark — ${date}`,
      '',
      `\`npm run bench -- sync\`, ${new Date().toISOString()}. Two API processes (\`node dist/scaidrive.mjs api\`) on one PostgreSQL, the benchmark as the client over loopback; ${os.cpus().length} cores, Node ${process.version}.`,
      '',
      '## (a) Pulling the change feed',
      '',
      markdownTable(
        ['path', 'changes', 'page size', 'seconds', 'changes/s'],
        [
          ['GET /sync/changes (signed cursor, permission filter, JSON)', pulled, pageSize, fixed(apiSeconds, 3), fixed(apiRate, 0)],
          ['raw SQL keyset scan of the same rows (baseline)', scanned, pageSize, fixed(sqlSeconds, 3), fixed(sqlRate, 0)],
        ],
      ),
      '',
      '## (b) Idle WebSockets',
      '',
      markdownTable(
        ['sockets', 'gauge', 'API RSS before', 'API RSS after', 'RSS per socket', 'V8 heap used per socket'],
        [[idleSockets, gauge, `${fixed(rssBefore / 2 ** 20, 1)} MiB`, `${fixed(rssAfter / 2 ** 20, 1)} MiB`, `${fixed(perSocket / 1024)} KiB`, `${fixed((heapAfter - heapBefore) / idleSockets / 1024)} KiB`]],
      ),
      '',
      '## (c) Commit → hint latency',
      '',
      markdownTable(
        ['sockets', 'commits', 'samples', 'missed', 'p50 ms', 'p95 ms', 'p95 ms (sockets on the other API process)'],
        [[hintSockets, hintCommits, latencies.length, missed, fixed(percentile(latencies, 50)), fixed(percentile(latencies, 95)), fixed(percentile(secondLatencies, 95))]],
      ),
      '',
      '## Goals',
      '',
      markdownTable(['goal', 'measured', 'target', 'result'], goals),
      '',
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const written = await writeResults(path.join(repoRoot, 'bench', 'results'), `sync-${date}`, markdown, {
      date,
      changes: { pulled, apiSeconds, apiRate, scanned, sqlSeconds, sqlRate },
      sockets: { idleSockets, gauge, rssBefore, rssAfter, perSocket, heapBefore, heapAfter },
      hints: { hintSockets, hintCommits, missed, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p95Second: percentile(secondLatencies, 95) },
      goals,
    });
    log(`wrote ${written.join(', ')}`);
    return 0;
  } finally {
    await cleanup.run();
  }
}
