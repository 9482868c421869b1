// Unit tests for configuration parsing: URL schemes, rate-limit and statement-timeout defaults, embeddings.
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
  test('embeddings: local (256 dimensions) by default; openai needs URL, model and dimensions; a failover needs openai', () => {
    assert.deepEqual(loadConfig(dev).embedding, { provider: 'local', dimensions: 256 });
    assert.throws(() => loadConfig({ ...dev, SCAIDRIVE_EMBEDDING_PROVIDER: 'openai', SCAIDRIVE_EMBEDDING_URL: 'http://tei:8080/v1' }), /SCAIDRIVE_EMBEDDING_MODEL: required when SCAIDRIVE_EMBEDDING_PROVIDER=openai/);
    assert.throws(() => loadConfig({ ...dev, SCAIDRIVE_EMBEDDING_FALLBACK_URL: 'http://b/v1' }), /SCAIDRIVE_EMBEDDING_FALLBACK_URL/);
    const openai = loadConfig({
      ...dev,
      SCAIDRIVE_EMBEDDING_PROVIDER: 'openai',
      SCAIDRIVE_EMBEDDING_URL: 'http://a/v1',
      SCAIDRIVE_EMBEDDING_API_KEY: 'k',
      SCAIDRIVE_EMBEDDING_MODEL: 'bge-small',
      SCAIDRIVE_EMBEDDING_DIMENSIONS: '384',
      SCAIDRIVE_EMBEDDING_FALLBACK_URL: 'http://b/v1',
    }).embedding;
    assert.deepEqual(openai, { provider: 'openai', url: 'http://a/v1', apiKey: 'k', model: 'bge-small', dimensions: 384, fallback: { url: 'http://b/v1', apiKey: 'k' } });
  });
});
