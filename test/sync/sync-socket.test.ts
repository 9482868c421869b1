// The sync WebSocket (issue #12 item 5) with the `ws` client against two API processes on one database (the test
// stack's and a real `scaidrive api` process): a commit through one reaches a socket and a long poll on the other; hints only for the user's own spaces (never another
// tenant's or user's), following grants as they change; close codes 4401/4403/4429; the connection gauge; and a
// graceful drain (1001) when a server stops.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { mkdir, put } from '../helpers/tree';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { pullAll } from '../helpers/sync';

const V1 = '/api/v1';

interface Hint {
  type: string;
  space_id?: string;
  cursor?: number | null;
}

/** A connected socket that records its messages and how it closed. */
class Client {
  readonly messages: Hint[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as Hint);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake();
    });
  }

  static connect(url: string, protocols?: string[]): Client {
    return new Client(new WebSocket(url, protocols));
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  async until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      assert.ok(left > 0, `timed out waiting for ${what}; got ${JSON.stringify(this.messages)} closed ${JSON.stringify(this.closed)}`);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(left)]);
    }
  }

  ready(): Promise<Hint> {
    return this.until('ready', () => this.messages.find((m) => m.type === 'ready'));
  }

  hintFor(spaceId: string, after = 0): Promise<Hint> {
    return this.until(`a hint for ${spaceId}`, () => this.messages.slice(after).find((m) => m.type === 'changes' && m.space_id === spaceId));
  }

  closeCode(): Promise<number> {
    return this.until('close', () => this.closed?.code);
  }
}

describe('sync WebSocket', () => {
  let stack: TestStack;
  let second: ApiProcess;
  let tenantId: string;
  let alice: TestUser;
  let bob: TestUser;
  const clients: Client[] = [];
  const wsUrl = (s: { baseUrl: string }, token?: string) => `${s.baseUrl.replace('http', 'ws')}${V1}/sync/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const open = (url: string, protocols?: string[]) => {
    const client = Client.connect(url, protocols);
    clients.push(client);
    return client;
  };

  before(async () => {
    stack = await startTestStack({ env: { SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN: '3' } });
    second = await startApiProcess(stack);
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await second?.stop();
    await stack?.close();
  });

  test('a commit through one API server reaches a socket on the other within a second; only the user\'s own spaces', async () => {
    const aliceSocket = open(wsUrl(second, alice.token));
    const bobSocket = open(wsUrl(second, bob.token));
    await aliceSocket.ready();
    await bobSocket.ready();
    const otherTenant = (await createTestTenant(stack)).id;
    const mallory = await newUser(stack, otherTenant, 'mallory');

    const committed = Date.now();
    await mkdir(stack, alice, alice.rootFolderId, 'hello');
    const hint = await aliceSocket.hintFor(alice.spaceId);
    assert.ok(Date.now() - committed < 1_000, `hint after ${Date.now() - committed} ms`);
    assert.equal(typeof hint.cursor, 'number');
    // The hint's position is where the feed is: pulling from an older cursor finds the change.
    await mkdir(stack, mallory, mallory.rootFolderId, 'elsewhere');
    await mkdir(stack, bob, bob.rootFolderId, 'bobs');
    await bobSocket.hintFor(bob.spaceId);
    await sleep(300);
    assert.deepEqual(aliceSocket.messages.filter((m) => m.type === 'changes').map((m) => m.space_id), [alice.spaceId], 'no hint about another user or tenant');
    assert.ok(bobSocket.messages.every((m) => m.type !== 'changes' || m.space_id === bob.spaceId));

    // The long poll on the other process wakes on a commit made through this one.
    const { cursor } = await pullAll(stack, alice.token, '0');
    const waiting = api(second.baseUrl, 'GET', `${V1}/sync/changes/wait?cursor=${encodeURIComponent(cursor)}&timeout=30`, { token: alice.token });
    await sleep(300);
    const before = Date.now();
    await mkdir(stack, alice, alice.rootFolderId, 'poll-me');
    assert.deepEqual((await waiting).body, { changes: true });
    assert.ok(Date.now() - before < 3_000);
  });

  test('hints follow grants: a new share member starts getting them, a removed one stops', async () => {
    const share = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: alice.token, body: { name: 'Hinted' } });
    const shareId: string = share.body.id;
    const bobSocket = open(wsUrl(stack, bob.token), undefined);
    await bobSocket.ready();
    const member = await api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/members`, { token: alice.token, body: { principal_type: 'user', principal_id: bob.userId, role: 'reader' } });
    assert.equal(member.status, 201);
    await bobSocket.hintFor(shareId);
    const seen = bobSocket.messages.length;
    await put(stack, alice, share.body.root_folder_id, 'news.txt', Buffer.from('news'));
    await bobSocket.hintFor(shareId, seen);

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/shares/${shareId}/members/${member.body.id}`, { token: alice.token })).status, 204);
    // Sockets re-read their spaces at most once a second when grants change.
    await sleep(1_500);
    const afterRemoval = bobSocket.messages.length;
    await put(stack, alice, share.body.root_folder_id, 'secret.txt', Buffer.from('secret'));
    await sleep(500);
    assert.deepEqual(bobSocket.messages.slice(afterRemoval), [], 'no hints from a space bob lost');
  });

  test('token in Sec-WebSocket-Protocol; close codes 4401 (bad token), 4403 (suspended), 4429 (per-token limit); the gauge counts', async () => {
    // Without Upgrade it is not a WebSocket: 426 in the error shape; the OpenAPI document describes the messages.
    const plain = await api(stack.baseUrl, 'GET', `${V1}/sync/ws`, { token: alice.token });
    assert.equal(plain.status, 426, plain.text);
    assert.equal(plain.body.code, 'UPGRADE_REQUIRED');
    const openapi = (await fetch(`${stack.baseUrl}/api/openapi.json`).then((r) => r.json())) as any;
    assert.match(JSON.stringify(openapi.paths['/api/v1/sync/ws']), /4429/);
    assert.ok(openapi.paths['/api/v1/sync/changes/wait'] && openapi.paths['/api/v1/sync/changes']);

    const viaProtocol = open(wsUrl(stack), ['scaidrive.v1', `bearer.${alice.token}`]);
    await viaProtocol.ready();
    assert.equal(viaProtocol.ws.protocol, 'scaidrive.v1');

    assert.equal(await open(wsUrl(stack)).closeCode(), 4401);
    assert.equal(await open(wsUrl(stack, 'not-a-token')).closeCode(), 4401);
    assert.equal(await open(wsUrl(stack, await tokenFor(stack, tenantId, 'alice', { expiresInSeconds: -60 }))).closeCode(), 4401);

    const admin = await newUser(stack, tenantId, 'admin', { admin: true });
    const carol = await newUser(stack, tenantId, 'carol');
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/admin/users/${carol.userId}/deactivate`, { token: admin.token })).status, 200);
    assert.equal(await open(wsUrl(stack, carol.token)).closeCode(), 4403);

    // Three per token on this server (SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN=3): the fourth is refused with 4429.
    const token = await tokenFor(stack, tenantId, 'dave');
    const three = [open(wsUrl(stack, token)), open(wsUrl(stack, token)), open(wsUrl(stack, token))];
    for (const client of three) await client.ready();
    assert.equal(await open(wsUrl(stack, token)).closeCode(), 4429);
    const metrics = await fetch(`${stack.baseUrl}/metrics`).then((r) => r.text());
    const gauge = Number(/^scaidrive_sync_websocket_connections (\d+)/m.exec(metrics)?.[1]);
    assert.ok(gauge >= 4, `gauge ${gauge}`);
    // One closes: a slot frees up.
    three[0]!.ws.close();
    await three[0]!.closeCode();
    await sleep(100);
    await open(wsUrl(stack, token)).ready();
  });

  test('an API process sent SIGTERM closes its sockets with 1001 (clients reconnect elsewhere) and exits', async () => {
    const third = await startApiProcess(stack);
    const client = open(wsUrl(third, alice.token));
    await client.ready();
    await third.stop();
    assert.equal(await client.closeCode(), 1001);
    assert.equal(third.exitCode(), 0, third.output().slice(-2000));
  });
});
