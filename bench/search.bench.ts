// `npm run bench -- search`: search end to end with the real Weaviate and the local provider.
//  1. Index BENCH_SEARCH_DOCS documents (default 10,000, ~10 passages each) through the API path: direct uploads →
//     commit → vectorize workflow (extract, passages, embed, upsert) → indexed; docs/s and passages/s.
//  2. The same passages' vectors imported straight into Weaviate with weaviate-client batches (the baseline, same
//     run): passages/s, and the ratio of the API path to it.
//  3. Query p50/p95 for keyword, semantic and hybrid search at 1 and 8 clients, with permission filtering on: the
//     searcher reads their personal space and four shares; a fifth of the documents are another user's.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { sql } from 'kysely';
import { loadDevIssuer } from '../src/auth/dev-issuer';
import { startWeaviate } from '../src/search/weaviate-server';
import { LocalNgramProvider } from '../src/search/embeddings';
import { PassageStore } from '../src/search/passage-store';
import { defaultPassageOptions, splitPassages } from '../src/search/passages';
import { passageId } from '../src/services/search-index.service';
import { Cleanup, repoRoot, startBenchStack, stopChild } from './lib/stack';
import { RssSampler } from './lib/proc';
import { fixed, localDate, markdownTable, writeResults } from './lib/report';

export const description = 'search: index 10k documents end to end vs direct Weaviate batch import, keyword/semantic/hybrid p50/p95 at 1 and 8 clients (BENCH_SEARCH_DOCS)';

const docCount = Number(process.env.BENCH_SEARCH_DOCS ?? 10_000);
const paragraphsPerDoc = Number(process.env.BENCH_SEARCH_PARAGRAPHS ?? 10);
const uploadConcurrency = 8;
const requestsPerClient = { 1: 200, 8: 40 } as const;
const goals = { importRatio: 0.5, keywordP95: 50, semanticP95: 100, hybridP95: 100 };
const weaviatePorts = { http: 29980, grpc: 29990 };

/** A deterministic pseudo-random generator (mulberry32): the same corpus on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const syllables = ['ka', 'lo', 'mir', 'tan', 've', 'sol', 'dri', 'un', 'pe', 'gor', 'shi', 'ba', 'nel', 'tu', 'rak', 'zo', 'fen', 'lu', 'qui', 'mar'];
const random = prng(20261203);
/** 3,000 made-up words; drawn with a skew so some are common and most are rare, as in real text. */
const vocabulary = Array.from({ length: 3000 }, (_, i) => `${syllables[i % 20]}${syllables[Math.floor(i / 20) % 20]}${i >= 400 ? syllables[Math.floor(i / 400) % 20] : ''}`);
const word = () => vocabulary[Math.floor(vocabulary.length * random() ** 2)]!;
const paragraph = () => Array.from({ length: 140 }, word).join(' ') + '.';
const documentText = () => Array.from({ length: paragraphsPerDoc }, paragraph).join('\n\n');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `clients` loops of `perClient` requests each; returns sorted latencies (ms). */
async function measure(clients: number, perClient: number, request: (client: number, i: number) => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < perClient; i++) {
        const started = process.hrtime.bigint();
        await request(client, i);
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-bench-search-'));
  cleanup.add('remove temp dir', () => rm(tempDir, { recursive: true, force: true }));
  process.once('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));
  const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
  try {
    log(`starting Weaviate on 127.0.0.1:${weaviatePorts.http} (gRPC ${weaviatePorts.grpc})`);
    const weaviate: ChildProcess = await startWeaviate({
      binary: path.join(process.env.SCAIDRIVE_TOOLS_DIR ?? path.join(os.homedir(), '.cache', 'scaidrive', 'bin'), 'weaviate-server'),
      dataDir: path.join(tempDir, 'weaviate'),
      host: '127.0.0.1',
      port: weaviatePorts.http,
      grpcPort: weaviatePorts.grpc,
    });
    cleanup.add('stop Weaviate', () => stopChild(weaviate));
    const weaviateUrl = `http://127.0.0.1:${weaviatePorts.http}`;
    const stack = await startBenchStack(
      {
        tempDir,
        ports: { temporal: 27933, temporalUi: 28933, minio: 29900, minioConsole: 29901, api: 28900 },
        databaseUrl: 'postgres://postgres@127.0.0.1:5432/scaidrive_bench_search',
        bucket: 'bench-search',
        tenantSettings: { default_user_quota_bytes: null },
        env: {
          SCAIDRIVE_WEAVIATE_URL: weaviateUrl,
          SCAIDRIVE_WEAVIATE_GRPC_PORT: String(weaviatePorts.grpc),
          // The benchmark measures search, not the per-user request limit.
          SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: '1000000',
          SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: '1000000',
        },
        log,
      },
      cleanup,
    );
    const api = (pathname: string) => `${stack.apiUrl}/api/v1${pathname}`;
    const issuer = await loadDevIssuer(stack.dataDir, stack.apiUrl, 'scaidrive');
    const searcherToken = await issuer.sign({ tenantId: stack.tenantId, subject: 'searcher', roles: [] });
    const otherToken = await issuer.sign({ tenantId: stack.tenantId, subject: 'other', roles: [] });
    const call = async (method: string, pathname: string, token: string, body?: unknown): Promise<any> => {
      const response = await fetch(api(pathname), { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await response.text();
      if (response.status >= 300) throw new Error(`${method} ${pathname}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const searcher = await call('GET', '/me', searcherToken);
    const other = await call('GET', '/me', otherToken);
    const shares = [];
    for (let i = 0; i < 4; i++) shares.push(await call('POST', '/shares', searcherToken, { name: `Share ${i}` }));
    // Where the documents go: the searcher's space and shares (4/5), the other user's space (1/5, never visible).
    const targets = [
      { folderId: searcher.personal_space.root_folder_id, token: searcherToken },
      ...shares.map((share: any) => ({ folderId: share.root_folder_id, token: searcherToken })),
      { folderId: other.personal_space.root_folder_id, token: otherToken },
    ];

    log(`indexing ${docCount} documents (${paragraphsPerDoc} paragraphs each) through the API path`);
    const rss = new RssSampler(stack.worker.pid!, 200);
    rss.start();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: uploadConcurrency }, async () => {
        for (let i = next++; i < docCount; i = next++) {
          const target = targets[i % targets.length]!;
          const response = await fetch(api(`/folders/${target.folderId}/files/doc-${String(i).padStart(6, '0')}.txt`), {
            method: 'PUT',
            headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/octet-stream' },
            body: documentText(),
          });
          await response.arrayBuffer();
          if (response.status !== 201) throw new Error(`upload ${i}: ${response.status}`);
        }
      }),
    );
    const uploadSeconds = (performance.now() - started) / 1000;
    log(`uploaded in ${fixed(uploadSeconds)} s; waiting for the index`);
    const deadline = Date.now() + 60 * 60_000;
    let done = 0;
    for (;;) {
      const row = await sql<{ done: string; failed: string }>`select count(*) filter (where status in ('indexed', 'unsupported', 'failed')) as done, count(*) filter (where status = 'failed') as failed from search_documents`.execute(stack.db);
      done = Number(row.rows[0]!.done);
      if (done >= docCount) break;
      if (Date.now() > deadline) throw new Error(`only ${done} of ${docCount} indexed within an hour`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const indexSeconds = (performance.now() - started) / 1000;
    rss.stop();
    const totals = await sql<{ passages: string; failed: string }>`select coalesce(sum(passages), 0) as passages, count(*) filter (where status <> 'indexed') as failed from search_documents`.execute(stack.db);
    const passageCount = Number(totals.rows[0]!.passages);
    const notIndexed = Number(totals.rows[0]!.failed);
    log(`indexed ${docCount} documents, ${passageCount} passages in ${fixed(indexSeconds)} s (${notIndexed} not indexed)`);

    // Baseline: the same passages and vectors, batch-imported straight into Weaviate (another Weaviate tenant).
    log('direct batch import of the same passages with weaviate-client');
    const embeddings = new LocalNgramProvider(256);
    const store = await PassageStore.connect({ url: weaviateUrl, grpcPort: weaviatePorts.grpc });
    cleanup.add('close passage store', () => store.close());
    const documents = await sql<{ version_id: string; file_id: string; space_id: string; name: string; text: string }>`
      select d.version_id, d.file_id, n.space_id, n.name, d.text from search_documents d join nodes n on n.id = d.file_id where d.status = 'indexed'`.execute(stack.db);
    const prepared: Parameters<PassageStore['upsert']>[1] = [];
    for (const doc of documents.rows) {
      const passages = splitPassages(`${doc.name}\n${doc.text}`, defaultPassageOptions);
      const vectors = await embeddings.embed(passages.map((p) => p.text));
      passages.forEach((p, j) => prepared.push({ id: passageId(doc.version_id, p.index), vector: vectors[j]!, properties: { file_id: doc.file_id, version_id: doc.version_id, space_id: doc.space_id, passage_index: p.index, text: p.text } }));
    }
    const directStarted = performance.now();
    for (let i = 0; i < prepared.length; i += 1000) await store.upsert('bench-direct-import', prepared.slice(i, i + 1000));
    const directSeconds = (performance.now() - directStarted) / 1000;
    const apiPassagesPerSecond = passageCount / indexSeconds;
    const directPassagesPerSecond = prepared.length / directSeconds;
    const importRatio = apiPassagesPerSecond / directPassagesPerSecond;
    log(`direct: ${prepared.length} passages in ${fixed(directSeconds)} s`);

    // Queries: two words each, drawn like the text's words.
    const queryRandom = prng(7);
    const queries = Array.from({ length: 500 }, () => `${vocabulary[Math.floor(vocabulary.length * queryRandom() ** 2)]} ${vocabulary[Math.floor(vocabulary.length * queryRandom() ** 2)]}`);
    const latencyRows: (string | number)[][] = [];
    const p95s: Record<string, number> = {};
    for (const clients of [1, 8] as const) {
      for (const mode of ['keyword', 'semantic', 'hybrid'] as const) {
        const request = async (client: number, i: number) => {
          const q = queries[(client * 97 + i) % queries.length]!;
          const response = await fetch(api(`/search?q=${encodeURIComponent(q)}&mode=${mode}&limit=20`), { headers: { authorization: `Bearer ${searcherToken}` } });
          const body = (await response.json()) as any;
          if (response.status !== 200) throw new Error(`search ${mode}: ${response.status} ${JSON.stringify(body)}`);
          if (body.degraded) throw new Error(`search ${mode} degraded: ${body.degraded_reason}`);
        };
        await measure(2, 10, request); // warm-up
        const latencies = await measure(clients, requestsPerClient[clients], request);
        p95s[`${mode}@${clients}`] = percentile(latencies, 95);
        latencyRows.push([mode, clients, latencies.length, fixed(percentile(latencies, 50)), fixed(percentile(latencies, 95))]);
        log(`${mode} × ${clients}: p50 ${fixed(percentile(latencies, 50))} ms, p95 ${fixed(percentile(latencies, 95))} ms`);
      }
    }

    const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
    const goalRows = [
      [`indexing through the API ≥ ${goals.importRatio}× direct batch import (passages/s)`, `${fixed(importRatio)}× (${fixed(apiPassagesPerSecond, 0)} vs ${fixed(directPassagesPerSecond, 0)})`, verdict(importRatio >= goals.importRatio)],
      [`keyword p95 < ${goals.keywordP95} ms (1 client)`, `${fixed(p95s['keyword@1'])} ms`, verdict(p95s['keyword@1']! < goals.keywordP95)],
      [`semantic p95 < ${goals.semanticP95} ms (1 client)`, `${fixed(p95s['semantic@1'])} ms`, verdict(p95s['semantic@1']! < goals.semanticP95)],
      [`hybrid p95 < ${goals.hybridP95} ms (1 client)`, `${fixed(p95s['hybrid@1'])} ms`, verdict(p95s['hybrid@1']! < goals.hybridP95)],
    ];
    const date = localDate();
    const markdown = [
      `# Search benchmark — ${date}`,
      '',
      `\`npm run bench -- search\`, ${new Date().toISOString()}. ${docCount} documents of ${paragraphsPerDoc} paragraphs (made-up words, skewed like real text), uploaded ${uploadConcurrency} at a time with direct PUTs; a fifth belong to another user. Local embedding provider (hashed trigrams, 256 dimensions); Weaviate ${weaviateUrl}, MinIO, PostgreSQL, Temporal, the API and one worker process (all task queues) on this machine: ${os.cpus().length} cores, Node ${process.version}.`,
      '',
      '## Indexing',
      '',
      markdownTable(
        ['path', 'documents', 'passages', 'seconds', 'docs/s', 'passages/s'],
        [
          ['API: upload → vectorize workflow → indexed (end to end)', docCount, passageCount, fixed(indexSeconds), fixed(docCount / indexSeconds, 1), fixed(apiPassagesPerSecond, 0)],
          ['  of which the uploads', docCount, '—', fixed(uploadSeconds), fixed(docCount / uploadSeconds, 1), '—'],
          ['direct weaviate-client batch import of the same vectors (baseline)', documents.rows.length, prepared.length, fixed(directSeconds), '—', fixed(directPassagesPerSecond, 0)],
        ],
      ),
      '',
      `Worker peak RSS during indexing: ${fixed(rss.peakBytes / 1024 / 1024, 0)} MiB. Versions not indexed: ${notIndexed}.`,
      '',
      '## Queries (permission filtering on: the searcher reads 5 of the 6 spaces)',
      '',
      markdownTable(['mode', 'clients', 'requests', 'p50 ms', 'p95 ms'], latencyRows),
      '',
      '## Goals',
      '',
      markdownTable(['goal', 'figure', 'verdict'], goalRows),
      '',
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const written = await writeResults(path.join(repoRoot, 'bench', 'results'), `search-${date}`, markdown, {
      date,
      docCount,
      paragraphsPerDoc,
      passageCount,
      uploadSeconds,
      indexSeconds,
      directSeconds,
      directPassages: prepared.length,
      importRatio,
      latency: latencyRows,
      p95s,
      workerPeakRssBytes: rss.peakBytes,
      notIndexed,
    });
    log(`results: ${written.join(', ')}`);
    return notIndexed === 0 ? 0 : 1;
  } finally {
    await cleanup.run();
  }
}
