// Verifies bearer JWTs against the issuer's JWKS (cached, refetched early on an unknown kid) — spec §4.
import { findUnsafeValue } from '../api/input-safety';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config';
import { AppError, unauthorized } from '../errors';
import type { DevIssuer } from './dev-issuer';

export interface TokenClaims {
  subject: string;
  tenantId: string;
  email: string | null;
  name: string | null;
  roles: string[];
}

export interface TokenVerifier {
  issuer: string;
  verify(token: string): Promise<TokenClaims>;
  /** Fetches the JWKS now (doctor uses it); resolves to the number of keys. */
  checkJwks(): Promise<number>;
}

const knownRoles = new Set(['tenant_admin', 'partner_admin', 'platform_admin']);

/** The JWKS is fetched again for an unknown kid at most this often; a request in between waits for that refetch. */
const unknownKidRefetchCooldownMs = 1000;

export function createTokenVerifier(config: Config, devIssuer?: DevIssuer): TokenVerifier {
  const auth = config.auth;
  let issuer: string;
  let keySet: Parameters<typeof jwtVerify>[1];
  let checkJwks: () => Promise<number>;

  if (auth.devIssuer) {
    if (!devIssuer) throw new Error('dev issuer enabled but not loaded');
    issuer = devIssuer.issuer;
    keySet = createLocalJWKSet(devIssuer.jwks);
    checkJwks = async () => devIssuer.jwks.keys.length;
  } else {
    const scaikeyUrl = auth.scaikeyUrl!;
    issuer = auth.issuer!;
    let remote: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
    let jwksUrl: URL | undefined;
    // One discovery shared by the requests that arrive together at start (one key set, one cache).
    const resolveRemote = () => {
      remote ??= discoverJwksUrl(scaikeyUrl).then((url) => {
        jwksUrl = url;
        return createRemoteJWKSet(url, {
          cacheMaxAge: auth.jwksCacheSeconds * 1000,
          cooldownDuration: unknownKidRefetchCooldownMs,
          timeoutDuration: 5000,
        });
      });
      return remote;
    };
    // jose refetches on an unknown kid only once the cool-down since the last fetch has passed, and rejects
    // the token before that. A key rotated right after our fetch would then fail for up to a second: instead
    // we wait the cool-down out and ask again, which makes jose refetch — once, shared by every waiting request.
    let cooldownOver: Promise<void> | undefined;
    const waitOutCooldown = (jwks: ReturnType<typeof createRemoteJWKSet>) => {
      cooldownOver ??= (async () => {
        const deadline = Date.now() + unknownKidRefetchCooldownMs;
        while (jwks.coolingDown && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      })().finally(() => {
        cooldownOver = undefined;
      });
      return cooldownOver;
    };
    keySet = async (header, token) => {
      const jwks = await resolveRemote();
      // Outside the cool-down jose refetches by itself on an unknown kid; only inside it is the answer stale.
      const coolingDown = jwks.coolingDown;
      try {
        return await jwks(header, token);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !coolingDown) throw error;
        await waitOutCooldown(jwks);
        return jwks(header, token);
      }
    };
    checkJwks = async () => {
      await resolveRemote();
      const response = await fetch(jwksUrl!, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`JWKS ${jwksUrl} answered ${response.status}`);
      const body = (await response.json()) as { keys?: unknown[] };
      if (!Array.isArray(body.keys) || body.keys.length === 0) throw new Error(`JWKS ${jwksUrl} has no keys`);
      return body.keys.length;
    };
  }

  return {
    issuer,
    checkJwks,
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keySet, {
          issuer,
          audience: auth.audience,
          algorithms: auth.algorithms,
          clockTolerance: auth.clockSkewSeconds,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (error) {
        throw mapJoseError(error);
      }
      const tenantId = payload.tenant_id;
      if (typeof tenantId !== 'string' || tenantId.length === 0) throw unauthorized('Token has no tenant_id claim');
      // Claims end up in SQL (user lookup, provisioning): a signed token still must not smuggle NUL or bad UTF-16.
      const unsafeClaim = (['sub', 'tenant_id', 'email', 'name'] as const).find((claim) => findUnsafeValue(payload[claim]) !== null);
      if (unsafeClaim) throw unauthorized(`Token claim ${unsafeClaim} contains characters that are not allowed`);
      if (payload.sub!.length > 255 || tenantId.length > 64) throw unauthorized('Token claim sub or tenant_id is too long');
      const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string' && knownRoles.has(r)) : [];
      return {
        subject: payload.sub!,
        tenantId,
        email: typeof payload.email === 'string' ? payload.email : null,
        name: typeof payload.name === 'string' ? payload.name : null,
        roles,
      };
    },
  };
}

function mapJoseError(error: unknown): AppError {
  if (error instanceof joseErrors.JWTExpired) return unauthorized('Token has expired', 'AUTH_TOKEN_EXPIRED');
  if (error instanceof joseErrors.JWKSTimeout) return new AppError(504, 'UPSTREAM_TIMEOUT', 'Identity provider timed out serving its keys');
  if (error instanceof joseErrors.JOSEError) {
    // Claim failures (iss, aud, nbf), bad signatures, algorithms off the allow-list and unknown keys all land here.
    return unauthorized(`Token rejected: ${error.message}`);
  }
  if (error instanceof AppError) return error;
  // Anything else is the JWKS fetch failing at the network level.
  return new AppError(502, 'UPSTREAM_UNAVAILABLE', 'Identity provider unreachable');
}

/** OIDC discovery (`/.well-known/openid-configuration` → `jwks_uri`), falling back to `/.well-known/jwks.json`. */
async function discoverJwksUrl(scaikeyUrl: string): Promise<URL> {
  try {
    const response = await fetch(`${scaikeyUrl}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    if (response.ok) {
      const document = (await response.json()) as { jwks_uri?: unknown };
      if (typeof document.jwks_uri === 'string') return new URL(document.jwks_uri);
    }
  } catch {
    // fall through to the conventional location
  }
  return new URL(`${scaikeyUrl}/.well-known/jwks.json`);
}
