// Resolves the caller from `Authorization: Bearer …`: a JWT (user, provisioned just in time) or an API key.
import { forbidden, unauthorized } from '../../errors';
import { principalForKey } from '../../services/api-key-delegation.service';
import { authenticateApiKey, isApiKeyToken, provisionUser } from '../../services/identity.service';
import type { Principal } from '../../services/principal';
import type { AppContext } from '../context';
import { enforceRateLimits } from './rate-limit';

export async function authenticate(ctx: AppContext): Promise<Principal> {
  if (ctx.state.principal) return ctx.state.principal;
  const header = ctx.get('authorization');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthorized(header ? 'Authorization header must be "Bearer <token>"' : 'Missing bearer token');
  const token = match[1]!;
  const { db, tokenVerifier } = ctx.deps;
  let principal: Principal;
  if (isApiKeyToken(token)) {
    const keyPrincipal = await authenticateApiKey(db, token);
    ctx.state.log = ctx.state.log.child({ tenant_id: keyPrincipal.tenantId, api_key_id: keyPrincipal.apiKeyId });
    const actAs = ctx.get('x-act-as-user') || undefined;
    principal = await principalForKey(db, keyPrincipal, actAs);
    if (principal.kind === 'user') {
      ctx.state.log = ctx.state.log.child({ user_id: principal.userId });
      // files:read keys may look, never change: every method but GET/HEAD is a write here.
      if (principal.viaApiKey?.readOnly && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        ctx.state.principal = principal;
        throw forbidden('This API key is read-only (files:read)', 'API_KEY_READ_ONLY');
      }
    }
  } else {
    const claims = await tokenVerifier.verify(token);
    const user = await provisionUser(db, claims);
    principal = { kind: 'user', tenantId: user.tenant_id, userId: user.id, roles: user.roles, email: user.email };
    ctx.state.log = ctx.state.log.child({ tenant_id: user.tenant_id, user_id: user.id });
  }
  ctx.state.principal = principal;
  await enforceRateLimits(ctx, principal);
  return principal;
}
