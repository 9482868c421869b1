// File helpers for tests: users with their root folder, resumable and direct uploads, downloads.
import { createHash, randomBytes } from 'node:crypto';
import { api, tokenFor, type TestStack } from './stack';

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const randomData = (size: number) => randomBytes(size);

export interface TestUser {
  token: string;
  userId: string;
  rootFolderId: string;
  spaceId: string;
}

export async function newUser(stack: TestStack, tenantId: string, subject: string, options: { admin?: boolean } = {}): Promise<TestUser> {
  const token = await tokenFor(stack, tenantId, subject, options);
  const me = await api(stack.baseUrl, 'GET', '/api/v1/me', { token });
  if (me.status !== 200) throw new Error(`GET /me: ${me.status} ${me.text}`);
  return { token, userId: me.body.id, rootFolderId: me.body.personal_space.root_folder_id, spaceId: me.body.personal_space.id };
}

export async function putChunk(stack: TestStack, token: string, uploadId: string, index: number, data: Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', ...headers },
    body: data,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function createSession(stack: TestStack, token: string, body: Record<string, unknown>) {
  return api(stack.baseUrl, 'POST', '/api/v1/uploads', { token, body });
}

/** Uploads `data` through the resumable API (chunks in parallel, in a shuffled order) and finalizes it. */
export async function uploadResumable(
  stack: TestStack,
  token: string,
  parentId: string,
  name: string,
  data: Buffer,
  options: { chunkSize?: number; parallel?: number; checksum?: string | false; baseVersionId?: string } = {},
) {
  const chunkSize = options.chunkSize ?? 8 * 1024 * 1024;
  const session = await createSession(stack, token, {
    parent_id: parentId,
    name,
    size: data.length,
    chunk_size: chunkSize,
    ...(options.checksum === false ? {} : { checksum_sha256: options.checksum ?? sha256(data) }),
    ...(options.baseVersionId ? { base_version_id: options.baseVersionId } : {}),
  });
  if (session.status !== 201) return { session, finalize: session };
  const indexes = Array.from({ length: session.body.chunk_count }, (_, i) => i).reverse();
  const parallel = options.parallel ?? 4;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let index = indexes.pop(); index !== undefined; index = indexes.pop()) {
        const response = await putChunk(stack, token, session.body.id, index, data.subarray(index * chunkSize, (index + 1) * chunkSize));
        if (response.status !== 200) throw new Error(`chunk ${index}: ${response.status} ${JSON.stringify(response.body)}`);
      }
    }),
  );
  const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.body.id}/finalize`, { token });
  return { session, finalize };
}

export async function uploadDirect(stack: TestStack, token: string, parentId: string, name: string, data: Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(`${stack.baseUrl}/api/v1/folders/${parentId}/files/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', ...headers },
    body: data,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function download(stack: TestStack, path: string, options: { token?: string; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${stack.baseUrl}${path}`, {
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
  });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}
