// A Graph client middleware (first in the chain) that honours throttling: 429, 503 and 504 answers are retried
// after their `Retry-After` (or a growing delay), for as long as the wait budget lasts, with a callback on every
// wait so a Temporal activity keeps heartbeating while it waits. A 401 is retried once with a fresh token.
// The library's own RetryHandler sleeps silently and gives up after three tries, which would fail a long
// import of a busy tenant; this one waits as long as Microsoft asks within the budget.
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';

export interface ThrottleOptions {
  /** Total time one request may spend waiting on throttling before its last answer is returned. */
  budgetMs: number;
  /** Called before each wait and every 10 s of a long one (heartbeat, log), with the time still to wait. */
  onWait?: (waitMs: number, status: number) => void;
  /** Called on a 401 before the one retry: the token source forgets its token. */
  onUnauthorized?: () => void;
  sleep?: (ms: number) => Promise<void>;
}

const retriedStatuses = new Set([429, 503, 504]);
const waitSliceMs = 10_000;

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  // An HTTP date has a weekday and a month name; a bare number that is not valid seconds is no date either.
  if (!/[a-z]/i.test(header)) return undefined;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

function dropAuthorization(context: Context): void {
  if (typeof context.request !== 'string') context.request.headers.delete('authorization');
  const headers = context.options?.headers;
  if (headers instanceof Headers) headers.delete('authorization');
  else if (Array.isArray(headers)) context.options!.headers = headers.filter(([key]) => key?.toLowerCase() !== 'authorization');
  else if (headers) for (const key of Object.keys(headers)) if (key.toLowerCase() === 'authorization') delete (headers as Record<string, string>)[key];
}

export class ThrottleHandler implements Middleware {
  private next: Middleware | undefined;

  constructor(private readonly options: ThrottleOptions) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let waited = 0;
    let attempt = 0;
    let reauthenticated = false;
    for (;;) {
      // The authentication handler appends its header on every pass: a retry must not send two tokens.
      if (attempt > 0 || reauthenticated) dropAuthorization(context);
      await this.next!.execute(context);
      const response = context.response;
      if (!response) return;
      if (response.status === 401 && !reauthenticated && this.options.onUnauthorized) {
        reauthenticated = true;
        this.options.onUnauthorized();
        continue;
      }
      if (!retriedStatuses.has(response.status)) return;
      attempt += 1;
      const wait = retryAfterMs(response.headers.get('retry-after')) ?? Math.min(30_000, 1000 * 2 ** (attempt - 1));
      if (waited + wait > this.options.budgetMs) return;
      // The body of the refused answer is not read: release it before waiting.
      await response.body?.cancel().catch(() => undefined);
      // In slices, so a caller heartbeating from onWait stays alive through a long Retry-After.
      for (let left = wait; left > 0; left -= waitSliceMs) {
        this.options.onWait?.(left, response.status);
        await sleep(Math.min(left, waitSliceMs));
      }
      waited += wait;
    }
  }
}
