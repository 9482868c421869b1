// Starts a local single-node Weaviate (`weaviate-server`, built by scripts/setup.sh) for `scaidrive dev`, the
// test harness and benchmarks: persistence under its data dir, no vectorizer module (ScaiDrive supplies the
// vectors), anonymous access on loopback only. Every port it opens is derived from the HTTP port, so several
// instances (dev, tests, a benchmark) run side by side.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { isPortOpen } from '../temporal/dev-server';
import { watchProcess } from '../process-watch';

export interface WeaviateServerOptions {
  binary: string;
  dataDir: string;
  host: string;
  /** HTTP port; gRPC is `grpcPort`, and the cluster's internal ports are port+2 … port+5. */
  port: number;
  grpcPort: number;
  logFile?: string;
  /** How long to wait for readiness; 90 s by default (a cold start builds its schema store). */
  timeoutMs?: number;
}

/** The internal ports of a node (gossip, data, Raft, Raft RPC), next to its HTTP port. */
export function weaviateClusterPorts(port: number) {
  return { gossip: port + 2, data: port + 3, raft: port + 4, raftRpc: port + 5 };
}

export async function startWeaviate(options: WeaviateServerOptions): Promise<ChildProcess> {
  const { binary, dataDir, host, port, grpcPort } = options;
  const timeoutMs = options.timeoutMs ?? 90_000;
  if (!existsSync(binary)) throw new Error(`weaviate-server not found at ${binary}; run scripts/setup.sh`);
  const cluster = weaviateClusterPorts(port);
  for (const [name, p] of Object.entries({ http: port, grpc: grpcPort, ...cluster })) {
    if (await isPortOpen(host, p)) throw new Error(`Cannot start Weaviate: ${host}:${p} (${name}) is already in use`);
  }
  await mkdir(dataDir, { recursive: true });
  const logFile = options.logFile ?? path.join(dataDir, 'weaviate.log');
  const child = spawn(binary, ['--scheme', 'http', '--host', host, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED: 'true',
      PERSISTENCE_DATA_PATH: dataDir,
      DEFAULT_VECTORIZER_MODULE: 'none',
      ENABLE_MODULES: '',
      DISABLE_TELEMETRY: 'true',
      CLUSTER_HOSTNAME: 'node1',
      CLUSTER_IN_LOCALHOST: 'true',
      CLUSTER_GOSSIP_BIND_PORT: String(cluster.gossip),
      CLUSTER_DATA_BIND_PORT: String(cluster.data),
      RAFT_PORT: String(cluster.raft),
      RAFT_INTERNAL_RPC_PORT: String(cluster.raftRpc),
      RAFT_BOOTSTRAP_EXPECT: '1',
      RAFT_JOIN: `node1:${cluster.raft}`,
      GRPC_PORT: String(grpcPort),
      LOG_LEVEL: 'warning',
      QUERY_DEFAULTS_LIMIT: '25',
    },
  });
  const watched = watchProcess(child, logFile);

  const readyUrl = `http://${host}:${port}/v1/.well-known/ready`;
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer';
  while (Date.now() < deadline) {
    if (watched.exited()) {
      const how = watched.spawnError?.message ?? (child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode);
      throw new Error(`Weaviate exited (${how}) before it was ready on ${host}:${port}; log: ${logFile}\n${watched.lastLines()}`);
    }
    try {
      const response = await fetch(readyUrl, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200 && (await isPortOpen(host, grpcPort))) return child;
      lastProblem = `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGTERM');
  throw new Error(`Weaviate was not ready at ${readyUrl} within ${timeoutMs} ms (${lastProblem}); see ${logFile}`);
}
