// `npm run bench -- permissions`: a share with 50k files reached through group membership — p50/p95 of a
// 100-item children page and of a file metadata GET, at 1 and 16 concurrent clients, next to the same
// queries by the owner in their personal space (the baseline, same run).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { loadDevIssuer } from '../src/auth/dev-issuer';
import { newId } from '../src/ids';
import { Cleanup, repoRoot, startBenchStack, type BenchStack } from './lib/stack';
import { fixed, localDate, markdownTable, writeResults } from './lib/report';

export const description = 'share reached through a group vs personal space: children page and file GET latency, 1 and 16 clients (BENCH_FILES, default 50000)';

const fileCount = Number(process.env.BENCH_FILES ?? 50_000);
const requestsPerClient = { 1: 300, 16: 60 } as const;

interface Scenario {
  name: string;
  token: string;
  folderId: string;
  fileIds: string[];
}

async function json(url: string, token: string): Promise<void> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
}

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

/** Inserts `count` files straight into a folder (the API path is not what is measured here). */
async function seedFolder(stack: BenchStack, spaceId: string, folderId: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => newId('file'));
  for (let offset = 0; offset < count; offset += 5000) {
    const batch = ids.slice(offset, offset + 5000);
    await sql`insert into nodes (id, tenant_id, space_id, parent_id, kind, name, size)
      select id, ${stack.tenantId}, ${spaceId}, ${folderId}, 'file', 'file-' || lpad(n::text, 6, '0') || '.txt', 1024
      from unnest(${batch}::text[]) with ordinality as t(id, n0), lateral (select n0 + ${offset} as n) x`.execute(stack.db);
  }
  await sql`analyze nodes`.execute(stack.db);
  return ids;
}

export async function run(): Promise<number> {
  const cleanup = new Cleanup();
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-bench-perm-'));
  cleanup.add('remove temp dir', () => rm(tempDir, { recursive: true, force: true }));
  process.once('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));
  try {
    const log = (line: string) => process.stdout.write(`bench: ${line}\n`);
    const stack = await startBenchStack(
      {
        tempDir,
        ports: { temporal: 27633, temporalUi: 28633, minio: 29600, minioConsole: 29601, api: 28600 },
        databaseUrl: 'postgres://postgres@127.0.0.1:5432/scaidrive_bench_permissions',
        bucket: 'bench-permissions',
        log,
      },
      cleanup,
    );
    const api = (pathname: string) => `${stack.apiUrl}/api/v1${pathname}`;
    const issuer = await loadDevIssuer(stack.dataDir, stack.apiUrl, 'scaidrive');
    const ownerToken = await issuer.sign({ tenantId: stack.tenantId, subject: 'owner', roles: ['tenant_admin'] });
    const memberToken = await issuer.sign({ tenantId: stack.tenantId, subject: 'member', roles: [] });
    const post = async (pathname: string, token: string, body: unknown) => {
      const response = await fetch(api(pathname), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await response.text();
      if (response.status >= 300) throw new Error(`POST ${pathname}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const get = async (pathname: string, token: string): Promise<any> => (await fetch(api(pathname), { headers: { authorization: `Bearer ${token}` } })).json();

    log(`seeding: a share reached through a group, and the owner's personal space, ${fileCount} files each`);
    const owner = await get('/me', ownerToken);
    const member = await get('/me', memberToken);
    const share = await post('/shares', ownerToken, { name: 'Big share' });
    const group = await post('/admin/groups', ownerToken, { name: 'Readers' });
    await post(`/admin/groups/${group.id}/members`, ownerToken, { user_id: member.id });
    await post(`/shares/${share.id}/members`, ownerToken, { principal_type: 'group', principal_id: group.id, role: 'reader' });
    const scenarios: Scenario[] = [
      { name: 'personal space (owner) — baseline', token: ownerToken, folderId: owner.personal_space.root_folder_id, fileIds: await seedFolder(stack, owner.personal_space.id, owner.personal_space.root_folder_id, fileCount) },
      { name: 'share via group grant (reader)', token: memberToken, folderId: share.root_folder_id, fileIds: await seedFolder(stack, share.id, share.root_folder_id, fileCount) },
    ];

    const rows: (string | number)[][] = [];
    const results: Record<string, Record<string, { p50: number; p95: number; count: number }>> = {};
    for (const clients of [1, 16] as const) {
      for (const scenario of scenarios) {
        // Warm-up (JIT, connection pools, plan cache).
        await measure(4, 20, () => json(api(`/folders/${scenario.folderId}/children?limit=100`), scenario.token));
        const children = await measure(clients, requestsPerClient[clients], async (client, i) => {
          // Pages from all over the folder: a cursor at a pseudo-random file name.
          const n = ((client * 7919 + i * 104729) % fileCount) + 1;
          const cursor = Buffer.from(JSON.stringify({ name: `file-${String(n).padStart(6, '0')}.txt`, id: '' })).toString('base64url');
          await json(api(`/folders/${scenario.folderId}/children?limit=100&cursor=${cursor}`), scenario.token);
        });
        const metadata = await measure(clients, requestsPerClient[clients], async (client, i) => {
          await json(api(`/files/${scenario.fileIds[(client * 7919 + i * 104729) % fileCount]}`), scenario.token);
        });
        for (const [query, latencies] of [
          ['children page (100 items)', children],
          ['file metadata GET', metadata],
        ] as const) {
          const key = `${clients} client${clients > 1 ? 's' : ''}`;
          results[`${scenario.name} / ${query}`] ??= {};
          results[`${scenario.name} / ${query}`]![key] = { p50: percentile(latencies, 50), p95: percentile(latencies, 95), count: latencies.length };
          rows.push([scenario.name, query, clients, latencies.length, fixed(percentile(latencies, 50)), fixed(percentile(latencies, 95))]);
        }
      }
    }

    const p95 = (scenario: Scenario, query: string, clients: number) => results[`${scenario.name} / ${query}`]![`${clients} client${clients > 1 ? 's' : ''}`]!.p95;
    const [baseline, shared] = scenarios as [Scenario, Scenario];
    const goals: (string | number)[][] = [];
    for (const query of ['children page (100 items)', 'file metadata GET']) {
      const single = p95(shared, query, 1);
      goals.push([`share ${query}: p95 at 1 client`, `${fixed(single)} ms`, '< 30 ms', single < 30 ? 'met' : 'MISSED']);
      for (const clients of [1, 16]) {
        const ratio = p95(shared, query, clients) / p95(baseline, query, clients);
        goals.push([`share vs personal ${query}: p95 ratio at ${clients} client(s)`, `${fixed(ratio)}× (${fixed(p95(shared, query, clients))} / ${fixed(p95(baseline, query, clients))} ms)`, '≤ 1.3×', ratio <= 1.3 ? 'met' : 'MISSED']);
      }
    }
    const date = localDate();
    const markdown = [
      `# Permissions benchmark — ${date}`,
      '',
      `\`npm run bench -- permissions\`, ${new Date().toISOString()}. ${fileCount} files in one folder of a share that the caller reaches only through a group grant (reader), and ${fileCount} files in the owner's personal space as the baseline, same run. API as its own process (\`node dist/scaidrive.mjs api\`), PostgreSQL on loopback; ${os.cpus().length} cores, Node ${process.version}. Latency measured by this process over HTTP on loopback (ms).`,
      '',
      '## Latency',
      '',
      markdownTable(['space', 'query', 'clients', 'requests', 'p50 ms', 'p95 ms'], rows),
      '',
      '## Goals',
      '',
      markdownTable(['goal', 'measured', 'target', 'result'], goals),
      '',
    ].join('\n');
    process.stdout.write(`\n${markdown}\n`);
    const written = await writeResults(path.join(repoRoot, 'bench', 'results'), `permissions-${date}`, markdown, { date, fileCount, results, goals });
    log(`wrote ${written.join(', ')}`);
    return 0;
  } finally {
    await cleanup.run();
  }
}
