// Reads a JSON request body with a size cap: oversized → 413, malformed → 422, not JSON → 415.
import getRawBody from 'raw-body';
import { AppError, ValidationError, payloadTooLarge } from '../../errors';
import type { AppContext } from '../context';

/** The request body as text after the size and media-type checks; undefined when there is none. */
export async function readJsonText(ctx: AppContext): Promise<string | undefined> {
  const limit = ctx.deps.config.maxJsonBodyBytes;
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw payloadTooLarge(`Request body of ${declared} bytes exceeds the ${limit}-byte limit for JSON bodies`);
  const hasBody = declared > 0 || ctx.get('transfer-encoding') !== '';
  if (!hasBody) return undefined;
  if (!ctx.is('application/json', '+json')) {
    throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Request body must be application/json');
  }
  // JSON is UTF-8 (RFC 8259); a body declared in another charset would be decoded wrongly, so it is refused.
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(ctx.get('content-type'))?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `Request body must be UTF-8 JSON (charset=${charset} is not supported)`);
  }
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit, encoding: 'utf8', length: declared || undefined });
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') throw payloadTooLarge(`Request body exceeds the ${limit}-byte limit for JSON bodies`);
    throw new AppError(400, 'BAD_REQUEST', 'Request body could not be read');
  }
  return text.trim() === '' ? undefined : text;
}

export function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError([{ loc: ['body'], msg: `Invalid JSON: ${(error as Error).message}`, type: 'value_error' }]);
  }
}
