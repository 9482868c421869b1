// External links (spec §8): owner side (create/list/enable/disable/revoke) and the recipient side under /public/links.
//
// Counting: GET /public/links/{token} and /children count one view each; every /content GET that passes
// the link checks and names a readable file counts one download — Range requests, 304s and 416s included —
// so a cap of N means N content requests, whatever their size. HEAD never counts (it transfers nothing), but
// answers 429 like a GET once the cap is reached.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Link } from '../../db/database';
import { ValidationError, notFound } from '../../errors';
import { isId } from '../../ids';
import { isAddressRange } from '../../services/address-ranges';
import * as links from '../../services/links.service';
import {
  extendLinkSession,
  linkSessionCookie,
  linkSessionCookiePath,
  linkSessionTtlSeconds,
  signLinkSession,
  verifyLinkSession,
  type LinkSession,
} from '../../services/link-session';
import * as tree from '../../services/tree.service';
import { clientAddress } from '../client-address';
import { sendVersionContent } from '../content-response';
import type { AppContext } from '../context';
import { z } from '../openapi';
import { decodeCursor, isString, pageQuery, pageSchema, toPage } from '../pagination';
import { createdLinkSchema, linkMetadataSchema, linkSchema, linkSessionSchema, linkedNodeSchema, presentCreatedLink, presentLink, presentLinkMetadata, presentLinkedNode } from '../presenters/links';
import { routeDefiner } from '../route';

// ------------------------------------------------------------------------------------------------- schemas

const positiveCount = z.number().int().min(1).max(2_147_483_647);
const emailAddress = z.string().trim().toLowerCase().max(254).regex(/^[^\s@]+@[^\s@]+$/, 'Must be an email address');

const createLinkBody = z.object({
  password: z.string().min(1).max(1024).nullish(),
  expires_at: z.iso
    .datetime({ offset: true })
    .refine((value) => Number.isNaN(Date.parse(value)) || Date.parse(value) > Date.now(), { message: 'Must be in the future' })
    .nullish(),
  allowed_ips: z
    .array(z.string().trim().max(64).refine(isAddressRange, { message: 'Must be an IPv4/IPv6 address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)' }))
    .max(100)
    .optional(),
  require_email: z
    .array(z.string().trim().toLowerCase().max(254).regex(/^[^\s@]*@[^\s@]+$/, 'Must be an email address or "@domain"'))
    .max(100)
    .optional(),
  max_downloads: positiveCount.nullish(),
  max_views: positiveCount.nullish(),
});

const idParam = z.object({ id: z.string().max(64) });
const tokenParam = z.object({ token: z.string().max(256) });

// ------------------------------------------------------------------------------------------------- helpers

/** The caller's session for this link: X-Link-Session first, then the cookie; a session of another link is none. */
function sessionOf(ctx: AppContext, linkId: string): LinkSession | null {
  const key = ctx.deps.secretKey;
  return verifyLinkSession(key, ctx.get('x-link-session') || undefined, linkId) ?? verifyLinkSession(key, ctx.cookies.get(linkSessionCookie), linkId);
}

/**
 * X-Link-Password as the client typed it: Node reads header bytes as latin1, so a UTF-8 password arrives
 * mangled; re-decode it when the bytes are valid UTF-8.
 */
function passwordHeader(ctx: AppContext): string | undefined {
  const raw = ctx.get('x-link-password');
  if (!raw) return undefined;
  const utf8 = Buffer.from(raw, 'latin1').toString('utf8');
  return utf8.includes('\uFFFD') ? raw : utf8;
}

/** Finds the link and runs every recipient check (404 → 410 → 403 → 401) for a metadata/children/content request. */
async function openLink(ctx: AppContext, token: string): Promise<links.LinkTarget> {
  const target = await links.findLinkByToken(ctx.deps.db, token);
  await links.authorizeRecipient(ctx.deps, target, {
    address: clientAddress(ctx),
    password: passwordHeader(ctx),
    session: sessionOf(ctx, target.link.id),
  });
  return target;
}

/** Answers with a new link session, as JSON (for X-Link-Session) and as an HttpOnly cookie. */
function sendSession(ctx: AppContext, session: LinkSession): void {
  const token = signLinkSession(ctx.deps.secretKey, session);
  const secure = ctx.deps.config.publicUrl.startsWith('https:') ? '; Secure' : '';
  ctx.append('Set-Cookie', `${linkSessionCookie}=${token}; Path=${linkSessionCookiePath}; Max-Age=${linkSessionTtlSeconds}; HttpOnly; SameSite=Lax${secure}`);
  ctx.body = { session: token, expires_at: new Date(session.expiresAt * 1000).toISOString() };
}

/** Counts a view or download for GET; HEAD only checks the cap (see the header comment). */
function countUse(ctx: AppContext, link: Link, kind: 'view' | 'download'): Promise<number | null> {
  if (ctx.method === 'HEAD') return Promise.resolve(links.peekLinkUse(link, kind));
  return links.countLinkUse(ctx.deps.db, link.id, kind);
}

export function registerLinkRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  // ------------------------------------------------------------------------------------------ owner side

  for (const kind of ['file', 'folder'] as const) {
    const base = kind === 'file' ? '/files/{id}/links' : '/folders/{id}/links';
    route(
      {
        method: 'post',
        path: base,
        summary: `Create an external link to a ${kind} (the token is shown only in this response)`,
        tag: 'links',
        access: 'authenticated',
        params: idParam,
        body: createLinkBody,
        responses: { 201: { description: 'The link, with its token and URL', schema: createdLinkSchema } },
        errors: [410, 503],
      },
      async (ctx, { principal, params, body }) => {
        const { link, token } = await links.createLink(ctx.deps, principal, { id: params.id, kind }, {
          password: body.password,
          expiresAt: body.expires_at ? new Date(body.expires_at) : null,
          allowedIps: body.allowed_ips,
          requireEmail: body.require_email ? [...new Set(body.require_email)] : undefined,
          maxDownloads: body.max_downloads,
          maxViews: body.max_views,
        });
        ctx.status = 201;
        ctx.body = presentCreatedLink(link, token, ctx.deps.config.publicUrl);
      },
    );

    route(
      {
        method: 'get',
        path: base,
        summary: `A ${kind}'s external links, newest first (never their tokens or passwords)`,
        tag: 'links',
        access: 'authenticated',
        params: idParam,
        query: pageQuery,
        responses: { 200: { description: 'A page of links', schema: pageSchema(linkSchema) } },
        errors: [410],
      },
      async (ctx, { principal, params, query }) => {
        const rows = await links.listLinks(ctx.deps.db, principal, { id: params.id, kind }, query.limit, decodeCursor(query.cursor, isString));
        const page = toPage(rows, query.limit, (link) => link.id);
        ctx.body = { items: page.items.map(presentLink), next_cursor: page.next_cursor };
      },
    );
  }

  route(
    {
      method: 'patch',
      path: '/links/{id}',
      summary: 'Disable or re-enable a link',
      tag: 'links',
      access: 'authenticated',
      params: idParam,
      body: z.object({ enabled: z.boolean() }),
      responses: { 200: { description: 'The link', schema: linkSchema } },
      errors: [410],
    },
    async (ctx, { principal, params, body }) => {
      if (!isId('link', params.id)) throw notFound('Link');
      const link = await links.loadManagedLink(ctx.deps.db, principal, params.id);
      ctx.body = presentLink(await links.setLinkEnabled(ctx.deps.db, principal, link, body.enabled));
    },
  );

  route(
    {
      method: 'delete',
      path: '/links/{id}',
      summary: 'Revoke a link for good',
      tag: 'links',
      access: 'authenticated',
      params: idParam,
      responses: { 204: { description: 'Revoked' } },
      errors: [410],
    },
    async (ctx, { principal, params }) => {
      if (!isId('link', params.id)) throw notFound('Link');
      const link = await links.loadManagedLink(ctx.deps.db, principal, params.id);
      await links.revokeLink(ctx.deps.db, principal, link);
      ctx.status = 204;
    },
  );

  // -------------------------------------------------------------------------------------- recipient side

  // A recipient page must not leak its token to other sites through the Referer header.
  router.use('/public/links/:token', async (rawCtx, next) => {
    (rawCtx as unknown as AppContext).set('Referrer-Policy', 'no-referrer');
    await next();
  });

  const recipientErrors = [401, 403, 410, 429, 503];

  route(
    {
      method: 'get',
      path: '/public/links/{token}',
      summary: 'What a link shares (counts a view)',
      tag: 'links',
      access: 'public',
      params: tokenParam,
      responses: { 200: { description: 'The linked file or folder', schema: linkMetadataSchema } },
      errors: recipientErrors,
    },
    async (ctx, { params }) => {
      const { link, node } = await openLink(ctx, params.token);
      const viewsRemaining = await countUse(ctx, link, 'view');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = presentLinkMetadata(link, node, viewsRemaining);
    },
  );

  route(
    {
      method: 'get',
      path: '/public/links/{token}/children',
      summary: "List a linked folder or a folder inside it (?folder_id=); counts a view",
      tag: 'links',
      access: 'public',
      params: tokenParam,
      query: pageQuery.extend({ folder_id: z.string().max(64).optional() }),
      responses: { 200: { description: 'A page of children', schema: pageSchema(linkedNodeSchema) } },
      errors: [400, ...recipientErrors],
    },
    async (ctx, { params, query }) => {
      const { link, node } = await openLink(ctx, params.token);
      if (node.kind !== 'folder') throw notFound('Folder');
      const folder = query.folder_id ? await links.findInsideLinkedFolder(ctx.deps.db, node, query.folder_id, 'folder') : node;
      const after = decodeCursor(query.cursor, tree.isChildrenCursor);
      await countUse(ctx, link, 'view');
      const page = toPage(await tree.listChildren(ctx.deps.db, folder.id, query.limit, after), query.limit, tree.childrenCursorOf);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { items: page.items.map(presentLinkedNode), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'get',
      path: '/public/links/{token}/content',
      summary: 'Download the linked file, or a file inside the linked folder (?file_id=); Range supported; counts a download',
      tag: 'links',
      access: 'public',
      params: tokenParam,
      query: z.object({ file_id: z.string().max(64).optional() }),
      responses: { 200: { description: 'The bytes' }, 206: { description: 'A byte range' }, 304: { description: 'Not modified' } },
      errors: [...recipientErrors, 416],
    },
    async (ctx, { params, query }) => {
      const { link, node } = await openLink(ctx, params.token);
      let file = node;
      if (node.kind === 'folder') {
        if (!query.file_id) throw new ValidationError([{ loc: ['query', 'file_id'], msg: 'Field required', type: 'missing' }]);
        file = await links.findInsideLinkedFolder(ctx.deps.db, node, query.file_id, 'file');
      } else if (query.file_id && query.file_id !== node.id) {
        throw notFound('File');
      }
      const version = await links.currentVersionOf(ctx.deps.db, file);
      await countUse(ctx, link, 'download');
      await sendVersionContent(ctx, version, file.name);
    },
  );

  route(
    {
      method: 'post',
      path: '/public/links/{token}/unlock',
      summary: 'Trade the password for a 1-hour link session (JSON token for X-Link-Session, and a cookie)',
      tag: 'links',
      access: 'public',
      params: tokenParam,
      body: z.object({ password: z.string().min(1).max(1024) }),
      responses: { 200: { description: 'A link session', schema: linkSessionSchema } },
      errors: recipientErrors,
    },
    async (ctx, { params, body }) => {
      const address = clientAddress(ctx);
      const target = await links.findLiveLinkFrom(ctx.deps.db, params.token, address);
      await links.checkLinkPassword(ctx.deps, target.link, address, body.password);
      // A verified email of an earlier session of this link is kept, so the two proofs can come in any order.
      sendSession(ctx, extendLinkSession(target.link.id, sessionOf(ctx, target.link.id), { password: true }));
    },
  );

  route(
    {
      method: 'post',
      path: '/public/links/{token}/verify-email',
      summary: 'Mail a 6-digit code to an address allowed by the link (always 202: never reveals who is allowed)',
      tag: 'links',
      access: 'public',
      params: tokenParam,
      body: z.object({ email: emailAddress }),
      responses: { 202: { description: 'A code is on its way if the address may open the link' } },
      errors: [403, 410, 429],
    },
    async (ctx, { params, body }) => {
      const address = clientAddress(ctx);
      const target = await links.findLiveLinkFrom(ctx.deps.db, params.token, address);
      await links.sendLinkEmailCode(ctx.deps.db, ctx.deps.secretKey, target.link, body.email, address);
      ctx.status = 202;
      ctx.body = { detail: 'If this address may open the link, a code has been sent to it' };
    },
  );

  route(
    {
      method: 'post',
      path: '/public/links/{token}/verify-email/confirm',
      summary: 'Trade an emailed code for a 1-hour link session carrying the verified address',
      tag: 'links',
      access: 'public',
      params: tokenParam,
      body: z.object({ email: emailAddress, code: z.string().trim().min(1).max(16) }),
      responses: { 200: { description: 'A link session', schema: linkSessionSchema } },
      errors: [403, 410, 429],
    },
    async (ctx, { params, body }) => {
      const address = clientAddress(ctx);
      const target = await links.findLiveLinkFrom(ctx.deps.db, params.token, address);
      const email = await links.confirmLinkEmailCode(ctx.deps.db, ctx.deps.secretKey, target.link, body.email, body.code, address);
      sendSession(ctx, extendLinkSession(target.link.id, sessionOf(ctx, target.link.id), { email }));
    },
  );
}
