// Shared assertions on the spec's error shape ({detail, code, request_id, details?}).
import assert from 'node:assert/strict';

/** Asserts an error response: status, code, and the spec's error shape. */
export function assertError(res: { status: number; body: any }, status: number, code: string, what = ''): void {
  assert.equal(res.status, status, `${what} expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.code, code, `${what} expected code ${code}, got ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.detail === 'string' || Array.isArray(res.body.detail), true, `${what} detail missing`);
  assert.equal(typeof res.body.request_id, 'string', `${what} request_id missing`);
}
