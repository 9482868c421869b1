// Tree helpers for tests: folders, direct uploads that must succeed, and a folder's children over every page.
import assert from 'node:assert/strict';
import { api, type ApiResponse, type TestStack } from './stack';
import { uploadDirect, type TestUser } from './files';

export const V1 = '/api/v1';

export async function mkdir(stack: TestStack, user: TestUser, parentId: string, name: string): Promise<any> {
  const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: user.token, body: { parent_id: parentId, name } });
  assert.equal(res.status, 201, `mkdir ${name}: ${res.text}`);
  return res.body;
}

/** A direct upload that must succeed (201 new file, 200 new version). */
export async function put(stack: TestStack, user: TestUser, parentId: string, name: string, data: Buffer, headers: Record<string, string> = {}) {
  const res = await uploadDirect(stack, user.token, parentId, name, data, headers);
  assert.ok(res.status === 201 || res.status === 200, `upload ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { file: any; version: any };
}

/** Every live child of a folder, following next_cursor to the end. */
export async function childrenOf(stack: TestStack, user: TestUser, folderId: string): Promise<any[]> {
  const all: any[] = [];
  let cursor: string | null = null;
  do {
    const res: ApiResponse = await api(stack.baseUrl, 'GET', `${V1}/folders/${folderId}/children?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { token: user.token });
    assert.equal(res.status, 200, res.text);
    all.push(...res.body.items);
    cursor = res.body.next_cursor;
  } while (cursor);
  return all;
}
