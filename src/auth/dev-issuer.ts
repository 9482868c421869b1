// The development token issuer: a local key pair kept in the data dir, its JWKS served by the API.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export interface DevTokenClaims {
  tenantId: string;
  subject: string;
  email?: string;
  name?: string;
  roles?: string[];
  expiresInSeconds?: number;
}

export interface DevIssuer {
  issuer: string;
  audience: string;
  jwks: { keys: JWK[] };
  sign(claims: DevTokenClaims): Promise<string>;
}

const algorithm = 'ES256';

export class DevIssuerKeyMissing extends Error {
  constructor(readonly file: string) {
    super(`No dev issuer key at ${file}`);
    this.name = 'DevIssuerKeyMissing';
  }
}

/**
 * Loads the key pair from `{dataDir}/dev-issuer-key.json`, so the CLI and the API agree. The API creates it on
 * first use; `create: false` (dev-token) refuses instead, since a token from a fresh key would be accepted by nobody.
 */
export async function loadDevIssuer(dataDir: string, issuer: string, audience: string, options: { create?: boolean } = {}): Promise<DevIssuer> {
  const file = path.join(dataDir, 'dev-issuer-key.json');
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch {
    if (options.create === false) throw new DevIssuerKeyMissing(file);
    const { privateKey } = await generateKeyPair(algorithm, { extractable: true });
    privateJwk = { ...(await exportJWK(privateKey)), kid: `dev-${randomUUID()}`, alg: algorithm, use: 'sig' };
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, JSON.stringify(privateJwk), { mode: 0o600 });
  }
  const { d: _private, ...publicJwk } = privateJwk;
  const signingKey = await importJWK(privateJwk, algorithm);
  return {
    issuer,
    audience,
    jwks: { keys: [publicJwk] },
    async sign(claims) {
      return new SignJWT({ tenant_id: claims.tenantId, email: claims.email, name: claims.name, roles: claims.roles ?? [] })
        .setProtectedHeader({ alg: algorithm, kid: privateJwk.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(claims.subject)
        .setIssuedAt()
        .setExpirationTime(`${claims.expiresInSeconds ?? 12 * 3600}s`)
        .sign(signingKey);
    },
  };
}
