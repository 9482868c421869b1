// SmbClient against real Samba servers (no mocks): NTLMv2 login against Samba's defaults, auth and network
// failures, paged listing of a 2k-entry directory, a 50 MiB streamed read with async I/O, signing, refused reads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  SmbAccessDeniedError,
  SmbAuthError,
  SmbClient,
  SmbError,
  SmbNotFoundError,
  SmbTimeoutError,
  SmbUnreachableError,
  type SmbConnectionOptions,
} from '../../src/connectors/smb/smb-client';
import { sambaOpenFiles, smbclient, startSamba, type SambaServer } from '../helpers/samba';

const run = promisify(execFile);
const MiB = 1024 * 1024;

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const optionsFor = (server: SambaServer, overrides: Partial<SmbConnectionOptions> = {}): SmbConnectionOptions => ({
  host: server.host,
  port: server.port,
  share: server.share,
  username: server.username,
  password: server.password,
  timeoutMs: 10_000,
  ...overrides,
});

/** A file of random bytes written in 1 MiB pieces; returns its SHA-256. */
async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < size; ) {
      const piece = randomBytes(Math.min(MiB, size - written));
      hash.update(piece);
      await handle.write(piece);
      written += piece.length;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** The 2,000 names of the big directory: spaces, non-Latin scripts, emoji, and pairs differing only in case. */
function bigDirectoryNames(): string[] {
  const names: string[] = [];
  for (let i = 0; i < 1_900; i += 1) names.push(`file ${String(i).padStart(4, '0')}.txt`);
  for (let i = 0; i < 50; i += 1) names.push(`Ünïcødé ${i} 日本語 Ελληνικά 😀.txt`);
  for (let i = 0; i < 25; i += 1) names.push(`Report ${i}.TXT`, `report ${i}.txt`);
  return names;
}

/** Effective Samba parameter value for a server's configuration (testparm prints defaults too with -v). */
async function sambaParameter(server: SambaServer, name: string): Promise<string> {
  const { stdout } = await run('testparm', ['-s', '-v', path.join(path.dirname(server.shareDir), 'smb.conf'), '--parameter-name', name]);
  return stdout.trim();
}

describe('SmbClient against Samba with its default security settings and async I/O', () => {
  let server: SambaServer;
  let client: SmbClient;
  let bigFileHash: string;
  const names = bigDirectoryNames();

  before(async () => {
    server = await startSamba();
    await mkdir(path.join(server.shareDir, 'many'));
    await Promise.all(names.map((name, i) => writeFile(path.join(server.shareDir, 'many', name), `entry ${i}`)));
    await mkdir(path.join(server.shareDir, 'docs', 'nested dir'), { recursive: true });
    await writeFile(path.join(server.shareDir, 'docs', 'nested dir', 'Grüße an alle.txt'), 'hallo');
    bigFileHash = await writeRandomFile(path.join(server.shareDir, 'big.bin'), 50 * MiB);
    client = await SmbClient.connect(optionsFor(server));
  });

  after(async () => {
    await client?.close();
    await server?.dispose();
  });

  test('the server runs Samba defaults: NTLMv2 only, async reads on, signing not forced', async () => {
    assert.equal(await sambaParameter(server, 'ntlm auth'), 'ntlmv2-only');
    assert.notEqual(await sambaParameter(server, 'aio read size'), '0');
    assert.equal(await sambaParameter(server, 'server signing'), 'default');
  });

  test('logs in with NTLMv2 and lists the share root', async () => {
    assert.equal(client.signing, false, 'Samba does not require signing by default');
    const page = await client.list('');
    assert.deepEqual(
      page.entries.map((e) => [e.name, e.kind]),
      [
        ['big.bin', 'file'],
        ['docs', 'directory'],
        ['many', 'directory'],
      ],
    );
    assert.equal(page.nextPageToken, null);
    assert.equal(page.entries[0]!.size, 50 * MiB);
  });

  test('wrong password → SmbAuthError carrying STATUS_LOGON_FAILURE', async () => {
    const error = await SmbClient.connect(optionsFor(server, { password: 'not-the-password' })).then(
      () => assert.fail('login with a wrong password succeeded'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof SmbAuthError, String(error));
    assert.equal(error.statusName, 'STATUS_LOGON_FAILURE');
    assert.equal(error.status, 0xc000006d);
  });

  test('unknown user → SmbAuthError, not a guest session', async () => {
    await assert.rejects(SmbClient.connect(optionsFor(server, { username: 'nobody-here' })), SmbAuthError);
  });

  test('unknown share → SmbNotFoundError with STATUS_BAD_NETWORK_NAME', async () => {
    await assert.rejects(SmbClient.connect(optionsFor(server, { share: 'no-such-share' })), (e: unknown) => e instanceof SmbNotFoundError && e.statusName === 'STATUS_BAD_NETWORK_NAME');
  });

  test('a closed port → SmbUnreachableError quickly', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const started = Date.now();
    await assert.rejects(SmbClient.connect(optionsFor(server, { port })), (e: unknown) => e instanceof SmbUnreachableError && e.statusName === 'ECONNREFUSED');
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  test('a host that accepts but never answers → SmbTimeoutError after timeoutMs', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      await assert.rejects(
        SmbClient.connect(optionsFor(server, { port: (silent.address() as net.AddressInfo).port, timeoutMs: 500 })),
        (e: unknown) => e instanceof SmbTimeoutError && e instanceof SmbUnreachableError,
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 450 && elapsed < 3_000, `took ${elapsed} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('lists a 2,000-entry directory page by page: every name exactly once, in ordinal order', async () => {
    const seen: string[] = [];
    let token: string | null | undefined;
    let pages = 0;
    do {
      const page = await client.list('/many/', token ?? undefined, 300);
      pages += 1;
      for (const entry of page.entries) {
        assert.equal(entry.path, `many/${entry.name}`);
        assert.equal(entry.kind, 'file');
      }
      seen.push(...page.entries.map((e) => e.name));
      token = page.nextPageToken;
    } while (token);
    assert.equal(pages, 7);
    assert.equal(seen.length, names.length);
    assert.equal(new Set(seen).size, names.length, 'a name came twice');
    assert.deepEqual([...seen].sort(), [...names].sort());
    assert.deepEqual(seen, [...seen].sort(), 'pages are in ordinal name order');
    assert.ok(seen.includes('Report 3.TXT') && seen.includes('report 3.txt'), 'case-only twins both listed');
    // Sizes come with the listing, so a sync can diff without a stat per file.
    const sizes = await client.list('many', undefined, 10_000);
    assert.equal(sizes.entries.find((e) => e.name === 'file 0007.txt')!.size, 'entry 7'.length);
  });

  test('a page token resumes on a new connection, and rejects another directory or garbage', async () => {
    const first = await client.list('many', undefined, 1_000);
    assert.ok(first.nextPageToken);
    const other = await SmbClient.connect(optionsFor(server));
    try {
      const second = await other.list('many', first.nextPageToken, 1_000);
      assert.equal(second.nextPageToken, null);
      assert.equal(first.entries.length + second.entries.length, names.length);
      assert.ok(second.entries[0]!.name > first.entries.at(-1)!.name);
      await assert.rejects(other.list('docs', first.nextPageToken), (e: unknown) => e instanceof SmbError && e.statusName === 'STATUS_INVALID_PARAMETER');
      await assert.rejects(other.list('many', 'not a token'), (e: unknown) => e instanceof SmbError && e.statusName === 'STATUS_INVALID_PARAMETER');
    } finally {
      await other.close();
    }
  });

  test('names with spaces and Unicode round-trip through list, stat and read', async () => {
    const [folder] = (await client.list('docs')).entries;
    assert.equal(folder!.name, 'nested dir');
    const [file] = (await client.list(folder!.path)).entries;
    assert.equal(file!.path, 'docs/nested dir/Grüße an alle.txt');
    const stat = await client.stat(file!.path);
    assert.deepEqual({ ...stat, mtime: stat.mtime.getTime() }, { ...file!, mtime: file!.mtime.getTime() });
    const chunks: Buffer[] = [];
    for await (const chunk of await client.read(file!.path)) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString(), 'hallo');
    // Case-only twins are distinct files.
    const upper = Buffer.concat(await (await client.read('many/Report 4.TXT')).toArray()).toString();
    const lower = Buffer.concat(await (await client.read('many/report 4.txt')).toArray()).toString();
    assert.notEqual(upper, lower);
  });

  test('stat of a missing file or folder → SmbNotFoundError; paths climbing out are refused', async () => {
    await assert.rejects(client.stat('no such file.txt'), (e: unknown) => e instanceof SmbNotFoundError && e.statusName === 'STATUS_OBJECT_NAME_NOT_FOUND');
    await assert.rejects(client.stat('no-dir/file.txt'), SmbNotFoundError);
    await assert.rejects(client.list('no-dir'), SmbNotFoundError);
    await assert.rejects(client.read('missing.bin'), SmbNotFoundError);
    await assert.rejects(client.stat('../etc/passwd'), (e: unknown) => e instanceof SmbError && e.statusName === 'STATUS_OBJECT_NAME_INVALID');
    await assert.rejects(client.stat('big.bin:stream'), (e: unknown) => e instanceof SmbError && e.statusName === 'STATUS_OBJECT_NAME_INVALID');
    const directory = await client.stat('/docs/');
    assert.equal(directory.kind, 'directory');
    assert.equal(directory.path, 'docs');
  });

  test('reads a 50 MiB file byte-exact with async I/O on, memory flat under a slow consumer', async () => {
    collectGarbage();
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    const baseline = process.memoryUsage().rss;
    const buffersBaseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    let buffersPeak = buffersBaseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const before = { ...client.statistics };
    try {
      const stream = await client.read('big.bin');
      const hash = createHash('sha256');
      let bytes = 0;
      let chunks = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
        // Pause now and then (a slow consumer) and measure what is live: a whole-file buffer would show.
        if (++chunks % 5 === 0) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          // Twice, a tick apart: V8 frees ArrayBuffer memory after the collection, not during it.
          collectGarbage();
          await new Promise((resolve) => setImmediate(resolve));
          collectGarbage();
          buffersPeak = Math.max(buffersPeak, process.memoryUsage().arrayBuffers);
        }
      }
      assert.equal(bytes, 50 * MiB);
      assert.equal(hash.digest('hex'), bigFileHash);
      assert.doesNotMatch(await sambaOpenFiles(server), /big\.bin/, 'a fully read stream closes its handle');
    } finally {
      clearInterval(sampler);
    }
    const growth = (peak - baseline) / MiB;
    const liveBuffers = (buffersPeak - buffersBaseline) / MiB;
    const requests = client.statistics.requests - before.requests;
    const interim = client.statistics.interimResponses - before.interimResponses;
    console.log(`50 MiB read: ${requests} requests, ${interim} interim STATUS_PENDING responses, RSS growth ${growth.toFixed(1)} MiB, live buffers ${liveBuffers.toFixed(1)} MiB`);
    assert.ok(requests <= 60, `expected 1 MiB reads, made ${requests} requests`);
    // RSS moves with allocator and collector timing, so its bound only rules out holding the whole file;
    // live Buffer memory after a collection is the precise measure: this client holds about 5 MiB (four reads in
    // flight and one chunk), a client buffering the file holds tens of MiB.
    assert.ok(growth < 40, `RSS grew ${growth.toFixed(1)} MiB while streaming 50 MiB`);
    assert.ok(liveBuffers < 16, `${liveBuffers.toFixed(1)} MiB of Buffers live while streaming 50 MiB`);
  });

  test('reads stay correct when Samba answers with interim STATUS_PENDING (many reads in flight)', async () => {
    // Eight concurrent streams keep 32 reads in flight; smbd answers the ones its async I/O has not finished
    // within 0.5 ms with an interim response, then the final one with the same message id.
    const before = client.statistics.interimResponses;
    for (let round = 0; round < 5 && client.statistics.interimResponses === before; round += 1) {
      const hashes = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const hash = createHash('sha256');
          for await (const chunk of await client.read('big.bin')) hash.update(chunk as Buffer);
          return hash.digest('hex');
        }),
      );
      for (const hash of hashes) assert.equal(hash, bigFileHash);
    }
    assert.ok(client.statistics.interimResponses > before, 'Samba never sent an interim response: the test did not exercise STATUS_PENDING');
  });

  test('a stream destroyed early releases its handle; the client goes on working', async () => {
    const stream = await client.read('big.bin');
    const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    assert.ok(!(await iterator.next()).done);
    assert.match(await sambaOpenFiles(server), /big\.bin/);
    stream.destroy();
    await new Promise((resolve) => stream.once('close', resolve));
    assert.equal((await client.stat('big.bin')).size, 50 * MiB); // a round trip after the CLOSE
    assert.doesNotMatch(await sambaOpenFiles(server), /big\.bin/, 'the handle is still open on the server');
    assert.equal((await client.list('docs')).entries.length, 1);
  });

  test('a hung server (smbd frozen) → SmbTimeoutError within timeoutMs; the client is then closed', async () => {
    const hung = await SmbClient.connect(optionsFor(server, { timeoutMs: 700 }));
    await server.freeze();
    try {
      const started = Date.now();
      await assert.rejects(hung.stat('big.bin'), (e: unknown) => e instanceof SmbTimeoutError && e.statusName === 'REQUEST_TIMEOUT');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 650 && elapsed < 3_000, `took ${elapsed} ms`);
      // After a timeout the connection's state is unknown, so it is closed: later calls fail fast.
      await assert.rejects(hung.stat('big.bin'), SmbUnreachableError);
    } finally {
      await server.thaw();
      await hung.close();
    }
    assert.equal((await client.stat('big.bin')).size, 50 * MiB, 'other connections survive');
  });

  test('smbd stopped mid-read → the stream fails with SmbUnreachableError; after a restart a new client works', async () => {
    const stream = await client.read('big.bin');
    const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    assert.ok(!(await iterator.next()).done);
    await server.stop();
    const failure = await (async () => {
      for (;;) if ((await iterator.next()).done) return null;
    })().catch((e: unknown) => e);
    assert.ok(failure instanceof SmbUnreachableError, `expected SmbUnreachableError, got ${String(failure)}`);
    await assert.rejects(client.stat('big.bin'), SmbUnreachableError);
    await assert.rejects(SmbClient.connect(optionsFor(server)), SmbUnreachableError);

    await server.start();
    await client.close();
    client = await SmbClient.connect(optionsFor(server));
    assert.equal((await client.stat('big.bin')).size, 50 * MiB);
  });
});

describe('SmbClient against Samba with server signing = mandatory', () => {
  let server: SambaServer;
  let client: SmbClient;
  let hash: string;

  before(async () => {
    server = await startSamba({ signing: 'mandatory' });
    await mkdir(path.join(server.shareDir, 'folder'));
    await writeFile(path.join(server.shareDir, 'folder', 'small.txt'), 'signed hello');
    hash = await writeRandomFile(path.join(server.shareDir, 'eight.bin'), 8 * MiB + 17);
    client = await SmbClient.connect(optionsFor(server));
  });

  after(async () => {
    await client?.close();
    await server?.dispose();
  });

  test('the server really requires signing: an unsigned request on the session is refused', async () => {
    assert.match(await sambaParameter(server, 'server signing'), /^(mandatory|required)$/); // testparm prints the synonym
    assert.equal(client.signing, true);
    const unsigned = await SmbClient.connect(optionsFor(server));
    try {
      // Reach into the transport to send one request without a signature, as a client lacking signing would.
      (unsigned as unknown as { transport: { signingKey: Buffer | null } }).transport.signingKey = null;
      await assert.rejects(unsigned.stat('folder/small.txt'), (e: unknown) => e instanceof SmbAccessDeniedError && e.statusName === 'STATUS_ACCESS_DENIED');
    } finally {
      await unsigned.close();
    }
  });

  test('list, stat and a streamed 8 MiB read work, every response signature verified', async () => {
    const before = { ...client.statistics };
    const page = await client.list('');
    assert.deepEqual(page.entries.map((e) => e.name), ['eight.bin', 'folder']);
    assert.equal((await client.stat('folder/small.txt')).size, 'signed hello'.length);
    const digest = createHash('sha256');
    for await (const chunk of await client.read('eight.bin')) digest.update(chunk as Buffer);
    assert.equal(digest.digest('hex'), hash);
    const requests = client.statistics.requests - before.requests;
    assert.ok(requests > 5);
    assert.equal(client.statistics.signedRequests - before.signedRequests, requests, 'every request signed');
    assert.equal(client.statistics.verifiedResponses - before.verifiedResponses, requests, 'every response verified');
  });

  test('error answers are signed too: a missing file is SmbNotFoundError, a wrong password SmbAuthError', async () => {
    const verified = client.statistics.verifiedResponses;
    await assert.rejects(client.stat('folder/missing.txt'), SmbNotFoundError);
    assert.equal(client.statistics.verifiedResponses, verified + 1);
    assert.equal((await client.stat('folder/small.txt')).kind, 'file', 'the session survives the error');
    await assert.rejects(SmbClient.connect(optionsFor(server, { password: 'wrong' })), SmbAuthError);
  });
});

describe('SmbClient when Samba refuses to read a file', () => {
  let server: SambaServer;
  let client: SmbClient;

  before(async () => {
    server = await startSamba({ enforcePermissions: true });
    await writeFile(path.join(server.shareDir, 'secret.txt'), 'top secret');
    await writeFile(path.join(server.shareDir, 'public.txt'), 'for everyone');
    await server.makeUnreadable('secret.txt');
    client = await SmbClient.connect(optionsFor(server));
  });

  after(async () => {
    await client?.close();
    await server?.dispose();
  });

  test('Samba itself refuses the read (checked with smbclient)', async () => {
    const result = await smbclient(server, 'get secret.txt /dev/null');
    assert.match(result.output, /NT_STATUS_ACCESS_DENIED/);
    const readable = await smbclient(server, 'get public.txt /dev/null');
    assert.equal(readable.code, 0, readable.output);
  });

  test('read → SmbAccessDeniedError with STATUS_ACCESS_DENIED; the file is still listed and others read fine', async () => {
    await assert.rejects(client.read('secret.txt'), (e: unknown) => e instanceof SmbAccessDeniedError && e.status === 0xc0000022);
    const names = (await client.list('')).entries.map((e) => e.name);
    assert.deepEqual(names, ['public.txt', 'secret.txt']);
    const data = Buffer.concat(await (await client.read('public.txt')).toArray()).toString();
    assert.equal(data, 'for everyone');
  });
});
