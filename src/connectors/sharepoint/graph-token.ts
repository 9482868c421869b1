// Application tokens for Microsoft Graph: the OAuth 2.0 client-credentials flow against the Microsoft identity
// platform v2 token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`), cached until shortly before expiry.
// The authority is configurable (sovereign clouds, the test fake). Azure's refusals are explained in the error:
// an expired secret (AADSTS7000222) and a wrong one (AADSTS7000215) are the seed's most common support case.
import { SourceAuthError, SourceUnreachableError } from '../source';

export interface ClientCredentials {
  authority: string;
  azureTenantId: string;
  clientId: string;
  clientSecret: string;
  /** e.g. `https://graph.microsoft.com/.default`. */
  scope: string;
}

/** Tokens are renewed this long before they expire, so a request never carries one that dies on the way. */
const renewBeforeMs = 5 * 60_000;
const requestTimeoutMs = 15_000;

/** Azure's error description, shortened to what an admin needs ("AADSTS7000222: The provided client secret keys … are expired."). */
function describeRefusal(body: { error?: string; error_description?: string }): string {
  const description = (body.error_description ?? '').split(/\r?\n/)[0]!.trim();
  if (/AADSTS7000222/.test(description)) return `The Azure client secret has expired: create a new one and PATCH azure_client_secret (${description})`;
  if (/AADSTS7000215/.test(description)) return `Azure rejected the client secret: check azure_client_secret (${description})`;
  if (/AADSTS700016/.test(description)) return `Azure does not know this application in the directory: check azure_client_id and azure_tenant_id (${description})`;
  if (/AADSTS90002/.test(description)) return `Azure does not know this directory: check azure_tenant_id (${description})`;
  return `Azure rejected the credentials: ${body.error ?? 'error'}${description ? ` (${description})` : ''}`;
}

export class GraphTokenSource {
  private cached: { token: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly credentials: ClientCredentials,
    private readonly now: () => number = Date.now,
  ) {}

  /** A valid access token (one request at a time renews it). */
  async token(): Promise<string> {
    if (this.cached && this.now() < this.cached.renewAt) return this.cached.token;
    this.pending ??= this.fetchToken().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Forget the cached token (the resource server refused it: revoked, or the secret was rotated). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const { authority, azureTenantId, clientId, clientSecret, scope } = this.credentials;
    const url = `${authority.replace(/\/+$/, '')}/${encodeURIComponent(azureTenantId)}/oauth2/v2.0/token`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope }),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
    } catch (error) {
      throw new SourceUnreachableError(`The Microsoft identity platform is unreachable at ${new URL(url).host}: ${(error as Error).message}`);
    }
    const body = (await response.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (response.ok && body.access_token) {
      const lifetimeMs = Math.max(60, Number(body.expires_in ?? 3600)) * 1000;
      this.cached = { token: body.access_token, renewAt: this.now() + Math.max(lifetimeMs - renewBeforeMs, lifetimeMs / 2) };
      return body.access_token;
    }
    // 400/401 with an OAuth error: the credentials (or the directory/app ids) are wrong — no retry helps.
    if (response.status === 400 || response.status === 401 || body.error === 'invalid_client' || body.error === 'unauthorized_client') throw new SourceAuthError(describeRefusal(body));
    throw new SourceUnreachableError(`The Microsoft identity platform answered ${response.status}`);
  }
}
