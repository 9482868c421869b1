import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { download, newUser, randomData, sha256, uploadDirect, uploadResumable } from '../helpers/files';

describe('smoke', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ workers: true });
  });
  after(() => stack.close());
  test('resumable and direct round trips', async () => {
    const tenant = await createTestTenant(stack);
    const alice = await newUser(stack, tenant.id, 'alice');
    const data = randomData(200_000);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'a.bin', data, { chunkSize: 65536 });
    assert.equal(finalize.status, 200, finalize.text);
    const got = await download(stack, `/api/v1/files/${finalize.body.file.id}/content`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));
    const direct = await uploadDirect(stack, alice.token, alice.rootFolderId, 'b.bin', data);
    assert.equal(direct.status, 201, JSON.stringify(direct.body));
    const got2 = await download(stack, `/api/v1/files/${direct.body.file.id}/content`, { token: alice.token, headers: { range: 'bytes=100-65600' } });
    assert.equal(got2.status, 206);
    assert.deepEqual(got2.body, data.subarray(100, 65601));
  });
});
