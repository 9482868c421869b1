// Race: crossing folder moves (A under a folder inside B while B moves under a folder inside A) are
// serialised — one wins, the other is 409 INVALID_MOVE — so no cycle forms and deletes still work (spec §13).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { mkdir, unreachableNodes, V1 } from './tree-helpers';

describe('tree races: folder moves', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(async () => {
    await stack?.close();
  });

  test('25 pairs of crossing moves at once: exactly one move per pair wins, the other is 409 INVALID_MOVE; no cycle; deletes work', async () => {
    const pairs = 25;
    const round = await mkdir(stack, alice, alice.rootFolderId, 'crossing');
    const made: { a: { id: string }; b: { id: string }; x: { id: string }; y: { id: string } }[] = [];
    for (let i = 0; i < pairs; i++) {
      const a = await mkdir(stack, alice, round.id, `A${i}`);
      const b = await mkdir(stack, alice, round.id, `B${i}`);
      const x = await mkdir(stack, alice, b.id, 'X'); // inside B
      const y = await mkdir(stack, alice, a.id, 'Y'); // inside A
      made.push({ a, b, x, y });
    }
    // Request 2i moves A_i under X_i (inside B_i); request 2i+1 moves B_i under Y_i (inside A_i).
    const responses = await burst(stack.baseUrl, pairs * 2, (index, dispatcher) => {
      const { a, b, x, y } = made[Math.floor(index / 2)]!;
      const [moved, target] = index % 2 === 0 ? [a, x] : [b, y];
      return api(stack.baseUrl, 'PATCH', `${V1}/folders/${moved.id}`, { token: alice.token, body: { parent_id: target.id }, dispatcher });
    });
    assert.deepEqual(statusCounts(responses), { 200: pairs, 409: pairs }, JSON.stringify(statusCounts(responses)));
    for (let i = 0; i < pairs; i++) {
      const pair = [responses[2 * i]!, responses[2 * i + 1]!];
      assert.equal(pair.filter((r) => r.status === 200).length, 1, `pair ${i}: ${pair.map((r) => r.status)}`);
      assertError(pair.find((r) => r.status !== 200)!, 409, 'INVALID_MOVE', `pair ${i}`);
    }

    // The invariant: every node still reaches its space root by its parent chain.
    assert.deepEqual(await unreachableNodes(stack, tenantId), []);

    // Deleting each pair's top folder trashes all four folders, and finishes (no endless walk).
    for (const { a, b, x, y } of made) {
      const top = (await api(stack.baseUrl, 'GET', `${V1}/folders/${a.id}`, { token: alice.token })).body.parent_id === round.id ? a : b;
      const res = await api(stack.baseUrl, 'DELETE', `${V1}/folders/${top.id}`, { token: alice.token });
      assert.equal(res.status, 204, res.text);
      for (const node of [a, b, x, y]) assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${node.id}`, { token: alice.token }), 410, 'IN_TRASH');
    }
    assert.deepEqual(await unreachableNodes(stack, tenantId), []);
  });

  test('repeated rounds of moves back and forth between two folders never detach anything', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'rounds');
    const a = await mkdir(stack, alice, top.id, 'A');
    const b = await mkdir(stack, alice, top.id, 'B');
    const deepA = await mkdir(stack, alice, (await mkdir(stack, alice, a.id, 'A1')).id, 'A2');
    const deepB = await mkdir(stack, alice, (await mkdir(stack, alice, b.id, 'B1')).id, 'B2');
    for (let round = 0; round < 4; round++) {
      // Everyone tries at once: A under B's deepest folder, B under A's, and both back to the top.
      const responses = await burst(stack.baseUrl, 20, (index, dispatcher) => {
        const moves: [{ id: string }, { id: string }][] = [
          [a, deepB],
          [b, deepA],
          [a, top],
          [b, top],
        ];
        const [moved, target] = moves[index % 4]!;
        return api(stack.baseUrl, 'PATCH', `${V1}/folders/${moved.id}`, { token: alice.token, body: { parent_id: target.id }, dispatcher });
      });
      for (const res of responses) if (res.status !== 200) assertError(res, 409, 'INVALID_MOVE', `round ${round}`);
      assert.deepEqual(await unreachableNodes(stack, tenantId), [], `round ${round}`);
    }
    const res = await api(stack.baseUrl, 'DELETE', `${V1}/folders/${top.id}`, { token: alice.token });
    assert.equal(res.status, 204, res.text);
  });

  test('a move into its own subtree or itself is 409 INVALID_MOVE', async () => {
    const a = await mkdir(stack, alice, alice.rootFolderId, 'self');
    const inner = await mkdir(stack, alice, a.id, 'inner');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${a.id}`, { token: alice.token, body: { parent_id: inner.id } }), 409, 'INVALID_MOVE');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${a.id}`, { token: alice.token, body: { parent_id: a.id } }), 409, 'INVALID_MOVE');
  });
});
