// Unit tests for configuration parsing: URL schemes, rate-limit and statement-timeout defaults.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config';

const dev = { SCAIDRIVE_ENV: 'development' };

describe('loadConfig', () => {
  test('URLs must have the scheme the setting means (a bare "node:…" or "file:" URL is refused by name)', () => {
    assert.throws(() => loadConfig({ ...dev, SCAIDRIVE_SCAIKEY_URL: 'node:internal/x:1' }), (e: Error) => e instanceof ConfigError && /SCAIDRIVE_SCAIKEY_URL/.test(e.message));
    assert.throws(() => loadConfig({ ...dev, SCAIDRIVE_REDIS_URL: 'http://127.0.0.1:6379' }), /SCAIDRIVE_REDIS_URL: expected a redis or rediss URL/);
    assert.throws(() => loadConfig({ ...dev, SCAIDRIVE_DATABASE_URL: 'mysql://x/y' }), /SCAIDRIVE_DATABASE_URL/);
    assert.equal(loadConfig({ ...dev, SCAIDRIVE_REDIS_URL: 'rediss://cache:6380' }).redisUrl, 'rediss://cache:6380');
  });
  test('defaults: rate limits 1000/1000/10000 per minute, statement timeouts 30 s (API) and 600 s (workers)', () => {
    const config = loadConfig(dev);
    assert.deepEqual(config.rateLimits, { userPerMinute: 1000, apiKeyPerMinute: 1000, tenantPerMinute: 10000 });
    assert.equal(config.database.statementTimeoutSeconds, 30);
    assert.equal(config.database.workerStatementTimeoutSeconds, 600);
  });
});
