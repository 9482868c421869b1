// A local stand-in for ScaiKey (an OIDC issuer): discovery document + JWKS over HTTP, key rotation, and a
// signer for good and deliberately bad tokens. It speaks the real wire format jose's remote JWKS expects.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK } from 'jose';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

interface SigningKey {
  kid: string;
  privateKey: PrivateKey;
  publicJwk: JWK;
  publicPem: string;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `kid-${randomUUID()}`;
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

export interface TokenOptions {
  tenantId: string;
  subject: string;
  issuer?: string;
  audience?: string;
  expiresIn?: string | number;
  notBefore?: string | number;
  roles?: string[];
  email?: string;
  /** Sign with a key that is not in the published JWKS. */
  foreignKey?: boolean;
}

export class FakeIdentityProvider {
  private server!: http.Server;
  private keys: SigningKey[] = [];
  private foreign!: SigningKey;
  url = '';
  jwksFetches = 0;
  audience = 'scaidrive';

  static async start(): Promise<FakeIdentityProvider> {
    const idp = new FakeIdentityProvider();
    idp.keys = [await newKey()];
    idp.foreign = await newKey();
    idp.server = http.createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ issuer: idp.url, jwks_uri: `${idp.url}/keys` }));
      } else if (req.url === '/keys') {
        idp.jwksFetches += 1;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: idp.keys.map((k) => k.publicJwk) }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => idp.server.listen(0, '127.0.0.1', resolve));
    idp.url = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
    return idp;
  }

  private nextKey: SigningKey | undefined;

  /** Generates the next key ahead of time, so the following `rotate()` is instant (RSA key generation is slow). */
  async prepareRotation(): Promise<void> {
    this.nextKey = await newKey();
  }

  /** Publishes a new signing key and retires the old one, as an identity provider's rotation does. */
  async rotate(): Promise<void> {
    const key = this.nextKey ?? (await newKey());
    this.nextKey = undefined;
    this.keys = [key];
  }

  get currentKey(): SigningKey {
    return this.keys[0]!;
  }

  async token(options: TokenOptions): Promise<string> {
    const key = options.foreignKey ? this.foreign : this.currentKey;
    const jwt = new SignJWT({ tenant_id: options.tenantId, email: options.email ?? `${options.subject}@example.test`, roles: options.roles ?? [] })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(options.issuer ?? this.url)
      .setAudience(options.audience ?? this.audience)
      .setSubject(options.subject)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '1h');
    if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
    return jwt.sign(key.privateKey);
  }

  /** An unsigned token (`alg: none`). */
  unsignedToken(options: TokenOptions): string {
    const now = Math.floor(Date.now() / 1000);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    return `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: this.url, aud: this.audience, sub: options.subject, tenant_id: options.tenantId, iat: now, exp: now + 3600 })}.`;
  }

  /** The classic key-confusion attack: HS256 with the RSA public key (PEM) as the HMAC secret. */
  async hs256WithPublicKey(options: TokenOptions): Promise<string> {
    return new SignJWT({ tenant_id: options.tenantId })
      .setProtectedHeader({ alg: 'HS256', kid: this.currentKey.kid, typ: 'JWT' })
      .setIssuer(this.url)
      .setAudience(this.audience)
      .setSubject(options.subject)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(this.currentKey.publicPem));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
