// `npm run bench -- sharepoint`: SharePoint connectors against the HTTPS Graph fake on loopback — the initial
// import of BENCH_SP_FILES small files (default 10,000; items/s), the import of 20 × 50 MiB files (MB/s) next to
// a plain HTTPS download of the same content in the same run (4 at a time, as the connector imports), and a
// no-change incremental run over the small files (seconds; content requests must be 0).
import { randomFillSync } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { loadDevIssuer } from '../src/auth/dev-issuer';
import { GraphFake } from '../test/fixtures/graph-fake';
import { createTestCertificates } from '../test/helpers/test-ca';
import { Cleanup, repoRoot, startBenchStack, type BenchStack } from './lib/stack';
import { RssSampler, snapshotAllProcesses, topOtherProcesses } from './lib/proc';
import { MiB, fixed, localDate, markdownTable, megabytesPerSecond, writeResults } from './lib/report';

export const description = 'SharePoint (Graph fake, HTTPS): 10k small files items/s, 20 × 50 MiB vs plain download, no-change incremental (BENCH_SP_FILES, BENCH_SP_LARGE_MIB)';

const smallCount = Number(process.env.BENCH_SP_FILES ?? 10_000);
const largeCount = 20;
const largeSize = Number(process.env.BENCH_SP_LARGE_MIB ?? 50) * MiB;
const parallel = 4;
const goals = { downloadRatio: 0.7, incrementalSeconds: 5 };

/** Downloads every URL (`parallel` at a time) with node:https trusting the fake's CA; returns seconds and bytes. */
async function plainDownloads(urls: string[], ca: Buffer): Promise<{ seconds: number; bytes: number }> {
  const agent = new https.Agent({ keepAlive: true, ca });
  const queue = [...urls];
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let url = queue.shift(); url; url = queue.shift()) {
        await new Promise<void>((resolve, reject) => {
          https
            .get(url, { agent }, (res) => {
              if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode}`));
              res.on('data', (chunk: Buffer) => (bytes += chunk.length));
              res.on('end', () => resolve());
              res.on('error', reject);
            })
            .on('error', reject);
        });
      }
    }),
  );
  agent.destroy();
  return { seconds: (performance.now() - started) / 1000, bytes };
}

async function syncAndWait(stack: BenchStack, token: string, connectorId: string): Promise<{ seconds: number; job: any }> {
  const call = async (p: string, method = 'GET') => {
    const response = await fetch(`${stack.apiUrl}/api/v1${p}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, body: (await response.json()) as any };
  };
  const started = performance.now();
  const begun = await call(`/sharepoint-connectors/${connectorId}/sync`, 'POST');
  if (begun.status !== 202) throw new Error(`sync: ${begun.status} ${JSON.stringify(begun.body)}`);
  for (;;) {
    const job = await call(`/sharepoint-connectors/${connectorId}/jobs/${begun.body.job.id}`);
    if (!['queued', 'running'].includes(job.body.status)) return { seconds: (performance.now() - started) / 1000, job: job.body };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-bench-sharepoint-'));
  cleanup.add('remove temp dir', () => rm(tempDir, { recursive: true, force: true }));
  process.once('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));
  const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
  try {
    const tls = await createTestCertificates(path.join(tempDir, 'tls'));
    const fake = await GraphFake.start({ tls, pageSize: 500 });
    cleanup.add('stop the Graph fake', () => fake.close());
    log(`Graph fake at ${fake.url}: ${smallCount} small files and ${largeCount} × ${largeSize / MiB} MiB`);
    const small = Buffer.alloc(4096);
    for (let i = 0; i < smallCount; i++) {
      const size = 512 + ((i * 37) % 3584);
      randomFillSync(small, 0, size);
      fake.put(`Small/dept ${i % 50}/file ${i}.txt`, Buffer.from(small.subarray(0, size)));
    }
    for (let i = 0; i < largeCount; i++) {
      const data = Buffer.allocUnsafe(largeSize);
      randomFillSync(data);
      fake.put(`Large/big ${i}.bin`, data);
    }

    const stack = await startBenchStack(
      {
        tempDir,
        ports: { temporal: 27833, temporalUi: 28833, minio: 29800, minioConsole: 29801, api: 28800 },
        databaseUrl: 'postgres://postgres@127.0.0.1:5432/scaidrive_bench_sharepoint',
        bucket: 'bench-sharepoint',
        tenantSettings: { default_user_quota_bytes: null },
        env: { SCAIDRIVE_GRAPH_AUTHORITY_URL: fake.url, SCAIDRIVE_GRAPH_URL: fake.url, NODE_EXTRA_CA_CERTS: tls.caFile },
        // BENCH_PROFILE=dir: V8 CPU profiles of the API and the worker (slower: not for the reported figures).
        cpuProfileDir: process.env.BENCH_PROFILE || undefined,
        log,
      },
      cleanup,
    );
    const issuer = await loadDevIssuer(stack.dataDir, stack.apiUrl, 'scaidrive');
    const token = await issuer.sign({ tenantId: stack.tenantId, subject: 'bench-admin', roles: ['tenant_admin'] });
    const me = (await (await fetch(`${stack.apiUrl}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as any;
    const createConnector = async (folder: string) => {
      const response = await fetch(`${stack.apiUrl}/api/v1/sharepoint-connectors`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: fake.clientSecret, site: fake.siteUrl, folder, target_folder_id: me.personal_space.root_folder_id }),
      });
      const body = (await response.json()) as any;
      if (response.status !== 201) throw new Error(`create connector: ${response.status} ${JSON.stringify(body)}`);
      return body.id as string;
    };

    // Baseline: the same large files straight from their download URLs (what the connector streams from).
    const urls = [...Array(largeCount).keys()].map((i) => fake.downloadUrlOf(`Large/big ${i}.bin`));
    const baseline = await plainDownloads(urls, await readFile(tls.caFile));
    log(`plain download: ${fixed(megabytesPerSecond(baseline.bytes, baseline.seconds), 1)} MB/s`);

    const rss = new RssSampler(stack.worker.pid!, 100);
    rss.start();
    log('large files through a connector');
    const largeConnector = await createConnector('Large');
    const processesBefore = snapshotAllProcesses();
    const large = await syncAndWait(stack, token, largeConnector);
    const cpuByProcess = topOtherProcesses(processesBefore, snapshotAllProcesses(), new Set(), 8);
    log(`large: ${large.job.status} in ${fixed(large.seconds)} s`);
    log('small files through a connector');
    const smallConnector = await createConnector('Small');
    const initial = await syncAndWait(stack, token, smallConnector);
    log(`small: ${initial.job.status} in ${fixed(initial.seconds)} s`);
    const downloadsBefore = fake.contentRequests;
    const incremental = await syncAndWait(stack, token, smallConnector);
    const incrementalDownloads = fake.contentRequests - downloadsBefore;
    log(`incremental: ${incremental.job.status} in ${fixed(incremental.seconds)} s, ${incrementalDownloads} content requests`);
    rss.stop();

    const largeBytes = largeCount * largeSize;
    const baselineMbps = megabytesPerSecond(baseline.bytes, baseline.seconds);
    const largeMbps = megabytesPerSecond(largeBytes, large.seconds);
    const ratio = largeMbps / baselineMbps;
    const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
    const ok = [large, initial, incremental].every((r) => r.job.status === 'succeeded') && initial.job.files_added === smallCount && large.job.files_added === largeCount;
    const table1 = markdownTable(
      ['run', 'files', 'MiB', 'seconds', 'MB/s', 'items/s'],
      [
        [`plain HTTPS download (baseline, ${parallel} at a time)`, largeCount, fixed(baseline.bytes / MiB, 0), fixed(baseline.seconds), fixed(baselineMbps, 1), '—'],
        ['connector: 20 large files', large.job.files_added, fixed(largeBytes / MiB, 0), fixed(large.seconds), fixed(largeMbps, 1), '—'],
        [`connector: ${smallCount} small files (initial)`, initial.job.files_added, fixed(initial.job.bytes / MiB, 1), fixed(initial.seconds), '—', fixed(smallCount / initial.seconds, 0)],
        ['connector: no-change incremental', incremental.job.files_scanned, 0, fixed(incremental.seconds), '—', '—'],
      ],
    );
    const table2 = markdownTable(
      ['goal', 'figure', 'verdict'],
      [
        [`large-file import ≥ ${goals.downloadRatio}× plain download`, `${fixed(ratio)}×`, verdict(ratio >= goals.downloadRatio)],
        [`no-change incremental < ${goals.incrementalSeconds} s`, `${fixed(incremental.seconds)} s`, verdict(incremental.seconds < goals.incrementalSeconds)],
        ['no-change incremental downloads nothing', `${incrementalDownloads} content requests`, verdict(incrementalDownloads === 0)],
        ['worker peak RSS', `${fixed(rss.peakBytes / MiB, 0)} MiB`, '—'],
      ],
    );
    const markdown = [
      `# SharePoint connector benchmark (${localDate()})`,
      '',
      `Machine: ${os.cpus().length} cores, ${fixed(os.totalmem() / 1024 ** 3, 0)} GiB; the Graph fake (HTTPS, in the benchmark's process), MinIO, PostgreSQL, Temporal, the API and the worker all on this machine.`,
      '',
      table1,
      '',
      table2,
      `CPU seconds by process during the large-file import (${fixed(large.seconds)} s wall, ${os.cpus().length} cores; the benchmark process serves the Graph fake): ${cpuByProcess.map((p) => `${p.name} ${fixed(p.cpuSeconds, 1)}`).join(', ')}.`,
      '',
      `Jobs: large ${large.job.status} (added ${large.job.files_added}); small ${initial.job.status} (added ${initial.job.files_added}, errors ${initial.job.error_count}); incremental ${incremental.job.status} (added ${incremental.job.files_added}, updated ${incremental.job.files_updated}).`,
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const written = await writeResults(path.join(repoRoot, 'bench', 'results'), `sharepoint-${localDate()}`, markdown, {
      date: localDate(),
      smallCount,
      largeCount,
      largeSize,
      baseline,
      large: { seconds: large.seconds, job: large.job },
      initial: { seconds: initial.seconds, job: initial.job },
      incremental: { seconds: incremental.seconds, job: incremental.job, contentRequests: incrementalDownloads },
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
