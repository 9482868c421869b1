// Shared assertions on the spec's error shape ({detail, code, request_id, details?}).
import assert from 'node:assert/strict';

/** The parsed error body of a response whose body may be JSON, text or bytes (undefined when there is none). */
function errorBody(res: { body: any; text?: string }): any {
  if (res.body !== undefined && res.body !== null && typeof res.body === 'object' && !Buffer.isBuffer(res.body)) return res.body;
  const text = res.text ?? (Buffer.isBuffer(res.body) ? res.body.toString('utf8') : typeof res.body === 'string' ? res.body : '');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Asserts an error response: its status, its code when given, and — whenever it has a body (HEAD answers have
 * none) — the spec's error shape: a `detail` (string, or the 422 array) and a `request_id`.
 */
export function assertError(res: { status: number; body: any; text?: string }, status: number, code?: string, what = ''): void {
  const body = errorBody(res);
  const shown = JSON.stringify(body);
  assert.equal(res.status, status, `${what} expected ${status}${code ? ` ${code}` : ''}, got ${res.status} ${shown}`);
  if (code) assert.equal(body?.code, code, `${what} expected code ${code}, got ${shown}`);
  if (body === undefined) return;
  assert.ok(typeof body?.detail === 'string' || Array.isArray(body?.detail), `${what} error body has a detail: ${shown}`);
  assert.equal(typeof body?.request_id, 'string', `${what} error body carries request_id: ${shown}`);
}
