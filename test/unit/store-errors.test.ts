// A store that answers with a server error (MinIO's 507 XMinioStorageFull when its drive is full, 503 SlowDown) is a
// 503 SERVICE_UNAVAILABLE with Retry-After for our client, never a 500; the store's client errors are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { storeUnavailable } from '../../src/errors';
import { S3LeanClient } from '../../src/storage/s3-lean-client';

/** An HTTP server answering every request with `status` and an S3 error document of `code`. */
async function answering(status: number, code: string): Promise<{ url: URL; close: () => void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>answered by the test</Message></Error>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), close: () => server.close() };
}

const credentials = { region: async () => 'us-east-1', credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) };

test('a chunk PUT the store refuses as full becomes 503 SERVICE_UNAVAILABLE with Retry-After', async () => {
  const store = await answering(507, 'XMinioStorageFull');
  try {
    const client = new S3LeanClient(store.url, 'bucket', true, credentials as never);
    const error = await client.put('t/chunks/abc', Buffer.from('bytes')).then(() => undefined, (e: unknown) => e);
    const mapped = storeUnavailable(error);
    assert.ok(mapped, `mapped: ${String(error)}`);
    assert.equal(mapped.status, 503);
    assert.equal(mapped.code, 'SERVICE_UNAVAILABLE');
    assert.match(mapped.detail, /HTTP 507 XMinioStorageFull/);
    assert.equal(mapped.headers?.['Retry-After'], '5');
    client.destroy();
  } finally {
    store.close();
  }
});

test('the store\'s client errors and errors of other kinds are not mapped', async () => {
  const store = await answering(403, 'AccessDenied');
  try {
    const client = new S3LeanClient(store.url, 'bucket', true, credentials as never);
    const error = await client.put('t/chunks/abc', Buffer.from('bytes')).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof Error);
    assert.equal(storeUnavailable(error), undefined, 'a misconfigured store is our fault: 500');
    client.destroy();
  } finally {
    store.close();
  }
  assert.equal(storeUnavailable(new Error('boom')), undefined);
  assert.equal(storeUnavailable(null), undefined);
  assert.equal(storeUnavailable(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 200 } })), undefined);
});
