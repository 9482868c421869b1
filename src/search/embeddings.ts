// Embedding providers (spec §11): an OpenAI-compatible `/v1/embeddings` client (OpenAI, Ollama, TEI, vLLM all
// speak it) with batching, timeouts and Retry-After handling, a secondary endpoint for failover, and a built-in
// local provider for development and tests. The local one is LEXICAL — hashed character trigrams, not a
// language model: texts sharing words and word pieces come out close, synonyms do not.
//
// Every provider names its vector space (`space`: model and dimensions). Vectors of different spaces are never
// mixed: a changed model means a re-index, and a failover endpoint must serve the same model.
import type { Config } from '../config';

export interface EmbeddingProvider {
  /** The vector space: model and dimensions (stored with indexed passages; a change means re-index). */
  readonly space: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<number[][]>;
  /** A cheap call proving the provider answers (health checks). */
  check(): Promise<void>;
}

/** The provider cannot answer now (down, timing out, throttling past the budget): retry later or fail over. */
export class EmbeddingUnavailableError extends Error {
  readonly code = 'EMBEDDING_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddingUnavailableError';
  }
}

/** The provider refused the request for good (bad key, unknown model, wrong dimensions): no retry helps. */
export class EmbeddingRejectedError extends Error {
  readonly code = 'EMBEDDING_REJECTED';
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddingRejectedError';
  }
}

const normalize = (vector: number[]): number[] => {
  const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
  return norm === 0 ? vector : vector.map((v) => v / norm);
};

/** FNV-1a over a string's UTF-16 code units, 32 bits: a fast, well-spread hash (not a cryptographic one). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The built-in local provider: each lower-cased, NFC-normalised word contributes its character trigrams (with
 * word boundaries) to buckets chosen by a hash (FNV-1a), with a sign from the hash's top bit; the vector is
 * L2-normalised. Deterministic, dependency-free and fast; lexical only.
 */
export class LocalNgramProvider implements EmbeddingProvider {
  readonly space: string;

  constructor(readonly dimensions = 256) {
    // v2: FNV-1a instead of SHA-1 per trigram (about 20× faster); a different space, so v1 indexes are re-indexed.
    this.space = `scaidrive-local-trigram-v2@${dimensions}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((text) => this.vectorOf(text));
  }

  async check(): Promise<void> {}

  vectorOf(text: string): number[] {
    const vector = new Array<number>(this.dimensions).fill(0);
    for (const word of text.normalize('NFC').toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
      if (!word) continue;
      const padded = `^${word}$`;
      for (let i = 0; i + 3 <= padded.length; i++) {
        const hash = fnv1a(padded.slice(i, i + 3));
        vector[hash % this.dimensions]! += hash & 0x80000000 ? 1 : -1;
      }
    }
    return normalize(vector);
  }
}

export interface OpenAiCompatibleOptions {
  /** The API base, e.g. `https://api.openai.com/v1` or `http://ollama:11434/v1` (`/embeddings` is added). */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Sent as `dimensions` when set (models that can shorten their vectors); checked against every answer. */
  dimensions: number;
  sendDimensions?: boolean;
  /** Texts per request. */
  batchSize?: number;
  timeoutMs?: number;
  /** Total time one batch may wait on 429/503 Retry-After before the provider counts as unavailable. */
  throttleBudgetMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class OpenAiCompatibleProvider implements EmbeddingProvider {
  readonly space: string;
  readonly dimensions: number;

  constructor(private readonly options: OpenAiCompatibleOptions) {
    this.dimensions = options.dimensions;
    this.space = `${options.model}@${options.dimensions}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const size = this.options.batchSize ?? 64;
    const vectors: number[][] = [];
    for (let i = 0; i < texts.length; i += size) vectors.push(...(await this.embedBatch(texts.slice(i, i + size))));
    return vectors;
  }

  async check(): Promise<void> {
    await this.embedBatch(['health check']);
  }

  private async embedBatch(input: string[]): Promise<number[][]> {
    const { baseUrl, apiKey, model, dimensions } = this.options;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const budget = this.options.throttleBudgetMs ?? 60_000;
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(`${baseUrl.replace(/\/+$/, '')}/embeddings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
          body: JSON.stringify({ model, input, ...(this.options.sendDimensions ? { dimensions } : {}) }),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
        });
      } catch (error) {
        throw new EmbeddingUnavailableError(`embedding service at ${new URL(baseUrl).host} unreachable: ${(error as Error).message}`);
      }
      if (response.status === 429 || response.status === 503) {
        await response.body?.cancel();
        const header = Number(response.headers.get('retry-after'));
        const wait = Number.isFinite(header) && header >= 0 ? header * 1000 : Math.min(10_000, 500 * 2 ** (attempt - 1));
        if (waited + wait > budget) throw new EmbeddingUnavailableError(`embedding service throttled past the ${budget / 1000} s budget (${response.status})`);
        await sleep(wait);
        waited += wait;
        continue;
      }
      const text = await response.text();
      if (response.status >= 500) throw new EmbeddingUnavailableError(`embedding service answered ${response.status}`);
      if (!response.ok) throw new EmbeddingRejectedError(`embedding service refused the request (${response.status}): ${text.slice(0, 300)}`);
      let body: { data?: { index: number; embedding: number[] }[] };
      try {
        body = JSON.parse(text);
      } catch {
        throw new EmbeddingUnavailableError('embedding service answered something that is not JSON');
      }
      const data = [...(body.data ?? [])].sort((a, b) => a.index - b.index);
      if (data.length !== input.length) throw new EmbeddingUnavailableError(`embedding service returned ${data.length} vectors for ${input.length} texts`);
      for (const item of data) {
        if (!Array.isArray(item.embedding) || item.embedding.length !== dimensions) {
          throw new EmbeddingRejectedError(`model ${model} returned ${item.embedding?.length ?? 0} dimensions, configured ${dimensions}: vectors of another space are never mixed in`);
        }
      }
      return data.map((item) => item.embedding);
    }
  }
}

/** The primary provider, and the secondary when the primary is unavailable (same vector space, or it refuses to start). */
export class FailoverProvider implements EmbeddingProvider {
  readonly space: string;
  readonly dimensions: number;
  /** How many batches went to the secondary (health and metrics). */
  failovers = 0;

  constructor(
    private readonly primary: EmbeddingProvider,
    private readonly secondary: EmbeddingProvider,
  ) {
    if (primary.space !== secondary.space) throw new Error(`the failover provider serves ${secondary.space}, the primary ${primary.space}: they must be the same model and dimensions`);
    this.space = primary.space;
    this.dimensions = primary.dimensions;
  }

  async embed(texts: string[]): Promise<number[][]> {
    try {
      return await this.primary.embed(texts);
    } catch (error) {
      if (!(error instanceof EmbeddingUnavailableError)) throw error;
      this.failovers += 1;
      return this.secondary.embed(texts);
    }
  }

  async check(): Promise<void> {
    try {
      await this.primary.check();
    } catch (error) {
      if (!(error instanceof EmbeddingUnavailableError)) throw error;
      await this.secondary.check();
    }
  }
}

/** Cosine similarity of two L2-normalised vectors (their dot product). */
export function similarity(a: number[], b: number[]): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}

/** The provider the configuration names (with its failover endpoint when one is set). */
export function createEmbeddingProvider(config: Pick<Config, 'embedding'>): EmbeddingProvider {
  const settings = config.embedding;
  if (settings.provider === 'local') return new LocalNgramProvider(settings.dimensions);
  const endpoint = (url: string, apiKey?: string) => new OpenAiCompatibleProvider({ baseUrl: url, apiKey, model: settings.model, dimensions: settings.dimensions, sendDimensions: true });
  const primary = endpoint(settings.url, settings.apiKey);
  return settings.fallback ? new FailoverProvider(primary, endpoint(settings.fallback.url, settings.fallback.apiKey)) : primary;
}
