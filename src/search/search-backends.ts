// The two outside services search depends on — Weaviate (passages) and the embedding provider — behind one
// object every process shares. Weaviate is connected lazily and reconnected after a failure, so an API started
// while Weaviate is down serves keyword search and answers semantic search with 503 until Weaviate is back.
import type { Config } from '../config';
import { createEmbeddingProvider, type EmbeddingProvider } from './embeddings';
import { PassageStore } from './passage-store';

/** Weaviate is not configured or cannot be reached now. */
export class VectorStoreUnavailableError extends Error {
  readonly code = 'VECTOR_STORE_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'VectorStoreUnavailableError';
  }
}

export interface SearchHealth {
  weaviate_connected: boolean;
  embedding_service_available: boolean;
}

export class SearchBackends {
  private store: Promise<PassageStore> | undefined;

  constructor(
    private readonly weaviate: { url: string; grpcPort: number } | undefined,
    readonly embeddings: EmbeddingProvider,
    /** Semantic matches below this cosine similarity are dropped. */
    readonly minSimilarity = 0.2,
  ) {}

  static fromConfig(config: Pick<Config, 'weaviateUrl' | 'weaviateGrpcPort' | 'embedding' | 'searchMinSimilarity'>): SearchBackends {
    return new SearchBackends(config.weaviateUrl ? { url: config.weaviateUrl, grpcPort: config.weaviateGrpcPort } : undefined, createEmbeddingProvider(config), config.searchMinSimilarity);
  }

  get vectorStoreConfigured(): boolean {
    return this.weaviate !== undefined;
  }

  /** The passage store, connecting on first use; a failed connection is tried again on the next call. */
  passages(): Promise<PassageStore> {
    const weaviate = this.weaviate;
    if (!weaviate) return Promise.reject(new VectorStoreUnavailableError('No vector store is configured (SCAIDRIVE_WEAVIATE_URL)'));
    this.store ??= PassageStore.connect(weaviate).catch((error: unknown) => {
      this.store = undefined;
      throw new VectorStoreUnavailableError(`Weaviate at ${weaviate.url} is unreachable: ${(error as Error).message}`);
    });
    return this.store;
  }

  /**
   * Drops the connection after Weaviate failed mid-request: the next use connects afresh instead of waiting out the
   * old gRPC channel's reconnect backoff (which grows to minutes while Weaviate is down).
   */
  invalidate(): void {
    const store = this.store;
    this.store = undefined;
    void store?.then((s) => s.close(), () => undefined).catch(() => undefined);
  }

  private embeddingCheck: { at: number; result: Promise<void> } | undefined;

  /**
   * Whether the embedding provider answers, asked at most every 30 s: a hosted provider's check is a billed request,
   * and readiness probes and /search/health come often.
   */
  checkEmbeddings(): Promise<void> {
    const now = Date.now();
    if (!this.embeddingCheck || now - this.embeddingCheck.at > 30_000) {
      const result = this.embeddings.check();
      result.catch(() => undefined);
      this.embeddingCheck = { at: now, result };
    }
    return this.embeddingCheck.result;
  }

  async health(): Promise<SearchHealth> {
    const [weaviate, embedding] = await Promise.all([
      this.passages().then((store) => store.isReady(), () => false),
      this.checkEmbeddings().then(() => true, () => false),
    ]);
    return { weaviate_connected: weaviate, embedding_service_available: embedding };
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    if (store) await store.then((s) => s.close(), () => undefined);
  }
}
