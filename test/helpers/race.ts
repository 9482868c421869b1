// Race helpers: fire the same request many times at once over connections opened beforehand, so the requests
// reach the server together instead of being serialised by connection set-up.
import { Agent, type Dispatcher } from 'undici';

/** A keep-alive connection pool of `connections` sockets to `baseUrl`, opened before it is returned. */
export async function openPool(baseUrl: string, connections: number): Promise<Dispatcher & { close(): Promise<void> }> {
  const agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  // One request per socket, all in flight together, makes undici open every socket now.
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const response = await fetch(`${baseUrl}/api/v1/health`, { dispatcher: agent } as RequestInit);
      await response.arrayBuffer();
    }),
  );
  return agent;
}

/**
 * Runs `request(i, dispatcher)` `count` times in parallel over a pool of `count` pre-opened keep-alive
 * connections, and returns the results in order. Pass the dispatcher to `fetch` (or `api(..., {dispatcher})`).
 */
export async function burst<T>(baseUrl: string, count: number, request: (index: number, dispatcher: Dispatcher) => Promise<T>): Promise<T[]> {
  const pool = await openPool(baseUrl, count);
  try {
    return await Promise.all(Array.from({ length: count }, (_, index) => request(index, pool)));
  } finally {
    await pool.close();
  }
}

/** Counts how often each status occurs: `{ 200: 1, 404: 19 }`. */
export function statusCounts(responses: { status: number }[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of responses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}
