// Who is calling: a user (from a JWT) or a tenant service API key.
export type Principal =
  | {
      kind: 'user';
      tenantId: string;
      userId: string;
      roles: string[];
      email: string | null;
      /** Set when an API key acts for this user (X-Act-As-User); read-only for `files:read` keys. */
      viaApiKey?: { id: string; readOnly: boolean };
    }
  | { kind: 'api_key'; tenantId: string; apiKeyId: string; scopes: string[] };

/** Token roles that administer a tenant (a user row's `roles` keeps the latest token's). */
export const tenantAdminRoles = ['tenant_admin', 'partner_admin', 'platform_admin'] as const;

export function isTenantAdmin(principal: Principal): boolean {
  if (principal.kind === 'api_key') return principal.scopes.includes('admin');
  return principal.roles.some((role) => (tenantAdminRoles as readonly string[]).includes(role));
}

/** The API key behind a request, whether it acts as itself or for a user. */
export function apiKeyIdOf(principal: Principal): string | null {
  if (principal.kind === 'api_key') return principal.apiKeyId;
  return principal.viaApiKey?.id ?? null;
}
