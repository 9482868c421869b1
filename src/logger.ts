// Structured JSON logging (pino); request-scoped children carry request_id, tenant_id and user_id.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'scaidrive', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    formatters: { level: (label) => ({ level: label }) },
    // Tokens and secrets never reach the logs, even when a caller puts them in a logged object.
    redact: { paths: ['authorization', '*.authorization', 'token', '*.token', 'password', '*.password', 'secret', '*.secret'], censor: '[redacted]' },
  });
}
