// Prometheus metrics (own registry so tests can build several apps in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { heldChunkBytes } from '../services/upload-hash.service';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'scaidrive_process_' });
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'scaidrive_http_request_duration_seconds',
      help: 'HTTP request latency by route template',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    workflowStarts: new Counter({ name: 'scaidrive_workflow_starts_total', help: 'Workflows started by the API', labelNames: ['workflow'] as const, registers: [registry] }),
    workflowFailures: new Counter({ name: 'scaidrive_workflow_failures_total', help: 'Workflows the API saw fail', labelNames: ['workflow'] as const, registers: [registry] }),
    bytesUploaded: new Counter({ name: 'scaidrive_bytes_uploaded_total', help: 'Bytes received from clients', registers: [registry] }),
    bytesDownloaded: new Counter({ name: 'scaidrive_bytes_downloaded_total', help: 'Bytes sent to clients', registers: [registry] }),
    chunksDeduplicated: new Counter({ name: 'scaidrive_chunks_deduplicated_total', help: 'Chunks not written because the store already held them', registers: [registry] }),
    queueDepth: new Gauge({ name: 'scaidrive_queue_depth', help: 'Pending work per queue', labelNames: ['queue'] as const, registers: [registry] }),
    websocketConnections: new Gauge({ name: 'scaidrive_sync_websocket_connections', help: 'Open sync WebSocket connections', registers: [registry] }),
    uploadHashHeldBytes: new Gauge({
      name: 'scaidrive_upload_hash_held_bytes',
      help: 'Bytes of received chunks this process holds in memory to hash them into their upload\'s SHA-256 (at most an eighth of the upload buffer budget)',
      registers: [registry],
      collect() {
        this.set(heldChunkBytes());
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
