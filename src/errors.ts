// Application errors: one class carrying the HTTP status, a stable code and the human detail (spec §3).
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'AppError';
  }
}

export class ValidationError extends AppError {
  constructor(readonly issues: ValidationIssue[]) {
    super(422, 'VALIDATION_ERROR', issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
  }
}

export const badRequest = (detail: string, code = 'BAD_REQUEST', details?: Record<string, unknown>) => new AppError(400, code, detail, details);
export const unauthorized = (detail: string, code = 'AUTH_TOKEN_INVALID') => new AppError(401, code, detail, undefined, { 'WWW-Authenticate': 'Bearer' });
export const forbidden = (detail: string, code = 'FORBIDDEN') => new AppError(403, code, detail);
export const notFound = (what = 'Resource') => new AppError(404, 'NOT_FOUND', `${what} not found`);
export const conflict = (detail: string, code = 'CONFLICT', details?: Record<string, unknown>) => new AppError(409, code, detail, details);
export const gone = (detail: string, code = 'GONE') => new AppError(410, code, detail);
export const payloadTooLarge = (detail: string) => new AppError(413, 'PAYLOAD_TOO_LARGE', detail);
export const serviceUnavailable = (detail: string, details?: Record<string, unknown>) => new AppError(503, 'SERVICE_UNAVAILABLE', detail, details);

/**
 * An object store that answered with a server error (HTTP 5xx: full, overloaded, failing) is a 503 with Retry-After,
 * never a 500: the request changed nothing we keep (a chunk is recorded only after its object is stored) and can be
 * sent again. Recognised by the store's HTTP status, which the AWS SDK's errors and our lean S3 client's carry as
 * `$metadata.httpStatusCode`. Undefined for anything else.
 */
export function storeUnavailable(error: unknown): AppError | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  if (typeof status !== 'number' || status < 500 || status > 599) return undefined;
  const name = (error as Error).name;
  return new AppError(503, 'SERVICE_UNAVAILABLE', `The object store cannot take this request right now (HTTP ${status}${name && name !== 'Error' ? ` ${name}` : ''}); retry later`, { reason: 'object_store' }, { 'Retry-After': '5' });
}
