// Reads and validates every SCAIDRIVE_* environment variable once; start-up stops on the first bad one.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { isAddressRange } from './services/address-ranges';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const boolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const port = z.coerce.number().int().min(0).max(65535);
/** A URL with one of the given schemes (`node:x` or `file:/` parse as URLs too, but are never what is meant). */
const url = (...schemes: string[]) =>
  z
    .string()
    .url()
    .refine((value) => URL.canParse(value) && schemes.includes(new URL(value).protocol.replace(/:$/, '')), { error: `expected a ${schemes.join(' or ')} URL` });
const httpUrl = url('http', 'https');
const csv = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** Every variable ScaiDrive knows, with its parser and default. Anything else prefixed SCAIDRIVE_ is an error. */
const variables = {
  SCAIDRIVE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  SCAIDRIVE_HOST: z.string().min(1).default('127.0.0.1'),
  SCAIDRIVE_PORT: port.default(8000),
  SCAIDRIVE_PUBLIC_URL: httpUrl.optional(),
  SCAIDRIVE_DATA_DIR: z.string().min(1).default('.scaidrive'),
  SCAIDRIVE_TOOLS_DIR: z.string().min(1).default(path.join(os.homedir(), '.cache', 'scaidrive', 'bin')),
  SCAIDRIVE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  SCAIDRIVE_DATABASE_URL: url('postgres', 'postgresql').default('postgres://postgres@127.0.0.1:5432/scaidrive'),
  SCAIDRIVE_DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
  SCAIDRIVE_DATABASE_STATEMENT_TIMEOUT_SECONDS: z.coerce.number().min(0).max(3600).default(30),
  SCAIDRIVE_WORKER_STATEMENT_TIMEOUT_SECONDS: z.coerce.number().min(0).max(86400).default(600),
  SCAIDRIVE_TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').default('127.0.0.1:7233'),
  SCAIDRIVE_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits, -').default('scaidrive'),
  SCAIDRIVE_TEMPORAL_UI_URL: httpUrl.default('http://127.0.0.1:8233'),
  SCAIDRIVE_SCAIKEY_URL: httpUrl.optional(),
  SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET: z.string().min(16).optional(),
  SCAIDRIVE_JWT_ISSUER: z.string().min(1).optional(),
  SCAIDRIVE_JWT_AUDIENCE: z.string().min(1).default('scaidrive'),
  SCAIDRIVE_JWT_ALGORITHMS: csv
    .pipe(z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1))
    .default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  SCAIDRIVE_JWT_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  SCAIDRIVE_JWKS_CACHE_SECONDS: z.coerce.number().int().min(1).max(86400).default(300),
  SCAIDRIVE_SECRET_KEY: z.string().min(32).optional(),
  SCAIDRIVE_STORAGE_PATH: z.string().min(1).optional(),
  SCAIDRIVE_S3_ENDPOINT: httpUrl.optional(),
  SCAIDRIVE_S3_REGION: z.string().min(1).default('us-east-1'),
  SCAIDRIVE_S3_BUCKET: z.string().min(3).optional(),
  SCAIDRIVE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  SCAIDRIVE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  SCAIDRIVE_S3_FORCE_PATH_STYLE: boolean.default(true),
  /** Where clients reach the store for presigned URLs (direct chunk uploads), when not at SCAIDRIVE_S3_ENDPOINT. */
  SCAIDRIVE_S3_PUBLIC_ENDPOINT: httpUrl.optional(),
  SCAIDRIVE_UPLOAD_DIRECT_URL_TTL_SECONDS: z.coerce.number().int().min(1).max(3600).default(900),
  SCAIDRIVE_WEAVIATE_URL: httpUrl.optional(),
  SCAIDRIVE_WEAVIATE_GRPC_PORT: z.coerce.number().int().min(1).max(65535).default(50051),
  SCAIDRIVE_EMBEDDING_PROVIDER: z.enum(['local', 'openai']).default('local'),
  SCAIDRIVE_EMBEDDING_URL: httpUrl.optional(),
  SCAIDRIVE_EMBEDDING_API_KEY: z.string().min(1).optional(),
  SCAIDRIVE_EMBEDDING_MODEL: z.string().min(1).max(200).optional(),
  SCAIDRIVE_EMBEDDING_DIMENSIONS: z.coerce.number().int().min(2).max(8192).optional(),
  SCAIDRIVE_EMBEDDING_FALLBACK_URL: httpUrl.optional(),
  SCAIDRIVE_EMBEDDING_FALLBACK_API_KEY: z.string().min(1).optional(),
  SCAIDRIVE_SEARCH_MIN_SIMILARITY: z.coerce.number().min(0).max(1).default(0.2),
  SCAIDRIVE_SEARCH_DISPATCHER: boolean.default(true),
  SCAIDRIVE_SEARCH_LOW_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(4),
  SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN: z.coerce.number().int().min(1).max(1_000_000).default(10),
  SCAIDRIVE_SYNC_WS_MAX_PER_TENANT: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  // Microsoft's endpoints for SharePoint connectors; other values for sovereign clouds (and the test fake).
  SCAIDRIVE_GRAPH_AUTHORITY_URL: url('https').default('https://login.microsoftonline.com'),
  SCAIDRIVE_GRAPH_URL: url('https').default('https://graph.microsoft.com'),
  SCAIDRIVE_REDIS_URL: url('redis', 'rediss').optional(),
  SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE: z.coerce.number().int().min(1).default(1000),
  SCAIDRIVE_RATE_LIMIT_API_KEY_PER_MINUTE: z.coerce.number().int().min(1).default(1000),
  SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE: z.coerce.number().int().min(1).default(10000),
  SCAIDRIVE_MAX_JSON_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  SCAIDRIVE_TRUSTED_PROXIES: csv
    .pipe(z.array(z.string().refine(isAddressRange, { error: (issue) => `not an IP address or CIDR range: "${String(issue.input)}"` })))
    .default([]),
  SCAIDRIVE_WORKFLOW_WAIT_SECONDS: z.coerce.number().min(0).max(300).default(20),
  SCAIDRIVE_UPLOAD_BUFFER_BUDGET_BYTES: z.coerce.number().int().min(1024 * 1024).default(128 * 1024 * 1024),
  SCAIDRIVE_UPLOAD_MAX_CONCURRENT_CHUNKS_PER_USER: z.coerce.number().int().min(1).max(10000).default(16),
  SCAIDRIVE_UPLOAD_BODY_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(3600).default(30),
  SCAIDRIVE_UPLOAD_MAX_OPEN_SESSIONS_PER_USER: z.coerce.number().int().min(1).max(100000).default(100),
  // Half the cores (at least one): password hashing never takes every core from the event loop and file I/O.
  SCAIDRIVE_PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(Math.max(1, Math.floor(os.availableParallelism() / 2))),
  SCAIDRIVE_PASSWORD_HASH_QUEUE: z.coerce.number().int().min(0).max(10000).default(32),
} as const;

export type ConfigVariable = keyof typeof variables;

const schema = z.object(variables).strict();

export interface Config {
  env: 'development' | 'test' | 'production';
  host: string;
  port: number;
  publicUrl: string;
  dataDir: string;
  /** Where `scripts/setup.sh` builds temporal and minio (outside the clone, shared by runs). */
  toolsDir: string;
  logLevel: string;
  /** Statement timeouts bound every query: the API's short, the workers' (bulk purges, recalculation) longer; 0 = none. */
  database: { url: string; poolSize: number; statementTimeoutSeconds: number; workerStatementTimeoutSeconds: number };
  temporal: { address: string; namespace: string; taskQueuePrefix: string; uiUrl: string };
  auth: {
    scaikeyUrl?: string;
    issuer?: string;
    audience: string;
    algorithms: string[];
    clockSkewSeconds: number;
    jwksCacheSeconds: number;
    webhookSecret?: string;
    /** The dev issuer signs and verifies tokens locally; never on when a real issuer is configured. */
    devIssuer: boolean;
  };
  secretKey?: string;
  storage:
    | { driver: 'filesystem'; path: string }
    | { driver: 's3'; endpoint?: string; publicEndpoint?: string; region: string; bucket: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean };
  weaviateUrl?: string;
  /** Weaviate's gRPC port (weaviate-client v3 queries and writes over gRPC), on the URL's host. */
  weaviateGrpcPort: number;
  redisUrl?: string;
  /** Who turns passages into vectors: the local lexical provider, or an OpenAI-compatible endpoint (+ a failover). */
  embedding:
    | { provider: 'local'; dimensions: number }
    | { provider: 'openai'; url: string; apiKey?: string; model: string; dimensions: number; fallback?: { url: string; apiKey?: string } };
  /** Semantic matches below this cosine similarity are not results (every vector has a nearest neighbour). */
  searchMinSimilarity: number;
  /** Whether a worker process working the search-high queue also dispatches the vectorization queue. */
  searchDispatcher: boolean;
  /** Vectorizations of the low-priority queue (backfills, connector imports, re-index) one worker runs at once. */
  searchLowConcurrency: number;
  /** Sync WebSocket connections one API process accepts per token and per tenant (beyond: close 4429). */
  syncSockets: { maxPerToken: number; maxPerTenant: number };
  /** The Microsoft identity platform and Graph, for SharePoint connectors. */
  graph: { authority: string; graphUrl: string };
  /** Requests per minute (spec §12; Box's published per-user limit is 1000/min). */
  rateLimits: { userPerMinute: number; apiKeyPerMinute: number; tenantPerMinute: number };
  maxJsonBodyBytes: number;
  trustedProxies: string[];
  workflowWaitSeconds: number;
  /** Per-process upload limits: buffered chunk bytes, concurrent chunk PUTs per user, stalled bodies, open sessions per user. */
  uploads: { bufferBudgetBytes: number; maxConcurrentChunksPerUser: number; bodyTimeoutSeconds: number; maxOpenSessionsPerUser: number; directUrlTtlSeconds: number };
  /** Link-password hashes running at once per process, and how many may wait (the rest get 503). */
  passwordHashing: { concurrency: number; maxQueued: number };
}

export interface LoadOptions {
  /**
   * false for commands that only talk to the database (migrate, create-tenant): production's demands on
   * the identity issuer and the server secret do not apply to them. Default true.
   */
  serverSecrets?: boolean;
}

/** Parses the environment. Throws ConfigError naming the first offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<ConfigVariable, string>> = {}, options: LoadOptions = {}): Config {
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...env, ...overrides })) {
    if (key.startsWith('SCAIDRIVE_') && value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`Unknown configuration variable ${issue.keys.join(', ')} (not a SCAIDRIVE_* setting this version knows)`);
    }
    const name = String(issue.path[0]);
    throw new ConfigError(`Invalid value for ${name}: ${issue.message}`);
  }
  const v = parsed.data;
  const dataDir = path.resolve(v.SCAIDRIVE_DATA_DIR);
  const devIssuer = v.SCAIDRIVE_ENV !== 'production' && !v.SCAIDRIVE_SCAIKEY_URL && !v.SCAIDRIVE_JWT_ISSUER;
  const serverSecrets = options.serverSecrets ?? true;
  if (serverSecrets && v.SCAIDRIVE_ENV === 'production' && !v.SCAIDRIVE_SCAIKEY_URL) {
    throw new ConfigError('SCAIDRIVE_SCAIKEY_URL is required in production (no identity issuer configured; the dev issuer only runs with SCAIDRIVE_ENV=development)');
  }
  if (serverSecrets && v.SCAIDRIVE_ENV === 'production' && !v.SCAIDRIVE_SECRET_KEY) {
    throw new ConfigError('SCAIDRIVE_SECRET_KEY is required in production (signs download URLs, encrypts connector secrets)');
  }
  if (v.SCAIDRIVE_EMBEDDING_PROVIDER === 'openai') {
    const needed = (['SCAIDRIVE_EMBEDDING_URL', 'SCAIDRIVE_EMBEDDING_MODEL', 'SCAIDRIVE_EMBEDDING_DIMENSIONS'] as const).find((k) => v[k] === undefined);
    if (needed) throw new ConfigError(`Invalid value for ${needed}: required when SCAIDRIVE_EMBEDDING_PROVIDER=openai`);
  }
  if (v.SCAIDRIVE_EMBEDDING_FALLBACK_URL && v.SCAIDRIVE_EMBEDDING_PROVIDER !== 'openai') {
    throw new ConfigError('Invalid value for SCAIDRIVE_EMBEDDING_FALLBACK_URL: a failover endpoint needs SCAIDRIVE_EMBEDDING_PROVIDER=openai');
  }
  if (v.SCAIDRIVE_JWT_ISSUER && !v.SCAIDRIVE_SCAIKEY_URL) {
    throw new ConfigError('SCAIDRIVE_JWT_ISSUER needs SCAIDRIVE_SCAIKEY_URL (where the JWKS is found)');
  }
  const s3Keys = ['SCAIDRIVE_S3_ENDPOINT', 'SCAIDRIVE_S3_PUBLIC_ENDPOINT', 'SCAIDRIVE_S3_ACCESS_KEY_ID', 'SCAIDRIVE_S3_SECRET_ACCESS_KEY'] as const;
  if (!v.SCAIDRIVE_S3_BUCKET) {
    const stray = s3Keys.find((k) => v[k] !== undefined);
    if (stray) throw new ConfigError(`Invalid value for SCAIDRIVE_S3_BUCKET: required when ${stray} is set`);
  }
  const storage: Config['storage'] = v.SCAIDRIVE_S3_BUCKET
    ? {
        driver: 's3',
        endpoint: v.SCAIDRIVE_S3_ENDPOINT,
        publicEndpoint: v.SCAIDRIVE_S3_PUBLIC_ENDPOINT,
        region: v.SCAIDRIVE_S3_REGION,
        bucket: v.SCAIDRIVE_S3_BUCKET,
        accessKeyId: v.SCAIDRIVE_S3_ACCESS_KEY_ID,
        secretAccessKey: v.SCAIDRIVE_S3_SECRET_ACCESS_KEY,
        forcePathStyle: v.SCAIDRIVE_S3_FORCE_PATH_STYLE,
      }
    : { driver: 'filesystem', path: path.resolve(v.SCAIDRIVE_STORAGE_PATH ?? path.join(dataDir, 'blobs')) };
  return {
    env: v.SCAIDRIVE_ENV,
    host: v.SCAIDRIVE_HOST,
    port: v.SCAIDRIVE_PORT,
    publicUrl: (v.SCAIDRIVE_PUBLIC_URL ?? `http://${v.SCAIDRIVE_HOST}:${v.SCAIDRIVE_PORT}`).replace(/\/$/, ''),
    dataDir,
    toolsDir: path.resolve(v.SCAIDRIVE_TOOLS_DIR),
    logLevel: v.SCAIDRIVE_LOG_LEVEL,
    database: {
      url: v.SCAIDRIVE_DATABASE_URL,
      poolSize: v.SCAIDRIVE_DATABASE_POOL_SIZE,
      statementTimeoutSeconds: v.SCAIDRIVE_DATABASE_STATEMENT_TIMEOUT_SECONDS,
      workerStatementTimeoutSeconds: v.SCAIDRIVE_WORKER_STATEMENT_TIMEOUT_SECONDS,
    },
    temporal: {
      address: v.SCAIDRIVE_TEMPORAL_ADDRESS,
      namespace: v.SCAIDRIVE_TEMPORAL_NAMESPACE,
      taskQueuePrefix: v.SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX,
      uiUrl: v.SCAIDRIVE_TEMPORAL_UI_URL.replace(/\/$/, ''),
    },
    auth: {
      scaikeyUrl: v.SCAIDRIVE_SCAIKEY_URL?.replace(/\/$/, ''),
      issuer: v.SCAIDRIVE_JWT_ISSUER ?? v.SCAIDRIVE_SCAIKEY_URL?.replace(/\/$/, ''),
      audience: v.SCAIDRIVE_JWT_AUDIENCE,
      algorithms: v.SCAIDRIVE_JWT_ALGORITHMS,
      clockSkewSeconds: v.SCAIDRIVE_JWT_CLOCK_SKEW_SECONDS,
      jwksCacheSeconds: v.SCAIDRIVE_JWKS_CACHE_SECONDS,
      webhookSecret: v.SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET,
      devIssuer,
    },
    secretKey: v.SCAIDRIVE_SECRET_KEY,
    storage,
    weaviateUrl: v.SCAIDRIVE_WEAVIATE_URL?.replace(/\/$/, ''),
    weaviateGrpcPort: v.SCAIDRIVE_WEAVIATE_GRPC_PORT,
    redisUrl: v.SCAIDRIVE_REDIS_URL,
    embedding:
      v.SCAIDRIVE_EMBEDDING_PROVIDER === 'openai'
        ? {
            provider: 'openai',
            url: v.SCAIDRIVE_EMBEDDING_URL!,
            apiKey: v.SCAIDRIVE_EMBEDDING_API_KEY,
            model: v.SCAIDRIVE_EMBEDDING_MODEL!,
            dimensions: v.SCAIDRIVE_EMBEDDING_DIMENSIONS!,
            fallback: v.SCAIDRIVE_EMBEDDING_FALLBACK_URL ? { url: v.SCAIDRIVE_EMBEDDING_FALLBACK_URL, apiKey: v.SCAIDRIVE_EMBEDDING_FALLBACK_API_KEY ?? v.SCAIDRIVE_EMBEDDING_API_KEY } : undefined,
          }
        : { provider: 'local', dimensions: v.SCAIDRIVE_EMBEDDING_DIMENSIONS ?? 256 },
    searchMinSimilarity: v.SCAIDRIVE_SEARCH_MIN_SIMILARITY,
    searchDispatcher: v.SCAIDRIVE_SEARCH_DISPATCHER,
    searchLowConcurrency: v.SCAIDRIVE_SEARCH_LOW_CONCURRENCY,
    syncSockets: { maxPerToken: v.SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN, maxPerTenant: v.SCAIDRIVE_SYNC_WS_MAX_PER_TENANT },
    graph: { authority: v.SCAIDRIVE_GRAPH_AUTHORITY_URL.replace(/\/$/, ''), graphUrl: v.SCAIDRIVE_GRAPH_URL.replace(/\/$/, '') },
    rateLimits: {
      userPerMinute: v.SCAIDRIVE_RATE_LIMIT_USER_PER_MINUTE,
      apiKeyPerMinute: v.SCAIDRIVE_RATE_LIMIT_API_KEY_PER_MINUTE,
      tenantPerMinute: v.SCAIDRIVE_RATE_LIMIT_TENANT_PER_MINUTE,
    },
    maxJsonBodyBytes: v.SCAIDRIVE_MAX_JSON_BODY_BYTES,
    trustedProxies: v.SCAIDRIVE_TRUSTED_PROXIES,
    workflowWaitSeconds: v.SCAIDRIVE_WORKFLOW_WAIT_SECONDS,
    uploads: {
      bufferBudgetBytes: v.SCAIDRIVE_UPLOAD_BUFFER_BUDGET_BYTES,
      maxConcurrentChunksPerUser: v.SCAIDRIVE_UPLOAD_MAX_CONCURRENT_CHUNKS_PER_USER,
      bodyTimeoutSeconds: v.SCAIDRIVE_UPLOAD_BODY_TIMEOUT_SECONDS,
      maxOpenSessionsPerUser: v.SCAIDRIVE_UPLOAD_MAX_OPEN_SESSIONS_PER_USER,
      directUrlTtlSeconds: v.SCAIDRIVE_UPLOAD_DIRECT_URL_TTL_SECONDS,
    },
    passwordHashing: { concurrency: v.SCAIDRIVE_PASSWORD_HASH_CONCURRENCY, maxQueued: v.SCAIDRIVE_PASSWORD_HASH_QUEUE },
  };
}

/** Names and defaults of every variable, for the README table and the docker-compose test. */
export const configVariableNames = Object.keys(variables) as ConfigVariable[];
