// Link sessions: a 1-hour HMAC-signed token (server secret key) recording what a recipient proved for ONE
// link — its password, a verified email address — so later requests need not send the password again.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkSession {
  linkId: string;
  /** The recipient gave the link's password. */
  password: boolean;
  /** An address the recipient proved with an emailed code (require_email links), lower-case. */
  email: string | null;
  /** Unix seconds. */
  expiresAt: number;
}

export const linkSessionTtlSeconds = 60 * 60;
export const linkSessionCookie = 'scaidrive_link_session';
export const linkSessionCookiePath = '/api/v1/public/links';

function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(`link-session:${payload}`).digest('base64url');
}

export function signLinkSession(key: Buffer, session: LinkSession): string {
  const payload = Buffer.from(JSON.stringify([session.linkId, session.password ? 1 : 0, session.email, session.expiresAt])).toString('base64url');
  return `${payload}.${mac(key, payload)}`;
}

/** A new session for `linkId`, keeping what `previous` (a valid session of the same link) already proved. */
export function extendLinkSession(linkId: string, previous: LinkSession | null, proved: { password?: boolean; email?: string }, now = Date.now()): LinkSession {
  return {
    linkId,
    password: Boolean(proved.password || previous?.password),
    email: proved.email ?? previous?.email ?? null,
    expiresAt: Math.floor(now / 1000) + linkSessionTtlSeconds,
  };
}

/** The session in `token` when it is well-signed, unexpired and for `linkId`; null otherwise (never throws). */
export function verifyLinkSession(key: Buffer, token: string | undefined, linkId: string, now = Date.now()): LinkSession | null {
  if (!token || token.length > 4096) return null;
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) return null;
  const expected = Buffer.from(mac(key, payload));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
  try {
    const [sessionLinkId, password, email, expiresAt] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown[];
    if (sessionLinkId !== linkId || typeof expiresAt !== 'number' || expiresAt * 1000 <= now) return null;
    return { linkId, password: password === 1, email: typeof email === 'string' ? email : null, expiresAt };
  } catch {
    return null;
  }
}
