// Search with Weaviate stopped (issue #11): this file runs a Weaviate of its own, indexes a file into it, then
// stops it — semantic search answers 503 SERVICE_UNAVAILABLE, keyword search still 200, hybrid degrades to
// keyword and says so, /search/health reports it, readiness stays ready; started again, semantic search is back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { testPorts } from '../helpers/ports';
import { startWeaviate } from '../../src/search/weaviate-server';

const V1 = '/api/v1';
// Away from the harness's Weaviate (HTTP, cluster ports = HTTP + 1…5, gRPC).
const port = testPorts.weaviate + 40;
const grpcPort = testPorts.weaviate + 50;

describe('search with Weaviate stopped', () => {
  let stack: TestStack;
  let weaviate: ChildProcess | undefined;
  let alice: TestUser;
  let dataDir: string;

  const start = async () => {
    weaviate = await startWeaviate({ binary: path.join(harness.toolsDir, 'weaviate-server'), dataDir, host: '127.0.0.1', port, grpcPort });
  };
  const stop = async () => {
    const child = weaviate;
    weaviate = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  before(async () => {
    dataDir = path.join(harness.dataDir, `weaviate-down-${process.pid}`);
    await start();
    stack = await startTestStack({ search: true, env: { SCAIDRIVE_WEAVIATE_URL: `http://127.0.0.1:${port}`, SCAIDRIVE_WEAVIATE_GRPC_PORT: String(grpcPort) } });
    const tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(async () => {
    await stack?.close();
    await stop();
  });

  const searchFor = (q: string, mode: string) => api(stack.baseUrl, 'GET', `${V1}/search?q=${encodeURIComponent(q)}&mode=${mode}`, { token: alice.token });

  test('semantic 503, keyword 200, hybrid degraded; back when Weaviate is', async () => {
    const uploaded = await uploadDirect(stack, alice.token, alice.rootFolderId, 'harbour.txt', Buffer.from('The harbour master logs every trawler that docks.'));
    assert.equal(uploaded.status, 201);
    const fileId = uploaded.body.file.id;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = await api(stack.baseUrl, 'GET', `${V1}/search/index-status/${fileId}`, { token: alice.token });
      if (status.body.status === 'indexed') break;
      assert.ok(Date.now() < deadline, `not indexed: ${status.text}`);
      await sleep(200);
    }
    assert.equal((await searchFor('trawler harbour', 'semantic')).body.items[0]?.file.id, fileId);

    await stop();
    assertError(await searchFor('trawler harbour', 'semantic'), 503, 'SERVICE_UNAVAILABLE');
    const keyword = await searchFor('trawler harbour', 'keyword');
    assert.equal(keyword.status, 200, keyword.text);
    assert.equal(keyword.body.items[0]?.file.id, fileId);
    const hybrid = await searchFor('trawler harbour', 'hybrid');
    assert.equal(hybrid.status, 200, hybrid.text);
    assert.equal(hybrid.body.degraded, true);
    assert.match(hybrid.body.degraded_reason, /keyword/);
    assert.equal(hybrid.body.items[0]?.file.id, fileId);
    const health = await api(stack.baseUrl, 'GET', `${V1}/search/health`, { token: alice.token });
    assert.deepEqual(health.body, { weaviate_connected: false, embedding_service_available: true });
    const ready = await api(stack.baseUrl, 'GET', `${V1}/health/ready`);
    assert.equal(ready.status, 200, 'Weaviate does not gate readiness');
    assert.equal(ready.body.checks.weaviate.status, 'error');

    await start();
    const back = Date.now() + 60_000;
    for (;;) {
      const res = await searchFor('trawler harbour', 'semantic');
      if (res.status === 200) {
        assert.equal(res.body.items[0]?.file.id, fileId);
        break;
      }
      assert.ok(Date.now() < back, `semantic search not back: ${res.text}`);
      await sleep(500);
    }
  });
});
