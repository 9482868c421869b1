// Fixed-window request counters for rate limits (spec §12): in Redis when configured, so every API replica
// draws on one budget, and in process memory otherwise.
import { Redis } from 'ioredis';

export interface WindowCount {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface RateLimiter {
  /** Counts one request against `key` in a window of `windowMs` and returns the window's state. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  close(): Promise<void>;
}

/** What a window count means for a limit: allowed or not, and the RateLimit-* header values. */
export function rateLimitVerdict(window: WindowCount, limit: number) {
  const resetSeconds = Math.max(1, Math.ceil(window.resetMs / 1000));
  return { allowed: window.count <= limit, limit, remaining: Math.max(0, limit - window.count), resetSeconds };
}

export function createMemoryRateLimiter(now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { count: number; endsAt: number }>();
  let lastSweep = now();
  return {
    async hit(key, windowMs) {
      const at = now();
      if (at - lastSweep > windowMs) {
        // Forget finished windows so the map holds only active callers.
        for (const [k, w] of windows) if (w.endsAt <= at) windows.delete(k);
        lastSweep = at;
      }
      let window = windows.get(key);
      if (!window || window.endsAt <= at) {
        window = { count: 0, endsAt: at + windowMs };
        windows.set(key, window);
      }
      window.count += 1;
      return { count: window.count, resetMs: window.endsAt - at };
    },
    async close() {
      windows.clear();
    },
  };
}

/** INCR and the window's expiry in one atomic script: parallel replicas cannot lose a count or an expiry. */
const hitScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`;

export function createRedisRateLimiter(url: string): RateLimiter {
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  redis.on('error', () => undefined); // reported per call; the limiter fails open below
  redis.defineCommand('scaidriveRateHit', { numberOfKeys: 1, lua: hitScript });
  return {
    async hit(key, windowMs) {
      const [count, ttl] = (await (redis as unknown as { scaidriveRateHit(k: string, ms: number): Promise<[number, number]> }).scaidriveRateHit(
        `scaidrive:ratelimit:${key}`,
        windowMs,
      )) as [number, number];
      return { count: Number(count), resetMs: Number(ttl) };
    },
    async close() {
      redis.disconnect();
    },
  };
}

export function createRateLimiter(redisUrl: string | undefined): RateLimiter {
  return redisUrl ? createRedisRateLimiter(redisUrl) : createMemoryRateLimiter();
}
