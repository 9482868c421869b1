// `npm run bench -- connectors`: an SMB connector's initial import of a tree of BENCH_FILES files (default 5000)
// totalling BENCH_BYTES (default 1 GiB) from a private Samba on loopback, next to Samba's own client copying
// the same tree (`smbclient -c 'prompt; recurse; mget *'`) in the same run; then an incremental run with
// nothing changed; the worker's peak RSS through the import, early and late (flat in the number of files?).
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadDevIssuer } from '../src/auth/dev-issuer';
import { startSamba, type SambaServer } from '../test/helpers/samba';
import { Cleanup, repoRoot, startBenchStack, type BenchStack } from './lib/stack';
import { RssSampler, snapshotAllProcesses, topOtherProcesses } from './lib/proc';
import { MiB, fixed, localDate, markdownTable, megabytesPerSecond, writeResults } from './lib/report';

const exec = promisify(execFile);

export const description = 'SMB import of a 5k-file / 1 GiB tree vs smbclient mget, no-change incremental, worker RSS (BENCH_FILES, BENCH_BYTES)';

const fileCount = Number(process.env.BENCH_FILES ?? 5000);
const totalBytes = Number(process.env.BENCH_BYTES ?? 1024 * MiB);
const goals = { throughputRatio: 0.5, incrementalSeconds: 10, rssGrowth: 1.25 };

/**
 * The tree: 50 folders of two levels, a few large files (a quarter of the bytes in four files) and the rest
 * spread over small and medium files, random (incompressible) content, mtimes an hour back.
 */
async function writeTree(root: string): Promise<{ files: number; bytes: number }> {
  const large = Math.min(4, fileCount);
  const largeSize = Math.floor(totalBytes / 4 / large);
  const smallCount = fileCount - large;
  const smallBudget = totalBytes - largeSize * large;
  const mtime = Math.floor(Date.now() / 1000) - 3600;
  const buffer = Buffer.alloc(Math.max(largeSize, 4 * MiB));
  let bytes = 0;
  const write = async (relative: string, size: number) => {
    const full = path.join(root, relative);
    await mkdir(path.dirname(full), { recursive: true });
    randomFillSync(buffer, 0, size);
    await writeFile(full, buffer.subarray(0, size));
    await utimes(full, mtime, mtime);
    bytes += size;
  };
  for (let i = 0; i < large; i++) await write(`large/file-${i}.bin`, largeSize);
  // Sizes from a fixed spread (1×…2× of 1/3 the mean, and some 3× the mean): a realistic mix, same total.
  const weights = Array.from({ length: smallCount }, (_, i) => (i % 10 === 0 ? 6 : 1 + (i % 7) / 6));
  const weightSum = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < smallCount; i++) {
    const size = Math.max(1, Math.floor((smallBudget * weights[i]!) / weightSum));
    await write(`dept ${i % 10}/team ${Math.floor(i / 10) % 5}/doc ${i}.dat`, size);
  }
  return { files: fileCount, bytes };
}

async function smbclientCopy(samba: SambaServer, into: string): Promise<number> {
  await mkdir(into, { recursive: true });
  const started = performance.now();
  await exec(
    'smbclient',
    [`//${samba.host}/${samba.share}`, '-p', String(samba.port), '-U', `${samba.username}%${samba.password}`, '-c', `prompt; recurse; lcd "${into}"; mget *`],
    { maxBuffer: 64 * MiB, timeout: 30 * 60_000 },
  );
  return (performance.now() - started) / 1000;
}

interface JobFigures {
  seconds: number;
  job: Record<string, any>;
  rssEarly: number;
  rssLate: number;
}

async function syncAndWait(stack: BenchStack, token: string, connectorId: string, rss: RssSampler, earlyFiles: number): Promise<JobFigures> {
  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${stack.apiUrl}/api/v1${p}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const started = performance.now();
  rss.setPhase('early');
  const begun = await api(`/smb-connectors/${connectorId}/sync`, { method: 'POST' });
  if (begun.status !== 202) throw new Error(`sync: ${begun.status} ${JSON.stringify(begun.body)}`);
  let late = false;
  for (;;) {
    const job = await api(`/smb-connectors/${connectorId}/jobs/${begun.body.job.id}`);
    if (!late && job.body.files_scanned >= earlyFiles) {
      late = true;
      rss.setPhase('late');
    }
    if (!['queued', 'running'].includes(job.body.status)) {
      const seconds = (performance.now() - started) / 1000;
      rss.setPhase('after');
      return { seconds, job: job.body, rssEarly: rss.phasePeaks.get('early') ?? 0, rssLate: rss.phasePeaks.get('late') ?? 0 };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-bench-connectors-'));
  cleanup.add('remove temp dir', () => rm(tempDir, { recursive: true, force: true }));
  process.once('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));
  const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
  try {
    const samba = await startSamba();
    cleanup.add('stop Samba', () => samba.dispose());
    log(`writing ${fileCount} files / ${fixed(totalBytes / MiB, 0)} MiB into the share (${samba.shareDir})`);
    const tree = await writeTree(samba.shareDir);

    const stack = await startBenchStack(
      {
        tempDir,
        ports: { temporal: 27733, temporalUi: 28733, minio: 29700, minioConsole: 29701, api: 28700 },
        databaseUrl: 'postgres://postgres@127.0.0.1:5432/scaidrive_bench_connectors',
        bucket: 'bench-connectors',
        tenantSettings: { default_user_quota_bytes: null },
        // BENCH_PROFILE=dir: V8 CPU profiles of the API and the worker (slower: not for the reported figures).
        cpuProfileDir: process.env.BENCH_PROFILE || undefined,
        log,
      },
      cleanup,
    );
    const issuer = await loadDevIssuer(stack.dataDir, stack.apiUrl, 'scaidrive');
    const token = await issuer.sign({ tenantId: stack.tenantId, subject: 'bench-admin', roles: ['tenant_admin'] });
    const me = (await (await fetch(`${stack.apiUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as any;

    // Baseline first (it also warms the page cache for both readers alike).
    log('baseline: smbclient mget of the whole tree');
    const warm = await smbclientCopy(samba, path.join(tempDir, 'smbclient-warm'));
    await rm(path.join(tempDir, 'smbclient-warm'), { recursive: true, force: true });
    const baselineSeconds = await smbclientCopy(samba, path.join(tempDir, 'smbclient-copy'));
    await rm(path.join(tempDir, 'smbclient-copy'), { recursive: true, force: true });
    log(`smbclient: ${fixed(baselineSeconds)} s (warm-up ${fixed(warm)} s)`);

    const created = await fetch(`${stack.apiUrl}/api/v1/smb-connectors`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host: samba.host, port: samba.port, share: samba.share, username: samba.username, password: samba.password, target_folder_id: me.personal_space.root_folder_id }),
    });
    const connector = (await created.json()) as any;
    if (created.status !== 201) throw new Error(`create connector: ${created.status} ${JSON.stringify(connector)}`);

    const rss = new RssSampler(stack.worker.pid!, 100);
    rss.start();
    const earlyFiles = Math.min(1000, Math.floor(fileCount / 5));
    log('initial import through the connector');
    const processesBefore = snapshotAllProcesses();
    const initial = await syncAndWait(stack, token, connector.id, rss, earlyFiles);
    const cpuByProcess = topOtherProcesses(processesBefore, snapshotAllProcesses(), new Set(), 8);
    log(`initial: ${initial.job.status} in ${fixed(initial.seconds)} s (${initial.job.files_added} added, ${initial.job.error_count} errors)`);
    log('incremental run, nothing changed');
    const incremental = await syncAndWait(stack, token, connector.id, rss, Number.MAX_SAFE_INTEGER);
    log(`incremental: ${incremental.job.status} in ${fixed(incremental.seconds)} s`);
    rss.stop();

    const mbps = (seconds: number) => megabytesPerSecond(tree.bytes, seconds);
    const ratio = mbps(initial.seconds) / mbps(baselineSeconds);
    const growth = initial.rssLate / initial.rssEarly;
    const ok = initial.job.status === 'succeeded' && initial.job.files_added === tree.files && incremental.job.status === 'succeeded' && incremental.job.files_added + incremental.job.files_updated === 0;
    const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
    const table1 = markdownTable(
      ['run', 'files', 'MiB', 'seconds', 'MB/s', 'files/s'],
      [
        ['smbclient mget (baseline)', tree.files, fixed(tree.bytes / MiB, 0), fixed(baselineSeconds), fixed(mbps(baselineSeconds), 1), fixed(tree.files / baselineSeconds, 0)],
        ['connector initial import', initial.job.files_added, fixed(initial.job.bytes / MiB, 0), fixed(initial.seconds), fixed(mbps(initial.seconds), 1), fixed(tree.files / initial.seconds, 0)],
        ['connector incremental (no change)', incremental.job.files_scanned, 0, fixed(incremental.seconds), '—', fixed(incremental.job.files_scanned / incremental.seconds, 0)],
      ],
    );
    const table2 = markdownTable(
      ['goal', 'figure', 'verdict'],
      [
        [`import throughput ≥ ${goals.throughputRatio}× smbclient`, `${fixed(ratio)}×`, verdict(ratio >= goals.throughputRatio)],
        [`no-change incremental of ${tree.files} files < ${goals.incrementalSeconds} s`, `${fixed(incremental.seconds)} s`, verdict(incremental.seconds < goals.incrementalSeconds)],
        [
          `worker RSS flat: peak after the first ${earlyFiles} files ≤ ${goals.rssGrowth}× peak during them`,
          `${fixed(initial.rssEarly / MiB, 0)} → ${fixed(initial.rssLate / MiB, 0)} MiB (${fixed(growth)}×)`,
          verdict(growth <= goals.rssGrowth),
        ],
        ['worker peak RSS overall', `${fixed(rss.peakBytes / MiB, 0)} MiB`, '—'],
      ],
    );
    const markdown = [
      `# Connectors benchmark (${localDate()})`,
      '',
      `Machine: ${os.cpus().length} cores, ${fixed(os.totalmem() / 1024 ** 3, 0)} GiB; Samba (smbd, default settings, async I/O), MinIO, PostgreSQL, Temporal, the API and the worker all on this machine.`,
      `Tree: ${tree.files} files / ${fixed(tree.bytes / MiB, 0)} MiB in 50 folders (four large files hold a quarter of the bytes), random content.`,
      '',
      table1,
      '',
      table2,
      `CPU seconds by process during the initial import (${fixed(initial.seconds)} s wall, ${os.cpus().length} cores): ${cpuByProcess.map((p) => `${p.name} ${fixed(p.cpuSeconds, 1)}`).join(', ')}.`,
      '',
      `Jobs: initial ${initial.job.status} (added ${initial.job.files_added}, errors ${initial.job.error_count}); incremental ${incremental.job.status} (added ${incremental.job.files_added}, updated ${incremental.job.files_updated}).`,
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const written = await writeResults(path.join(repoRoot, 'bench', 'results'), `connectors-${localDate()}`, markdown, {
      date: localDate(),
      tree,
      baselineSeconds,
      initial: { seconds: initial.seconds, job: initial.job, rssEarlyBytes: initial.rssEarly, rssLateBytes: initial.rssLate },
      incremental: { seconds: incremental.seconds, job: incremental.job },
      workerPeakRssBytes: rss.peakBytes,
      cpuByProcess,
      ratio,
    });
    log(`results: ${written.join(', ')}`);
    return ok ? 0 : 1;
  } finally {
    await cleanup.run();
  }
}
