// GETs of the lean S3 client against a store we control byte by byte: bodies arrive whole, a missing key is null,
// a store error keeps its status, a kept-alive connection the store drops as a request arrives is tried once more,
// and a body its reader destroys never becomes an uncaught exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { S3LeanClient } from '../../src/storage/s3-lean-client';

const credentials = { region: async () => 'us-east-1', credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) };

interface Answer {
  status: number;
  body: Buffer;
}

/**
 * A keep-alive HTTP/1.1 store on a raw socket. `answer(n, connectionRequests)` answers the n-th request (from 1),
 * the connectionRequests-th on its connection; null closes the connection without answering.
 */
async function store(
  answer: (n: number, onConnection: number) => Answer | null,
): Promise<{ url: URL; requests: () => number; dropped: () => number; connections: () => number; close: () => void }> {
  let requests = 0;
  let dropped = 0;
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let onConnection = 0;
    let pending = '';
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(end + 4);
        const reply = answer(++requests, ++onConnection);
        if (!reply) {
          dropped++;
          socket.destroy();
          return;
        }
        socket.write(`HTTP/1.1 ${reply.status} X\r\ncontent-length: ${reply.body.length}\r\ncontent-type: application/octet-stream\r\n\r\n`);
        socket.write(reply.body);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    requests: () => requests,
    dropped: () => dropped,
    connections: () => connections,
    close: () => server.close(),
  };
}

async function read(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const notFound = { status: 404, body: Buffer.from('<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>') };

test('GET: the body whole (1 MiB, many socket reads), null for a missing key, a store error keeps its status', async () => {
  const object = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < object.length; i++) object[i] = (i * 31) & 0xff;
  const s = await store((n) => (n === 1 ? { status: 200, body: object } : n === 2 ? notFound : { status: 503, body: Buffer.from('<Error><Code>SlowDown</Code></Error>') }));
  const client = new S3LeanClient(s.url, 'bucket', true, credentials as never);
  try {
    assert.ok((await read((await client.get('t/chunks/a'))!)).equals(object));
    assert.equal(await client.get('t/chunks/missing'), null);
    const error = (await client.get('t/chunks/b').then(() => undefined, (e: unknown) => e)) as Error & { $metadata?: { httpStatusCode?: number } };
    assert.equal(error.name, 'SlowDown');
    assert.equal(error.$metadata?.httpStatusCode, 503);
    assert.ok(s.connections() < 3, `kept-alive connections are used again (${s.connections()} for 3 requests)`);
  } finally {
    client.destroy();
    s.close();
  }
});

test('GET: a kept-alive connection the store drops as the request arrives is tried once more, on a new one', async () => {
  // The first request sent on a connection used before finds it closed by the store (its idle timeout, as the request
  // went out); the rest are answered.
  let raced = false;
  const s = await store((_n, onConnection) => {
    if (onConnection > 1 && !raced) {
      raced = true;
      return null;
    }
    return { status: 200, body: Buffer.from('stored bytes') };
  });
  const client = new S3LeanClient(s.url, 'bucket', true, credentials as never);
  try {
    for (let i = 0; i < 4; i++) assert.equal((await read((await client.get('t/chunks/a'))!)).toString(), 'stored bytes', `GET ${i + 1}`);
    assert.equal(s.dropped(), 1, 'a GET went out on a kept-alive connection (and was sent again)');
    assert.equal(s.requests(), 5);
  } finally {
    client.destroy();
    s.close();
  }
});

test('GET: a body its reader destroys unread is released without an uncaught error', { timeout: 10_000 }, async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  const s = await store(() => ({ status: 200, body: Buffer.alloc(4 * 1024 * 1024) }));
  const client = new S3LeanClient(s.url, 'bucket', true, credentials as never);
  try {
    const body = (await client.get('t/chunks/a'))!;
    const closed = new Promise((resolve) => body.once('close', resolve));
    body.destroy();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
    client.destroy();
    s.close();
  }
});
