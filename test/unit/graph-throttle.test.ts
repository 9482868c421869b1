// Retry-After parsing of the Graph throttle middleware (seconds or an HTTP date; absent or garbage → undefined).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryAfterMs } from '../../src/connectors/sharepoint/throttle-handler';

test('Retry-After as seconds, as an HTTP date, or unusable', () => {
  assert.equal(retryAfterMs('7'), 7000);
  assert.equal(retryAfterMs('0'), 0);
  const now = Date.parse('2026-12-03T10:00:00Z');
  assert.equal(retryAfterMs('Thu, 03 Dec 2026 10:00:30 GMT', now), 30_000);
  assert.equal(retryAfterMs('Thu, 03 Dec 2026 09:59:00 GMT', now), 0, 'a date in the past means now');
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
  assert.equal(retryAfterMs('-5'), undefined);
});
