// Race: one tenant must not stall another's downloads (issue #7, finding 6). Tenant B hammers its password link
// (40 parallel unlock / X-Link-Password loops from many client addresses, right and wrong passwords) while
// tenant A downloads a small file over and over (filesystem driver); A's p95 latency stays close to its quiet
// value, readiness stays up, and the process never hashes more than SCAIDRIVE_PASSWORD_HASH_CONCURRENCY at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { Worker } from 'node:worker_threads';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { openPool } from '../helpers/race';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { createLink } from '../links/link-helpers';

const password = 'tenant-b-password';
const loadLoops = 40;
const loadMs = 4000;

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * fraction) - 1))]!;
}
const p95 = (samples: number[]) => percentile(samples, 0.95);
const median = (samples: number[]) => percentile(samples, 0.5);

/**
 * Tenant B's bounded load on a worker thread: `loops` loops for `loadMs`, alternating unlock and
 * X-Link-Password requests, right and wrong passwords, from many client addresses behind the trusted proxy (so
 * per-address limits do not stop the hashing early: only the per-process gate stands in the way). A refused
 * request pauses its loop 250 ms, keeping the load to the loops (this measures the hashing's effect, not how fast
 * one event loop answers 429s). Resolves with the count of each status.
 */
function runLoadOnThread(input: { baseUrl: string; linkToken: string; password: string; loops: number; loadMs: number }): Promise<Record<number, number>> {
  const source = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    const statuses = {};
    let n = 0;
    const deadline = Date.now() + w.loadMs;
    async function loop(loopIndex) {
      while (Date.now() < deadline) {
        const i = n++;
        const from = '10.' + loopIndex + '.' + (Math.floor(i / 250) % 250) + '.' + ((i % 250) + 1);
        const right = i % 3 === 0;
        const guess = right ? w.password : 'wrong-' + i;
        const response = i % 2 === 0
          ? await fetch(w.baseUrl + '/api/v1/public/links/' + w.linkToken + '/unlock', { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ password: guess }) })
          : await fetch(w.baseUrl + '/api/v1/public/links/' + w.linkToken, { headers: { 'x-forwarded-for': from, 'x-link-password': guess } });
        await response.arrayBuffer();
        statuses[response.status] = (statuses[response.status] || 0) + 1;
        if (response.status === 503 || response.status === 429) await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    Promise.all(Array.from({ length: w.loops }, (_, i) => loop(i))).then(() => parentPort.postMessage(statuses), (error) => parentPort.postMessage({ error: String(error) }));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: input });
    worker.once('message', (message: Record<string, unknown>) => {
      void worker.terminate();
      if ('error' in message) reject(new Error(String(message.error)));
      else resolve(message as Record<number, number>);
    });
    worker.once('error', reject);
  });
}

describe('races: noisy neighbour on link passwords', () => {
  let stack: TestStack;
  let alice: TestUser;
  let fileA: string;
  let dataA: Buffer;
  let linkB: { token: string };

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_TRUSTED_PROXIES: '127.0.0.1' } });
    assert.equal(stack.config.storage.driver, 'filesystem');
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    dataA = randomData(64 * 1024);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'a.bin', dataA);
    assert.equal(upload.status, 201);
    fileA = upload.body.file.id;
    const bob = await newUser(stack, (await createTestTenant(stack)).id, 'bob');
    const uploadB = await uploadDirect(stack, bob.token, bob.rootFolderId, 'b.bin', randomData(1024));
    assert.equal(uploadB.status, 201);
    linkB = await createLink(stack, bob.token, 'file', uploadB.body.file.id, { password });
  });
  after(() => stack.close());

  async function downloadA(dispatcher: Dispatcher): Promise<number> {
    const started = performance.now();
    const response = await fetch(`${stack.baseUrl}/api/v1/files/${fileA}/content`, { headers: { authorization: `Bearer ${alice.token}` }, dispatcher } as RequestInit);
    const body = Buffer.from(await response.arrayBuffer());
    const elapsed = performance.now() - started;
    assert.equal(response.status, 200);
    assert.equal(body.length, dataA.length);
    return elapsed;
  }

  async function measureA(dispatcher: Dispatcher, count: number): Promise<number[]> {
    const samples: number[] = [];
    for (let i = 0; i < count; i++) samples.push(await downloadA(dispatcher));
    return samples;
  }

  /** One round of tenant B's load (on a thread of its own) while tenant A downloads in a loop. */
  async function loadedRound(poolA: Dispatcher) {
    let maxRunning = 0;
    const sampler = setInterval(() => (maxRunning = Math.max(maxRunning, stack.services.passwordHashing.stats.running)), 5);
    const loadDone = runLoadOnThread({ baseUrl: stack.baseUrl, linkToken: linkB.token, password, loops: loadLoops, loadMs });
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the load build up
    const deadline = Date.now() + loadMs - 300;
    const loadedSamples: number[] = [];
    let readyStatus = 0;
    while (Date.now() < deadline - 200) {
      loadedSamples.push(await downloadA(poolA));
      if (loadedSamples.length === 10) readyStatus = (await api(stack.baseUrl, 'GET', '/api/v1/health/ready', { dispatcher: poolA })).status;
    }
    const statuses = await loadDone;
    clearInterval(sampler);
    return { loaded: p95(loadedSamples), loadedSamples, statuses, maxRunning, readyStatus };
  }

  test("40 parallel unlock loops on tenant B's link for 4 s: tenant A's download p95 stays within bounds", async () => {
    const poolA = await openPool(stack.baseUrl, 1);
    try {
      await measureA(poolA, 10); // warm-up (JIT, connection, page cache)
      // Warm-up of B's path too: the first hashes start the gate's worker threads (a one-off cost per process).
      await Promise.all([0, 1].map(() => api(stack.baseUrl, 'POST', `/api/v1/public/links/${linkB.token}/unlock`, { body: { password }, dispatcher: poolA })));
      const quiet = p95(await measureA(poolA, 60));

      // Tenant B's load runs on a thread of its own (its own event loop), as an attacker's client would be a
      // process of its own: what is measured is the server's isolation, not the test client's share of the loop.
      // A's requests share the event loop with B's 40 in-flight requests (JSON, SQL) and the 2 cores with the
      // hashing thread, B's client and PostgreSQL, so a quiet p95 of a few ms gets an absolute floor of +50 ms;
      // before the fix A's downloads took seconds (scrypt held the whole libuv pool). One scheduling hiccup on a
      // shared CI machine can move the p95 of ~200 samples past that floor, so the loaded round runs up to twice:
      // isolation holds when one round stays within the bound (the regression fails every round by seconds).
      const bound = Math.max(2 * quiet, quiet + 50);
      const rounds: string[] = [];
      let best = Infinity;
      for (let round = 1; round <= 2 && best > bound; round++) {
        const { loaded, loadedSamples, statuses, maxRunning, readyStatus } = await loadedRound(poolA);
        // The load was real: B's requests were answered (evaluated, limited or refused while the gate was full).
        const total = Object.values(statuses).reduce((a, b) => a + b, 0);
        assert.ok(total >= loadLoops, `tenant B sent ${total} requests: ${JSON.stringify(statuses)}`);
        assert.ok((statuses[401] ?? 0) + (statuses[200] ?? 0) > 0, JSON.stringify(statuses));
        for (const status of Object.keys(statuses).map(Number)) assert.ok([200, 401, 429, 503].includes(status), `unexpected ${status}: ${JSON.stringify(statuses)}`);
        assert.ok(maxRunning <= stack.config.passwordHashing.concurrency, `hashes at once: ${maxRunning}`);
        assert.equal(readyStatus, 200, 'readiness stays up under the load');
        assert.ok(loadedSamples.length >= 10, `tenant A completed ${loadedSamples.length} downloads under load`);
        rounds.push(`round ${round}: A p95 ${loaded.toFixed(1)} ms (median ${median(loadedSamples).toFixed(1)}) over ${loadedSamples.length} downloads; B ${JSON.stringify(statuses)}`);
        best = Math.min(best, loaded);
      }
      console.log(`noisy neighbour: A p95 quiet ${quiet.toFixed(1)} ms, bound ${bound.toFixed(1)} ms; ${rounds.join('; ')}`);
      assert.ok(best <= bound, `tenant A under load vs ${quiet.toFixed(1)} ms quiet (bound ${bound.toFixed(1)} ms): ${rounds.join('; ')}`);
    } finally {
      await poolA.close();
    }
  });
});
