// The SharePoint source adapter (issue #10) against the HTTPS Graph fake, through the real
// `@microsoft/microsoft-graph-client`: client-credentials tokens (cached; Azure's refusals explained), site and
// drive resolution, children paging, the delta feed (pages, deltaLink, changes with deleted facets, 410
// resyncRequired), throttling honoured (429/503 Retry-After), and downloads from pre-authenticated URLs that
// resume byte-exact after a reset.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { SharePointSource, DeltaResyncRequiredError, type DriveItem, type SharePointSourceSettings } from '../../src/connectors/sharepoint/sharepoint-source';
import { SourceAuthError, SourceUnreachableError } from '../../src/connectors/source';
import { GraphFake } from '../fixtures/graph-fake';
import { certificatesIn } from '../helpers/test-ca';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe('SharePoint source against the Graph fake (HTTPS, real Graph client)', () => {
  let fake: GraphFake;
  const settings = (overrides: Partial<SharePointSourceSettings> = {}): SharePointSourceSettings => ({
    azure_tenant_id: fake.tenantId,
    azure_client_id: fake.clientId,
    site: fake.siteUrl,
    ...overrides,
  });
  const endpoints = () => ({ authority: fake.url, graphUrl: fake.url });
  const open = (overrides: Partial<SharePointSourceSettings> = {}, secret = fake.clientSecret, onWait?: (ms: number, status: number) => void) =>
    SharePointSource.open(settings(overrides), secret, { ...endpoints(), onWait });

  /** Every item of a delta enumeration from `link` (null: from the start), and the deltaLink it ends with. */
  async function enumerate(source: SharePointSource, link: string | null): Promise<{ items: DriveItem[]; deltaLink: string; pages: number }> {
    const items: DriveItem[] = [];
    let pages = 0;
    for (let next: string | null = link; ; ) {
      const page = await source.delta(next);
      pages += 1;
      items.push(...page.items);
      if (page.deltaLink) return { items, deltaLink: page.deltaLink, pages };
      next = page.nextLink;
      assert.ok(next, 'a page without deltaLink has a nextLink');
    }
  }

  before(async () => {
    const dir = process.env.TEST_TLS_DIR;
    assert.ok(dir, 'the harness provides TEST_TLS_DIR (run through npm test)');
    fake = await GraphFake.start({ tls: certificatesIn(dir), pageSize: 200 });
  });
  after(async () => {
    await fake?.close();
  });

  test('resolves the site by URL or id and the drive by default, name or id; tokens are cached', async () => {
    const before = fake.tokenRequests;
    const byUrl = await open();
    assert.equal(byUrl.siteId, fake.siteId);
    assert.equal(byUrl.driveId, fake.driveId, 'the default document library');
    await byUrl.test();
    await byUrl.list('');
    assert.equal(fake.tokenRequests - before, 1, 'one token for every request of this source');
    assert.equal((await open({ site: fake.siteId })).siteId, fake.siteId);
    assert.equal((await open({ drive: 'archive' })).driveId, fake.otherDriveId, 'by name, case-insensitive');
    assert.equal((await open({ drive: fake.otherDriveId })).driveId, fake.otherDriveId);
    await assert.rejects(open({ drive: 'Nope' }), (error: Error) => error instanceof SourceAuthError && /Documents, Archive/.test(error.message));
    await assert.rejects(open({ site: 'https://contoso.sharepoint.com/sites/unknown' }), SourceAuthError);
  });

  test("Azure's refusals are SourceAuthError saying what to fix; an unreachable authority is SourceUnreachableError", async () => {
    await assert.rejects(open({}, 'wrong-secret'), (error: Error) => error instanceof SourceAuthError && /AADSTS7000215/.test(error.message));
    await assert.rejects(open({ azure_client_id: 'no-such-app' }), (error: Error) => error instanceof SourceAuthError && /AADSTS700016/.test(error.message));
    await assert.rejects(open({ azure_tenant_id: 'no-such-tenant' }), (error: Error) => error instanceof SourceAuthError && /AADSTS90002/.test(error.message));
    await assert.rejects(SharePointSource.open(settings(), fake.clientSecret, { authority: 'https://127.0.0.1:1', graphUrl: fake.url }), SourceUnreachableError);
  });

  test('an expired secret: tokens stop working and the renewal is refused with "expired … PATCH azure_client_secret"', async () => {
    const source = await open();
    fake.expireSecret();
    try {
      await assert.rejects(source.list(''), (error: Error) => error instanceof SourceAuthError && /expired.*PATCH azure_client_secret.*AADSTS7000222/.test(error.message));
    } finally {
      fake.rotateSecret();
    }
    const renewed = await open({}, fake.clientSecret);
    await renewed.test();
  });

  test('children are listed page by page through @odata.nextLink', async () => {
    for (let i = 0; i < 450; i++) fake.put(`paged/file ${String(i).padStart(3, '0')}.txt`, Buffer.from(`n${i}`));
    const source = await open();
    const names: string[] = [];
    let pages = 0;
    for (let token: string | null = null; ; ) {
      const page = await source.list('paged', token);
      pages += 1;
      names.push(...page.entries.map((e) => e.name));
      assert.ok(page.entries.every((e) => e.path === `paged/${e.name}` && e.kind === 'file'));
      token = page.nextPageToken;
      if (!token) break;
    }
    assert.equal(pages, 3);
    assert.equal(new Set(names).size, 450);
    const stat = await source.stat('paged/file 007.txt');
    assert.deepEqual([stat.name, stat.size, stat.kind], ['file 007.txt', 2, 'file']);
  });

  test('delta: a nested folder enumerated page by page, then only the changes (add, change, rename, move, delete)', async () => {
    for (let a = 0; a < 3; a++) for (let f = 0; f < 150; f++) fake.put(`Projects/team ${a}/doc ${f}.txt`, Buffer.from(`${a}/${f}`));
    fake.put('Projects/readme ü.txt', Buffer.from('hello'));
    const source = await open({ folder: 'Projects' });
    const first = await enumerate(source, null);
    assert.ok(first.pages >= 3, `several pages (${first.pages})`);
    const files = first.items.filter((i) => i.file);
    assert.equal(files.length, 451);
    assert.ok(files.every((i) => i['@microsoft.graph.downloadUrl'] && i.parentReference?.id && i.parentReference.path === undefined), 'delta items name their parent by id only');
    assert.equal(first.items.filter((i) => i.folder).length, 4, 'Projects itself and its three folders');
    const seenBefore = new Set<string>();
    for (const item of first.items) {
      if (item.file) assert.ok(seenBefore.has(item.parentReference!.id!), 'a parent comes before its children');
      seenBefore.add(item.id);
    }

    fake.put('Projects/team 0/new.txt', Buffer.from('new'));
    fake.put('Projects/team 1/doc 3.txt', Buffer.from('changed'));
    fake.move('Projects/team 1/doc 4.txt', 'Projects/team 1/doc 4 renamed.txt');
    fake.move('Projects/team 2/doc 5.txt', 'Projects/team 0/doc 5.txt');
    fake.remove('Projects/team 2/doc 6.txt');
    fake.put('Elsewhere/outside.txt', Buffer.from('not in scope'));
    const second = await enumerate(source, first.deltaLink);
    const folderName = new Map(first.items.filter((i) => i.folder).map((i) => [i.id, i.name!]));
    const summary = second.items.map((i) => (i.deleted ? `deleted ${i.id}` : `${folderName.get(i.parentReference!.id!)}/${i.name}`)).sort();
    assert.ok(summary.includes('team 0/new.txt'));
    assert.ok(summary.includes('team 1/doc 3.txt'));
    assert.ok(summary.includes('team 1/doc 4 renamed.txt'));
    assert.ok(summary.includes('team 0/doc 5.txt'));
    assert.equal(second.items.filter((i) => i.deleted).length, 1);
    assert.equal(second.items.filter((i) => i.file).length, 4, 'only the changed files, nothing outside the folder');

    const third = await enumerate(source, second.deltaLink);
    assert.equal(third.items.length, 0, 'nothing changed since');
    fake.expireDeltaLinks();
    await assert.rejects(source.delta(third.deltaLink), DeltaResyncRequiredError);
  });

  test('throttling: 429 and 503 with Retry-After are waited out (with a callback to heartbeat), then the request succeeds', async () => {
    const waits: number[] = [];
    const source = await open({}, fake.clientSecret, (ms, status) => waits.push(status));
    fake.throttleNext(2, 1, 429);
    const started = Date.now();
    await source.list('');
    assert.ok(Date.now() - started >= 2000, 'waited at least both Retry-Afters');
    assert.deepEqual(waits, [429, 429]);
    fake.throttleNext(1, 1, 503);
    await source.test();
    assert.deepEqual(waits, [429, 429, 503]);
  });

  test('downloads: pre-authenticated URLs (no bearer token sent), byte-exact, resumed with a Range after a reset', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 11);
    fake.put('big/report.bin', data);
    const source = await open();
    const beforeCount = fake.contentRequests;
    assert.equal(sha256(await readAll(await source.read('big/report.bin'))), sha256(data));
    assert.equal(fake.contentRequests - beforeCount, 1);

    fake.resetDownloadOnce('big/report.bin', 1024 * 1024);
    const resumed = await readAll(await source.read('big/report.bin'));
    assert.equal(resumed.length, data.length);
    assert.equal(sha256(resumed), sha256(data));
    assert.equal(fake.contentRequests - beforeCount, 3, 'the broken download and its resumption');
    assert.equal(fake.downloadsWithAuthorization, 0, 'the bearer token never goes to a download URL');
  });
});
