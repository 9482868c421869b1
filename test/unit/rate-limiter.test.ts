// Unit tests for the rate-limit arithmetic and the in-memory fixed window (no services needed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryRateLimiter, rateLimitVerdict } from '../../src/services/rate-limiter';

describe('rateLimitVerdict', () => {
  test('allows up to the limit, then refuses; remaining never negative; reset at least 1 s', () => {
    assert.deepEqual(rateLimitVerdict({ count: 1, resetMs: 60_000 }, 3), { allowed: true, limit: 3, remaining: 2, resetSeconds: 60 });
    assert.deepEqual(rateLimitVerdict({ count: 3, resetMs: 1_200 }, 3), { allowed: true, limit: 3, remaining: 0, resetSeconds: 2 });
    assert.deepEqual(rateLimitVerdict({ count: 4, resetMs: 10 }, 3), { allowed: false, limit: 3, remaining: 0, resetSeconds: 1 });
  });
});

describe('memory rate limiter', () => {
  test('counts per key within a window and starts a new window when it ends', async () => {
    let now = 1_000_000;
    const limiter = createMemoryRateLimiter(() => now);
    assert.deepEqual(await limiter.hit('a', 60_000), { count: 1, resetMs: 60_000 });
    now += 10_000;
    assert.deepEqual(await limiter.hit('a', 60_000), { count: 2, resetMs: 50_000 });
    assert.deepEqual(await limiter.hit('b', 60_000), { count: 1, resetMs: 60_000 });
    now += 50_000;
    assert.deepEqual(await limiter.hit('a', 60_000), { count: 1, resetMs: 60_000 }, 'a new window');
  });
});
