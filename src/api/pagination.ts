// Keyset pagination: `?limit=&cursor=`, cursors are opaque (base64url of the last sort key).
import { badRequest } from '../errors';
import { z } from './openapi';

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(512).optional(),
});

export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, isValid: (value: unknown) => value is T): T | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isValid(value)) return value;
  } catch {
    // fall through
  }
  throw badRequest('Malformed cursor', 'INVALID_CURSOR');
}

export const isString = (value: unknown): value is string => typeof value === 'string';

/** Takes `limit + 1` rows, returns the page and the cursor of its last row when there are more. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => unknown) {
  const items = rows.slice(0, limit);
  const next_cursor = rows.length > limit && items.length > 0 ? encodeCursor(keyOf(items[items.length - 1]!)) : null;
  return { items, next_cursor };
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });
