// The vector store of ScaiDrive's search (spec §11): one Weaviate collection of passages with multi-tenancy on —
// one Weaviate tenant per ScaiDrive tenant, created on first use and never shared — and vectors supplied by
// ScaiDrive (no vectorizer module). Every read and write names the tenant, so one tenant's query can never
// reach another's passages. Built on `weaviate-client` v3 (HTTP for the schema, gRPC for data and queries).
import type { Collection, WeaviateClient } from 'weaviate-client';

type WeaviateModule = typeof import('weaviate-client');
let weaviateModule: Promise<WeaviateModule> | undefined;
/**
 * weaviate-client (with its gRPC stack: ~11 MiB of memory) is loaded when a process first connects, so an API
 * process that never serves search does not carry it.
 */
const loadWeaviate = () => (weaviateModule ??= import('weaviate-client'));

export const passageCollection = 'ScaiPassage';

export type PassageProperties = {
  file_id: string;
  version_id: string;
  space_id: string;
  passage_index: number;
  text: string;
};

export interface PassageInput {
  /** A deterministic UUID per (version, passage index): re-upserting a passage replaces it, never duplicates. */
  id: string;
  vector: number[];
  properties: PassageProperties;
}

export interface PassageHit {
  id: string;
  distance: number | undefined;
  properties: PassageProperties;
}

export interface PassageStoreOptions {
  /** Weaviate's HTTP endpoint, e.g. http://127.0.0.1:8080. */
  url: string;
  grpcPort: number;
}

/** An empty id in a filter reaches Weaviate as a null and fails there obscurely ("unknown value type <nil>"). */
function required(values: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(values)) if (typeof value !== 'string' || value === '') throw new TypeError(`${name} is required`);
}

export class PassageStore {
  private readonly knownTenants = new Set<string>();
  private collectionReady: Promise<void> | undefined;

  private constructor(
    private readonly client: WeaviateClient,
    private readonly lib: WeaviateModule,
  ) {}

  static async connect(options: PassageStoreOptions): Promise<PassageStore> {
    const url = new URL(options.url);
    const lib = await loadWeaviate();
    const client = await lib.default.connectToCustom({
      httpHost: url.hostname,
      httpPort: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      httpSecure: url.protocol === 'https:',
      grpcHost: url.hostname,
      grpcPort: options.grpcPort,
      grpcSecure: url.protocol === 'https:',
      timeout: { init: 10, query: 30, insert: 60 },
      skipInitChecks: false,
    });
    return new PassageStore(client, lib);
  }

  async isReady(): Promise<boolean> {
    try {
      return await this.client.isReady();
    } catch {
      return false;
    }
  }

  /** The passage collection (multi-tenant, self-provided vectors), created once if missing. */
  ensureCollection(): Promise<void> {
    this.collectionReady ??= (async () => {
      if (await this.client.collections.exists(passageCollection)) return;
      try {
        await this.client.collections.create({
          name: passageCollection,
          multiTenancy: this.lib.default.configure.multiTenancy({ enabled: true, autoTenantCreation: false }),
          vectorizers: this.lib.default.configure.vectors.selfProvided(),
          properties: [
            { name: 'file_id', dataType: 'text', tokenization: 'field', indexFilterable: true, indexSearchable: false },
            { name: 'version_id', dataType: 'text', tokenization: 'field', indexFilterable: true, indexSearchable: false },
            { name: 'space_id', dataType: 'text', tokenization: 'field', indexFilterable: true, indexSearchable: false },
            { name: 'passage_index', dataType: 'int' },
            { name: 'text', dataType: 'text' },
          ],
        });
      } catch (error) {
        // Another process created it meanwhile.
        if (!(await this.client.collections.exists(passageCollection))) throw error;
      }
    })().catch((error) => {
      this.collectionReady = undefined;
      throw error;
    });
    return this.collectionReady;
  }

  /** The collection scoped to one ScaiDrive tenant (its Weaviate tenant created on first use). */
  private async forTenant(tenantId: string): Promise<Collection<PassageProperties, typeof passageCollection>> {
    required({ tenantId });
    await this.ensureCollection();
    const collection = this.client.collections.use<typeof passageCollection, PassageProperties>(passageCollection);
    if (!this.knownTenants.has(tenantId)) {
      const existing = await collection.tenants.getByName(tenantId);
      if (!existing) {
        try {
          await collection.tenants.create([{ name: tenantId }]);
        } catch (error) {
          if (!(await collection.tenants.getByName(tenantId))) throw error;
        }
      }
      this.knownTenants.add(tenantId);
    }
    return collection.withTenant(tenantId);
  }

  async upsert(tenantId: string, passages: PassageInput[]): Promise<void> {
    if (passages.length === 0) return;
    const collection = await this.forTenant(tenantId);
    const result = await collection.data.insertMany(passages.map((p) => ({ id: p.id, vectors: p.vector, properties: p.properties })));
    if (result.hasErrors) {
      const first = Object.values(result.errors)[0];
      throw new Error(`Weaviate refused ${Object.keys(result.errors).length} passage(s): ${first?.message ?? 'unknown error'}`);
    }
  }

  /** Removes every passage of a file (all versions), or of one version when given. Returns how many went. */
  async deleteFile(tenantId: string, fileId: string, versionId?: string): Promise<number> {
    required({ fileId });
    const collection = await this.forTenant(tenantId);
    const byFile = collection.filter.byProperty('file_id').equal(fileId);
    const where = versionId ? this.lib.Filters.and(byFile, collection.filter.byProperty('version_id').equal(versionId)) : byFile;
    const result = await collection.data.deleteMany(where);
    return result.successful;
  }

  /** Removes a file's passages of every version but `keepVersionIds` (none: all of them). */
  async deleteFileExcept(tenantId: string, fileId: string, keepVersionIds: string[]): Promise<number> {
    required({ fileId, ...Object.fromEntries(keepVersionIds.map((id, i) => [`keepVersionIds[${i}]`, id])) });
    const collection = await this.forTenant(tenantId);
    const byFile = collection.filter.byProperty('file_id').equal(fileId);
    const where = keepVersionIds.length === 0 ? byFile : this.lib.Filters.and(byFile, ...keepVersionIds.map((id) => collection.filter.byProperty('version_id').notEqual(id)));
    return (await collection.data.deleteMany(where)).successful;
  }

  /**
   * Nearest passages to `vector` within the given spaces (the caller's readable spaces, checked by ScaiDrive),
   * no farther than `maxDistance` (cosine distance) when given.
   */
  async nearVector(tenantId: string, vector: number[], spaceIds: string[], limit: number, maxDistance?: number): Promise<PassageHit[]> {
    if (spaceIds.length === 0) return [];
    const collection = await this.forTenant(tenantId);
    const result = await collection.query.nearVector(vector, {
      limit,
      ...(maxDistance !== undefined ? { distance: maxDistance } : {}),
      filters: collection.filter.byProperty('space_id').containsAny(spaceIds),
      returnMetadata: ['distance'],
    });
    return result.objects.map((o) => ({ id: o.uuid, distance: o.metadata?.distance, properties: o.properties }));
  }

  /** Passages of a file (tests and diagnostics). */
  async passagesOf(tenantId: string, fileId: string): Promise<PassageHit[]> {
    required({ fileId });
    const collection = await this.forTenant(tenantId);
    const result = await collection.query.fetchObjects({ filters: collection.filter.byProperty('file_id').equal(fileId), limit: 10_000 });
    return result.objects.map((o) => ({ id: o.uuid, distance: undefined, properties: o.properties }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
