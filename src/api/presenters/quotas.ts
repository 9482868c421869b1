// JSON shape of a quota subject's usage and limit.
import { z } from '../openapi';

export const usageSchema = z
  .object({ level: z.string(), id: z.string(), used_bytes: z.number().int(), limit_bytes: z.number().int().nullable(), calculated_at: z.string().nullable() })
  .openapi('QuotaUsage');
