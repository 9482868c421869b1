// Wakes this API process's long polls (and WebSocket hints) when a change commits anywhere: every commit NOTIFYs
// `scaidrive_changes` with "tenant space" (migration 0010), so replicas fan out through PostgreSQL alone. One
// LISTEN connection per process, opened on first use and re-opened after a loss; waiters also re-check on their
// own every few seconds, so a lost notification only delays, never loses, a wake-up.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger';

export const changesChannel = 'scaidrive_changes';

export interface ChangeNotice {
  tenantId: string;
  spaceId: string;
  /** Grants of the space changed (who can see it), not only its content. */
  permissions: boolean;
}

export class ChangeNotifier {
  private readonly events = new EventEmitter();
  private listener: Promise<pg.Client> | undefined;
  private closed = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  /** Calls `onChange` for each commit in the tenant until the returned function is called. */
  async subscribe(tenantId: string, onChange: (notice: ChangeNotice) => void): Promise<() => void> {
    await this.ensureListening();
    this.events.on(tenantId, onChange);
    return () => this.events.off(tenantId, onChange);
  }

  /**
   * Runs `check` now and again after each commit in the tenant that `interested` accepts (and every `recheckMs`
   * regardless: grants through groups change without a commit in the space), until it answers true (→ true) or
   * `timeoutMs` passes or `signal` aborts (→ false). Subscribing before the first check means no commit between
   * the check and the wait goes unnoticed.
   */
  async waitFor(
    tenantId: string,
    check: () => Promise<boolean>,
    options: { timeoutMs: number; recheckMs?: number; signal?: AbortSignal; interested?: (notice: ChangeNotice) => boolean },
  ): Promise<boolean> {
    let notified = false;
    let wake: (() => void) | undefined;
    const off = await this.subscribe(tenantId, (notice) => {
      if (options.interested && !options.interested(notice)) return;
      notified = true;
      wake?.();
    }).catch((error: unknown) => {
      // Without notifications the periodic re-check still answers, only later.
      this.logger.warn({ err: error }, 'change notifier unavailable; waiting by polling');
      return undefined;
    });
    const onAbort = () => wake?.();
    options.signal?.addEventListener('abort', onAbort);
    const deadline = Date.now() + options.timeoutMs;
    try {
      for (;;) {
        notified = false;
        if (await check()) return true;
        const remaining = deadline - Date.now();
        if (remaining <= 0 || options.signal?.aborted) return false;
        if (notified) continue;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, Math.min(remaining, options.recheckMs ?? 5_000));
        });
        clearTimeout(timer);
        wake = undefined;
      }
    } finally {
      off?.();
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private ensureListening(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error('change notifier closed'));
    this.listener ??= this.connect().catch((error: unknown) => {
      this.listener = undefined;
      throw error;
    });
    return this.listener;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (message) => {
      const [tenantId, spaceId, what] = (message.payload ?? '').split(' ');
      if (tenantId && spaceId) this.events.emit(tenantId, { tenantId, spaceId, permissions: what === 'permissions' });
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'change notifier: notification connection lost');
      this.listener = undefined;
      client.end().catch(() => undefined);
    });
    await client.connect();
    await client.query(`listen ${changesChannel}`);
    return client;
  }

  async close(): Promise<void> {
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    this.events.removeAllListeners();
    if (listener) await (await listener.catch(() => undefined))?.end().catch(() => undefined);
  }
}
