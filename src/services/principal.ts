// Who is calling: a user (from a JWT) or a tenant service API key.
export type Principal =
  | { kind: 'user'; tenantId: string; userId: string; roles: string[]; email: string | null }
  | { kind: 'api_key'; tenantId: string; apiKeyId: string; scopes: string[] };

export function isTenantAdmin(principal: Principal): boolean {
  if (principal.kind === 'api_key') return principal.scopes.includes('admin');
  return principal.roles.some((role) => role === 'tenant_admin' || role === 'partner_admin' || role === 'platform_admin');
}
