// Embedding providers (issue #11 item 4): the OpenAI-compatible client against a fake server over HTTP —
// batching, the bearer key, answers sorted by index, 429/503 Retry-After waited out, a hung server timing out,
// failover to a secondary of the same model, a model answering other dimensions refused — and the local lexical
// provider.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddingRejectedError, EmbeddingUnavailableError, FailoverProvider, LocalNgramProvider, OpenAiCompatibleProvider, similarity } from '../../src/search/embeddings';
import { EmbeddingFake } from '../fixtures/embedding-fake';

describe('OpenAI-compatible embedding provider (fake server over HTTP)', () => {
  let primary: EmbeddingFake;
  let secondary: EmbeddingFake;
  before(async () => {
    primary = await EmbeddingFake.start();
    secondary = await EmbeddingFake.start();
  });
  after(async () => {
    await primary?.close();
    await secondary?.close();
  });
  const provider = (fake: EmbeddingFake, options: Partial<ConstructorParameters<typeof OpenAiCompatibleProvider>[0]> = {}) =>
    new OpenAiCompatibleProvider({ baseUrl: fake.url, apiKey: 'sk-test', model: fake.model, dimensions: fake.dimensions, batchSize: 4, timeoutMs: 1000, ...options });

  test('batches texts, sends the key, and returns vectors in input order', async () => {
    primary.requests.length = 0;
    const texts = Array.from({ length: 10 }, (_, i) => `text ${i}`);
    const vectors = await provider(primary).embed(texts);
    assert.deepEqual(vectors, texts.map((t) => primary.vectorOf(t)));
    assert.deepEqual(primary.requests.map((r) => r.input.length), [4, 4, 2]);
    assert.ok(primary.requests.every((r) => r.authorization === 'Bearer sk-test' && r.model === primary.model));
  });

  test('429 and 503 with Retry-After are waited out; past the budget the provider is unavailable', async () => {
    primary.failNext(2, 429, 1);
    const started = Date.now();
    await provider(primary).embed(['a']);
    assert.ok(Date.now() - started >= 2000, 'waited both Retry-Afters');
    primary.failNext(1, 503, 0);
    await provider(primary).embed(['b']);
    primary.failNext(5, 429, 2);
    await assert.rejects(provider(primary, { throttleBudgetMs: 3000 }).embed(['c']), EmbeddingUnavailableError);
    primary.failNext(0, 429);
  });

  test('a hung server times out as unavailable; 500 is unavailable; a wrong model is rejected', async () => {
    primary.hang(1);
    await assert.rejects(provider(primary, { timeoutMs: 300 }).embed(['x']), EmbeddingUnavailableError);
    primary.failNext(1, 500);
    await assert.rejects(provider(primary).embed(['x']), EmbeddingUnavailableError);
    await assert.rejects(provider(primary, { model: 'no-such-model' }).embed(['x']), EmbeddingRejectedError);
  });

  test('vectors of other dimensions are refused, never mixed into the space', async () => {
    await assert.rejects(provider(primary, { dimensions: 16 }).embed(['x']), (error: Error) => error instanceof EmbeddingRejectedError && /16/.test(error.message));
  });

  test('failover: the primary unavailable (500) → the secondary answers; only the same space may stand in', async () => {
    const both = new FailoverProvider(provider(primary), provider(secondary));
    primary.failNext(1, 500);
    secondary.requests.length = 0;
    assert.deepEqual(await both.embed(['hello']), [secondary.vectorOf('hello')]);
    assert.equal(both.failovers, 1);
    assert.equal(secondary.requests.length, 1);
    await both.check();
    assert.throws(() => new FailoverProvider(provider(primary), provider(secondary, { dimensions: 4 })), /same model and dimensions/);
  });
});

describe('local lexical provider', () => {
  test('deterministic, normalised, and closer for texts sharing words than for unrelated ones', async () => {
    const local = new LocalNgramProvider(256);
    const [a, b, c, again] = await local.embed(['quarterly revenue report 2026', 'revenue report for the quarter', 'Hiking boots and tents', 'quarterly revenue report 2026']);
    assert.deepEqual(a, again);
    assert.ok(Math.abs(similarity(a!, a!) - 1) < 1e-9);
    assert.ok(similarity(a!, b!) > similarity(a!, c!) + 0.2, `${similarity(a!, b!)} vs ${similarity(a!, c!)}`);
    assert.equal(local.space, 'scaidrive-local-trigram-v2@256');
    assert.deepEqual(await local.embed(['']), [new Array(256).fill(0)]);
  });
});
