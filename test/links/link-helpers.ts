// Helpers for the link tests: creating links as an owner and calling the public endpoints as a recipient.
import assert from 'node:assert/strict';
import { api, type TestStack } from '../helpers/stack';
import { download } from '../helpers/files';
export { assertError } from '../helpers/assertions';

export interface CreatedLink {
  id: string;
  token: string;
  url: string;
  [key: string]: unknown;
}

/** Creates a link on a file or folder as `token`'s user and asserts the 201. */
export async function createLink(stack: TestStack, token: string, kind: 'file' | 'folder', nodeId: string, body: Record<string, unknown> = {}): Promise<CreatedLink> {
  const response = await api(stack.baseUrl, 'POST', `/api/v1/${kind}s/${nodeId}/links`, { token, body });
  assert.equal(response.status, 201, response.text);
  return response.body as CreatedLink;
}

/** A recipient's JSON request under /public/links/{token}. */
export function publicApi(stack: TestStack, method: string, linkToken: string, suffix = '', options: { body?: unknown; headers?: Record<string, string> } = {}) {
  return api(stack.baseUrl, method, `/api/v1/public/links/${linkToken}${suffix}`, options);
}

/** A recipient's download under /public/links/{token}/content (raw bytes). */
export function publicDownload(stack: TestStack, linkToken: string, query = '', headers: Record<string, string> = {}) {
  return download(stack, `/api/v1/public/links/${linkToken}/content${query}`, { headers });
}

/**
 * Wrong-password limits count in fixed 15-minute windows: stands the stack's clock one second into a fresh
 * window (instead of waiting for one), so a test's attempts all land in one window. Returns that instant.
 */
export function standAtPasswordWindowStart(stack: TestStack): number {
  const windowMs = 15 * 60 * 1000;
  const at = (Math.floor(Date.now() / windowMs) + 1) * windowMs + 1000;
  stack.services.clock.now = () => at;
  return at;
}

/**
 * Email-code limits count in fixed 15-minute windows of real time (the code's expiry is stored from it too):
 * a test that needs a whole window waits for a fresh one when the current one ends within `marginMs`.
 */
export async function awaitRoomInEmailWindow(marginMs = 45_000): Promise<void> {
  const windowMs = 15 * 60 * 1000;
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
