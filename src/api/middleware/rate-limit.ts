// Per-caller and per-tenant request budgets (spec §12): 429 RATE_LIMITED with Retry-After and RateLimit-*
// headers. Runs once per authenticated request; health, metrics, signed downloads and public links are not
// authenticated requests, so they are not counted here.
import { AppError } from '../../errors';
import { rateLimitVerdict } from '../../services/rate-limiter';
import type { Principal } from '../../services/principal';
import type { AppContext } from '../context';

const windowMs = 60_000;

export async function enforceRateLimits(ctx: AppContext, principal: Principal): Promise<void> {
  const { rateLimiter, config } = ctx.deps;
  const limits = config.rateLimits;
  const caller =
    principal.kind === 'user'
      ? { key: `user:${principal.userId}`, limit: limits.userPerMinute }
      : { key: `api-key:${principal.apiKeyId}`, limit: limits.apiKeyPerMinute };
  let verdict;
  try {
    verdict = rateLimitVerdict(await rateLimiter.hit(caller.key, windowMs), caller.limit);
    // The tenant budget is only drawn on by requests the caller's own budget allows.
    if (verdict.allowed) {
      const tenant = rateLimitVerdict(await rateLimiter.hit(`tenant:${principal.tenantId}`, windowMs), limits.tenantPerMinute);
      if (!tenant.allowed || tenant.remaining < verdict.remaining) verdict = tenant;
    }
  } catch (error) {
    // The limiter's store being down must not take the API down with it: serve, and say so in the log.
    ctx.state.log.warn({ err: error }, 'rate limiter unavailable; request not counted');
    return;
  }
  ctx.set('RateLimit-Limit', String(verdict.limit));
  ctx.set('RateLimit-Remaining', String(verdict.remaining));
  ctx.set('RateLimit-Reset', String(verdict.resetSeconds));
  if (!verdict.allowed) {
    throw new AppError(429, 'RATE_LIMITED', `Too many requests: the limit is ${verdict.limit} per minute`, { limit: verdict.limit, reset_seconds: verdict.resetSeconds }, {
      'Retry-After': String(verdict.resetSeconds),
    });
  }
}
