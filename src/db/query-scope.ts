// Ties database work to the request that caused it, so a client that goes away cancels its queries instead
// of leaving them running (a recursive query over a huge tree must not outlive the request that asked for it).
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';

/** The PostgreSQL backends serving one request right now, and whether that request was abandoned. */
export class QueryScope {
  readonly backends = new Set<number>();
  abandoned = false;
}

const current = new AsyncLocalStorage<QueryScope>();

export function runInQueryScope<T>(scope: QueryScope, work: () => Promise<T>): Promise<T> {
  return current.run(scope, work);
}

export class ClientGoneError extends Error {
  constructor() {
    super('The client closed the connection; its database work was cancelled');
    this.name = 'ClientGoneError';
  }
}

/**
 * Registers a checked-out pool client with the current scope until it is released. A scope that was
 * abandoned gets no new connections.
 */
export function trackCheckout(client: pg.PoolClient): void {
  const scope = current.getStore();
  if (!scope) return;
  if (scope.abandoned) {
    client.release();
    throw new ClientGoneError();
  }
  const pid = (client as unknown as { processID: number }).processID;
  scope.backends.add(pid);
  const release = client.release.bind(client);
  client.release = (error?: Error | boolean) => {
    scope.backends.delete(pid);
    client.release = release;
    return release(error);
  };
}

/**
 * Cancels what the scope's backends are running (`pg_cancel_backend`) over a connection of its own, so it
 * works even when the main pool is exhausted. A backend released meanwhile is skipped.
 */
export async function abandonScope(scope: QueryScope, cancelPool: pg.Pool): Promise<void> {
  scope.abandoned = true;
  const pids = [...scope.backends];
  if (pids.length === 0) return;
  await cancelPool
    .query('select pg_cancel_backend(pid) from unnest($1::int[]) as pid', [pids.filter((pid) => scope.backends.has(pid))])
    .catch(() => undefined);
}
