// External links (spec §8). Owner side: create, list, enable/disable, revoke (audited). Recipient side: the
// checks every request passes in seed 003's order — unknown token 404 → revoked/disabled/expired/trashed 410 →
// address or email not allowed 403 → password missing/wrong 401 → cap reached 429 — and email verification.
//
// Email verification (require_email links): the recipient asks for a code (POST …/verify-email {email}); when
// the address or its @domain is on the link's list, a 6-digit code (stored only as an HMAC, 10 minutes, 5
// attempts) goes to mail_outbox. The answer is 202 either way, so the endpoint never reveals who is allowed.
// POST …/verify-email/confirm {email, code} turns a right code into a link session carrying that address.
import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Link, Node, Version } from '../db/database';
import { AppError, forbidden, gone, notFound } from '../errors';
import { newId } from '../ids';
import { accessNode } from './access.service';
import { addressMatcher } from './address-ranges';
import { recordAudit } from './audit.service';
import type { HashingGate } from './hashing-gate';
import { emailConfirmLimit, emailMailLimit, emailRequestLimit, linkLimitExhausted, linkRateLimited, passwordCheckLimit, releaseLinkSlot, reserveLinkSlot, secondsLeftInWindow, wholeLink } from './link-limits';
import { hashLinkPassword, passwordFailureLimit, passwordRetryAfterSeconds, releasePasswordAttempt, reservePasswordAttempt, verifyLinkPassword } from './link-password';
import type { LinkSession } from './link-session';
import type { Principal } from './principal';
import type { Clock } from './clock';
import { userIdOf } from './tree.service';
import { loadVersion } from './versions.service';

/** What the password paths need: the database, the process's bound on concurrent password hashing, the clock. */
export interface LinkServices {
  db: Db;
  passwordHashing: HashingGate;
  clock: Clock;
}

// ---------------------------------------------------------------------------------------------- owner side

export interface NewLink {
  password?: string | null;
  expiresAt?: Date | null;
  /** Addresses or CIDR ranges, already validated. */
  allowedIps?: string[];
  /** Lower-case addresses or `@domain` entries. */
  requireEmail?: string[];
  maxDownloads?: number | null;
  maxViews?: number | null;
}

/** Only this digest of a link's token is stored; the token itself is shown once, at creation. */
export const linkTokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** What the audit trail keeps about a link: its settings, never its token or password. */
function auditDetails(link: Link): Record<string, unknown> {
  return {
    node_id: link.node_id,
    has_password: link.password_hash !== null,
    expires_at: link.expires_at?.toISOString() ?? null,
    allowed_ips: link.allowed_ips,
    require_email: link.require_email,
    max_downloads: link.max_downloads,
    max_views: link.max_views,
  };
}

export async function createLink({ db, passwordHashing }: LinkServices, principal: Principal, target: { id: string; kind: Node['kind'] }, input: NewLink): Promise<{ link: Link; token: string }> {
  const access = await accessNode(db, principal, target.id, 'manage', { kind: target.kind });
  const token = randomBytes(32).toString('base64url');
  const passwordHash = input.password ? await hashLinkPassword(passwordHashing, access.node.tenant_id, input.password) : null;
  return db.transaction().execute(async (trx) => {
    const link = await trx
      .insertInto('links')
      .values({
        id: newId('link'),
        tenant_id: access.node.tenant_id,
        node_id: access.node.id,
        token_hash: linkTokenHash(token),
        password_hash: passwordHash,
        expires_at: input.expiresAt ?? null,
        allowed_ips: input.allowedIps ?? [],
        require_email: input.requireEmail ?? [],
        max_downloads: input.maxDownloads ?? null,
        max_views: input.maxViews ?? null,
        revoked_at: null,
        created_by: userIdOf(principal),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordAudit(trx, { tenantId: link.tenant_id, actorId: userIdOf(principal), action: 'link.created', targetType: 'link', targetId: link.id, details: auditDetails(link) });
    return { link, token };
  });
}

/** A node's links, newest first (revoked ones included: they are its history). */
/** A node's links, newest first, for a caller who may manage links on it. */
export async function listLinks(db: Db, principal: Principal, target: { id: string; kind: Node['kind'] }, limit: number, beforeId?: string): Promise<Link[]> {
  const { node } = await accessNode(db, principal, target.id, 'manage', { kind: target.kind });
  let query = db.selectFrom('links').selectAll().where('node_id', '=', node.id).orderBy('id', 'desc').limit(limit + 1);
  if (beforeId) query = query.where('id', '<', beforeId);
  return query.execute();
}

/** A link the caller may manage (manage on its node); anything else — other tenant, no access, reader — is 404. */
export async function loadManagedLink(db: Db, principal: Principal, linkId: string): Promise<Link> {
  const link = await db.selectFrom('links').selectAll().where('id', '=', linkId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
  if (!link) throw notFound('Link');
  try {
    await accessNode(db, principal, link.node_id, 'manage', { trashed: 'allow' });
  } catch (error) {
    if (error instanceof AppError && (error.status === 403 || error.status === 404)) throw notFound('Link');
    throw error;
  }
  return link;
}

const revokedError = () => gone('This link was revoked', 'LINK_REVOKED');

export async function setLinkEnabled(db: Db, principal: Principal, link: Link, enabled: boolean): Promise<Link> {
  if (link.revoked_at) throw revokedError();
  return db.transaction().execute(async (trx) => {
    const changed = await trx
      .updateTable('links')
      .set({ enabled })
      .where('id', '=', link.id)
      .where('revoked_at', 'is', null)
      .where('enabled', '=', !enabled)
      .returningAll()
      .executeTakeFirst();
    if (!changed) {
      // Already in that state (no audit row for a no-op), or revoked meanwhile.
      const current = await trx.selectFrom('links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
      if (current.revoked_at) throw revokedError();
      return current;
    }
    await recordAudit(trx, {
      tenantId: link.tenant_id,
      actorId: userIdOf(principal),
      action: enabled ? 'link.enabled' : 'link.disabled',
      targetType: 'link',
      targetId: link.id,
      details: { node_id: link.node_id },
    });
    return changed;
  });
}

export async function revokeLink(db: Db, principal: Principal, link: Link): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const revoked = await trx.updateTable('links').set({ revoked_at: sql`now()` }).where('id', '=', link.id).where('revoked_at', 'is', null).returning('id').executeTakeFirst();
    if (!revoked) throw revokedError();
    await recordAudit(trx, { tenantId: link.tenant_id, actorId: userIdOf(principal), action: 'link.revoked', targetType: 'link', targetId: link.id, details: { node_id: link.node_id } });
  });
}

// ------------------------------------------------------------------------------------------ recipient side

export interface LinkTarget {
  link: Link;
  node: Node;
}

/** What a recipient request brings: its client address, an X-Link-Password, a verified link session. */
export interface RecipientProof {
  address: string;
  password?: string;
  session: LinkSession | null;
}

/** Caps never reset, so a capped link stays capped: clients are told to come back much later (or never). */
export const capRetryAfterSeconds = 3600;

/**
 * The link and its node. A suspended tenant's links answer 403 AUTHZ_TENANT_SUSPENDED, as its API calls do:
 * suspension stops all access to its data, and the token already proved the link exists to its holder.
 */
export async function findLinkByToken(db: Db, token: string): Promise<LinkTarget> {
  const row = await db
    .selectFrom('links')
    .innerJoin('tenants', 'tenants.id', 'links.tenant_id')
    .selectAll('links')
    .select('tenants.is_active as tenant_active')
    .where('links.token_hash', '=', linkTokenHash(token))
    .executeTakeFirst();
  if (!row) throw notFound('Link');
  const { tenant_active: tenantActive, ...link } = row;
  if (!tenantActive) throw forbidden('Tenant is suspended', 'AUTHZ_TENANT_SUSPENDED');
  const node = await db.selectFrom('nodes').selectAll().where('id', '=', link.node_id).executeTakeFirst();
  if (!node) throw notFound('Link');
  return { link, node };
}

/** 410 for a revoked, disabled or expired link, and for one whose file or folder is in the trash. */
export function assertLinkLive({ link, node }: LinkTarget, now = Date.now()): void {
  if (link.revoked_at) throw revokedError();
  if (!link.enabled) throw gone('This link is disabled', 'LINK_DISABLED');
  if (link.expires_at && link.expires_at.getTime() <= now) throw gone('This link has expired', 'LINK_EXPIRED');
  if (node.deleted_at) throw gone('The shared item is in the trash', 'IN_TRASH');
}

export function assertAddressAllowed(link: Link, address: string): void {
  if (link.allowed_ips.length > 0 && !addressMatcher(link.allowed_ips).includes(address)) {
    throw forbidden('This link cannot be used from your network address', 'LINK_IP_NOT_ALLOWED');
  }
}

/** The link a recipient is proving something to (password, email): it must exist (404), be live (410) and allow the address (403). */
export async function findLiveLinkFrom(db: Db, token: string, address: string): Promise<LinkTarget> {
  const target = await findLinkByToken(db, token);
  assertLinkLive(target);
  assertAddressAllowed(target.link, address);
  return target;
}

/** An address is allowed when it is on the list or its exact domain is (`@example.com` does not cover subdomains). */
export function emailAllowed(link: Link, email: string): boolean {
  const address = email.trim().toLowerCase();
  const domain = address.slice(address.lastIndexOf('@'));
  return link.require_email.some((entry) => entry === address || entry === domain);
}

/**
 * Checks a password against the link. In order, each reserved atomically BEFORE the (slow) evaluation, so
 * parallel guesses cannot get past a limit that was not yet recorded:
 * - a wrong-attempt slot of this link+address (10 per 15-minute window) → else 429 LINK_RATE_LIMITED, even for
 *   the right password; a right password gives its slot back;
 * - a password-check slot of this link+address (30 a minute, right or wrong) → else 429: bounds the hashing
 *   one client can make the server do;
 * - a place in the process's hashing gate → else 503 with Retry-After (checked first as well, so a burst
 *   the gate cannot take is refused before it costs any SQL).
 * A wrong password keeps its slot and answers 401 LINK_PASSWORD_INVALID.
 */
export async function checkLinkPassword({ db, passwordHashing, clock }: LinkServices, link: Link, address: string, password: string): Promise<void> {
  if (!link.password_hash) return;
  passwordHashing.assertCapacity(link.tenant_id);
  const now = clock.now();
  const attempt = await reservePasswordAttempt(db, link.id, address, now);
  if (!attempt) throw linkRateLimited('Too many wrong passwords for this link; try again later', passwordRetryAfterSeconds(now));
  let right = false;
  let evaluated = false;
  try {
    if (!(await reserveLinkSlot(db, link.id, address, passwordCheckLimit, now))) {
      throw linkRateLimited('Too many password checks for this link; try again later', secondsLeftInWindow(now, passwordCheckLimit.windowMs));
    }
    right = await verifyLinkPassword(passwordHashing, link.tenant_id, password, link.password_hash);
    evaluated = true;
  } finally {
    // Only a wrong password evaluated in full uses up an attempt.
    if (right || !evaluated) await releasePasswordAttempt(db, link.id, address, attempt);
  }
  if (!right) throw new AppError(401, 'LINK_PASSWORD_INVALID', 'Wrong password for this link', { attempts_remaining: Math.max(0, passwordFailureLimit - attempt.failures) });
}

/** Everything a recipient request (metadata, children, content) must pass before it is counted. */
export async function authorizeRecipient(services: LinkServices, target: LinkTarget, proof: RecipientProof): Promise<void> {
  const { link } = target;
  assertLinkLive(target);
  assertAddressAllowed(link, proof.address);
  if (link.require_email.length > 0 && !(proof.session?.email && emailAllowed(link, proof.session.email))) {
    throw forbidden('This link needs a verified email address (POST /public/links/{token}/verify-email)', 'LINK_EMAIL_REQUIRED');
  }
  if (link.password_hash && !proof.session?.password) {
    if (!proof.password) throw new AppError(401, 'LINK_PASSWORD_REQUIRED', 'This link needs a password (X-Link-Password header or a link session from /unlock)');
    await checkLinkPassword(services, link, proof.address, proof.password);
  }
}

/**
 * Counts one view or download with a single conditional UPDATE, so the cap holds exactly however many
 * requests race: the row lock serialises them and each re-checks `count < max`. Returns what is left
 * (null = unlimited); 429 with Retry-After when the cap is reached.
 */
export async function countLinkUse(db: Db, linkId: string, kind: 'view' | 'download'): Promise<number | null> {
  const row =
    kind === 'download'
      ? await db
          .updateTable('links')
          .set((eb) => ({ download_count: eb('download_count', '+', 1) }))
          .where('id', '=', linkId)
          .where((eb) => eb.or([eb('max_downloads', 'is', null), eb('download_count', '<', eb.ref('max_downloads'))]))
          .returning(['download_count as count', 'max_downloads as max'])
          .executeTakeFirst()
      : await db
          .updateTable('links')
          .set((eb) => ({ view_count: eb('view_count', '+', 1) }))
          .where('id', '=', linkId)
          .where((eb) => eb.or([eb('max_views', 'is', null), eb('view_count', '<', eb.ref('max_views'))]))
          .returning(['view_count as count', 'max_views as max'])
          .executeTakeFirst();
  if (!row) throw capReached(kind);
  return row.max === null ? null : row.max - row.count;
}

function capReached(kind: 'view' | 'download'): AppError {
  return new AppError(
    429,
    kind === 'download' ? 'LINK_DOWNLOAD_LIMIT_REACHED' : 'LINK_VIEW_LIMIT_REACHED',
    `This link has reached its ${kind} limit`,
    undefined,
    { 'Retry-After': String(capRetryAfterSeconds) },
  );
}

/**
 * For requests that must not count (HEAD): answers as the counted request would — 429 once the cap is
 * reached — and returns what is left, without taking a use.
 */
export function peekLinkUse(link: Link, kind: 'view' | 'download'): number | null {
  const [count, max] = kind === 'download' ? [link.download_count, link.max_downloads] : [link.view_count, link.max_views];
  if (max === null) return null;
  if (count >= max) throw capReached(kind);
  return max - count;
}

/** The current version of a file reached through a link (404 when it has none). */
export async function currentVersionOf(db: Db, file: Node): Promise<Version> {
  // A linked file without content is, to a recipient, no file at all.
  return loadVersion(db, file.id, file.current_version_id, 'File');
}

/**
 * A node inside a linked folder (or the folder itself): its ancestry must reach the linked folder.
 * Outside (or unknown) → 404; inside but in the trash → 410.
 */
export async function findInsideLinkedFolder(db: Db, root: Node, nodeId: string, kind: Node['kind']): Promise<Node> {
  const what = kind === 'file' ? 'File' : 'Folder';
  if (nodeId !== root.id) {
    // `union` (not `union all`) ends the walk even on a corrupt cycle; it stops climbing at the linked folder.
    const inside = await sql<{ id: string }>`
      with recursive ancestors(id, parent_id) as (
        select id, parent_id from nodes where id = ${nodeId} and tenant_id = ${root.tenant_id}
        union
        select n.id, n.parent_id from nodes n join ancestors a on n.id = a.parent_id where a.id <> ${root.id})
      select id from ancestors where id = ${root.id}`.execute(db);
    if (inside.rows.length === 0) throw notFound(what);
  }
  const node = await db.selectFrom('nodes').selectAll().where('id', '=', nodeId).executeTakeFirst();
  if (!node || node.kind !== kind) throw notFound(what);
  if (node.deleted_at) throw gone(`${what} is in the trash`, 'IN_TRASH');
  return node;
}

// --------------------------------------------------------------------------------------- email verification

export const emailCodeTtlMs = 10 * 60 * 1000;
export const emailCodeMaxAttempts = 5;
/** A new code is mailed at most once a minute per link and address (no mail bombing through the link). */
const emailCodeResendMs = 60 * 1000;

function emailCodeHash(key: Buffer, linkId: string, email: string, code: string): string {
  // Keyed: six digits are too few for a plain hash to keep the code secret from a database reader.
  return createHmac('sha256', key).update(`link-email-code:${linkId}:${email}:${code}`).digest('hex');
}

/**
 * Mails a code when `email` may open the link; does nothing otherwise (the caller answers 202 regardless).
 * Limits, each one atomic: verify-email requests per link and client address (10 per 15 minutes, allowed
 * addresses or not, so a 429 reveals nothing), code mails per link (10 per 15 minutes, all addresses together;
 * once used up every request of the link gets 429, again revealing nothing), and one code per address a
 * minute. Wrong attempts carry over to a resent code while the previous one is live, so resending never buys
 * more than 5 guesses per 10 minutes.
 */
export async function sendLinkEmailCode(db: Db, key: Buffer, link: Link, email: string, clientAddress: string, now = Date.now()): Promise<void> {
  if (!(await reserveLinkSlot(db, link.id, clientAddress, emailRequestLimit, now))) {
    throw linkRateLimited('Too many verification requests for this link; try again later', secondsLeftInWindow(now, emailRequestLimit.windowMs));
  }
  if (await linkLimitExhausted(db, link.id, wholeLink, emailMailLimit, now)) {
    throw linkRateLimited('Too many verification codes were sent for this link; try again later', secondsLeftInWindow(now, emailMailLimit.windowMs));
  }
  const address = email.trim().toLowerCase();
  if (link.require_email.length === 0 || !emailAllowed(link, address)) return;
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const codeHash = emailCodeHash(key, link.id, address, code);
  const nowDate = new Date(now);
  const expiresAt = new Date(now + emailCodeTtlMs);
  const noMail = new Error('no mail');
  await db
    .transaction()
    .execute(async (trx) => {
      // One conditional upsert decides whether a code is (re)issued: no earlier code, an expired one, or a live
      // one older than the resend interval that still has attempts. Racing requests for one address get one mail.
      const issued = await trx
        .insertInto('link_email_codes')
        .values({ link_id: link.id, email: address, code_hash: codeHash, attempts: 0, expires_at: expiresAt })
        .onConflict((oc) =>
          oc
            .columns(['link_id', 'email'])
            .doUpdateSet({
              code_hash: codeHash,
              attempts: sql`case when link_email_codes.expires_at > ${nowDate} then link_email_codes.attempts else 0 end`,
              expires_at: expiresAt,
            })
            .where((eb) =>
              eb.or([
                eb('link_email_codes.expires_at', '<=', nowDate),
                eb.and([eb('link_email_codes.attempts', '<', emailCodeMaxAttempts), eb('link_email_codes.expires_at', '<=', new Date(now + emailCodeTtlMs - emailCodeResendMs))]),
              ]),
            ),
        )
        .returning('link_id')
        .executeTakeFirst();
      if (!issued) throw noMail;
      // The link's mail budget, taken in the same transaction: no slot → no code and no mail (rolled back).
      if (!(await reserveLinkSlot(trx, link.id, wholeLink, emailMailLimit, now))) throw noMail;
      await trx
        .insertInto('mail_outbox')
        .values({
          tenant_id: link.tenant_id,
          kind: 'link_email_code',
          recipient: address,
          subject: 'Your ScaiDrive verification code',
          body: `Your code to open the shared link is ${code}. It expires in 10 minutes.\n\nIf you did not ask for it, you can ignore this message.`,
          sent_at: null,
        })
        .execute();
    })
    .catch((error: unknown) => {
      if (error !== noMail) throw error;
    });
}

/**
 * The verified (lower-case) address for a right, live code; 403 otherwise. Each try uses up one attempt of the
 * code (5) and, reserved first, one of this link+address's confirmations (10 per 15 minutes, whatever the
 * address: 50 addresses × 5 guesses are not 250 guesses); a right code gives the latter back.
 */
export async function confirmLinkEmailCode(db: Db, key: Buffer, link: Link, email: string, code: string, clientAddress: string): Promise<string> {
  const address = email.trim().toLowerCase();
  const invalid = () => forbidden('The code is wrong or has expired', 'LINK_EMAIL_CODE_INVALID');
  const confirmation = await reserveLinkSlot(db, link.id, clientAddress, emailConfirmLimit);
  if (!confirmation) throw linkRateLimited('Too many verification attempts for this link; try again later', secondsLeftInWindow(Date.now(), emailConfirmLimit.windowMs));
  if (!emailAllowed(link, address)) throw invalid();
  // Taking the attempt in the same statement that reads the code keeps parallel guesses within the limit.
  const row = await db
    .updateTable('link_email_codes')
    .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
    .where('link_id', '=', link.id)
    .where('email', '=', address)
    .where('attempts', '<', emailCodeMaxAttempts)
    .where('expires_at', '>', new Date())
    .returning('code_hash')
    .executeTakeFirst();
  if (!row) throw invalid();
  const expected = Buffer.from(row.code_hash, 'hex');
  const given = Buffer.from(emailCodeHash(key, link.id, address, code.trim()), 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalid();
  // One statement: only the request that deletes the code wins it (two racing right guesses get one session).
  const won = await db.deleteFrom('link_email_codes').where('link_id', '=', link.id).where('email', '=', address).where('code_hash', '=', row.code_hash).returning('link_id').executeTakeFirst();
  if (!won) throw invalid();
  await releaseLinkSlot(db, link.id, clientAddress, emailConfirmLimit, confirmation);
  return address;
}
