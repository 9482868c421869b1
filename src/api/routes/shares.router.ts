// Shares, members, invitations and the audit trail (spec §8).
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Space } from '../../db/database';
import { roleInSpace } from '../../services/access.service';
import type { Principal } from '../../services/principal';
import { listAuditEntries } from '../../services/audit.service';
import * as shares from '../../services/shares.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import { cursorParts, decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { auditEntrySchema, presentAuditEntry } from '../presenters/audit';
import {
  createdInvitationSchema,
  invitationResponseSchema,
  memberSchema,
  permissionSchema,
  presentCreatedInvitation,
  presentMember,
  presentPermission,
  presentShare,
  shareSchema,
} from '../presenters/shares';

const grantable = ['admin', 'contributor', 'reader'] as const;
const idParam = z.object({ id: z.string().max(64) });
const memberParams = z.object({ id: z.string().max(64), member_id: z.string().max(64) });
const tokenParam = z.object({ token: z.string().min(10).max(200) });
const shareName = z.string().trim().min(1).max(255);

const roleOf = (ctx: AppContext, principal: Principal, share: Space) => roleInSpace(ctx.deps.db, principal, share);

export function registerShareRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    { method: 'post', path: '/shares', summary: 'Create a share (a space of its own; you are its owner)', tag: 'shares', access: 'authenticated', body: z.object({ name: shareName }), responses: { 201: { description: 'The share', schema: shareSchema } } },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = presentShare(await shares.createShare(ctx.deps.db, principal, body.name), 'owner');
    },
  );

  route(
    {
      method: 'get',
      path: '/shares',
      summary: 'Shares you belong to (?all=true: every share of the tenant, for tenant admins)',
      tag: 'shares',
      access: 'authenticated',
      query: z.object({ all: z.enum(['true', 'false']).optional() }),
      responses: { 200: { description: 'Shares', schema: z.object({ items: z.array(shareSchema) }) } },
    },
    async (ctx, { principal, query }) => {
      const list = await shares.listShares(ctx.deps.db, principal, query.all === 'true');
      ctx.body = { items: await Promise.all(list.map(async (s) => presentShare(s, await roleOf(ctx, principal, s)))) };
    },
  );

  route(
    { method: 'get', path: '/shares/{id}', summary: 'A share', tag: 'shares', access: 'authenticated', params: idParam, responses: { 200: { description: 'The share', schema: shareSchema } } },
    async (ctx, { principal, params }) => {
      const { share, role } = await shares.accessShare(ctx.deps.db, principal, params.id, 'read');
      ctx.body = presentShare(share, role);
    },
  );

  route(
    { method: 'patch', path: '/shares/{id}', summary: 'Rename a share (admin or owner)', tag: 'shares', access: 'authenticated', params: idParam, body: z.object({ name: shareName }), responses: { 200: { description: 'The share', schema: shareSchema } } },
    async (ctx, { principal, params, body }) => {
      const share = await shares.renameShare(ctx.deps.db, principal, params.id, body.name);
      ctx.body = presentShare(share, await roleOf(ctx, principal, share));
    },
  );

  route(
    { method: 'delete', path: '/shares/{id}', summary: 'Delete a share and its content (owner only)', tag: 'shares', access: 'authenticated', params: idParam, responses: { 204: { description: 'Deleted' } } },
    async (ctx, { principal, params }) => {
      await shares.deleteShare(ctx.deps.db, principal, params.id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'post',
      path: '/shares/{id}/transfer',
      summary: 'Transfer ownership (owner only); the previous owner stays as admin',
      tag: 'shares',
      access: 'authenticated',
      params: idParam,
      body: z.object({ user_id: z.string().min(1).max(64) }),
      responses: { 200: { description: 'The share', schema: shareSchema } },
      errors: [409],
    },
    async (ctx, { principal, params, body }) => {
      const share = await shares.transferShare(ctx.deps.db, principal, params.id, body.user_id);
      ctx.body = presentShare(share, await roleOf(ctx, principal, share));
    },
  );

  route(
    {
      method: 'get',
      path: '/shares/{id}/my-permission',
      summary: 'Your effective role in a share (highest of direct and group grants) and what it allows',
      tag: 'shares',
      access: 'authenticated',
      params: idParam,
      responses: {
        200: { description: 'Role and abilities', schema: permissionSchema },
      },
    },
    async (ctx, { principal, params }) => {
      const { share, role } = await shares.accessShare(ctx.deps.db, principal, params.id, 'read');
      ctx.body = presentPermission(share.id, role);
    },
  );

  route(
    { method: 'get', path: '/shares/{id}/members', summary: "A share's members", tag: 'shares', access: 'authenticated', params: idParam, responses: { 200: { description: 'Members', schema: z.object({ items: z.array(memberSchema) }) } } },
    async (ctx, { principal, params }) => {
      ctx.body = { items: (await shares.listMembers(ctx.deps.db, principal, params.id)).map(presentMember) };
    },
  );

  route(
    {
      method: 'post',
      path: '/shares/{id}/members',
      summary: 'Grant a user or a group a role (admin or owner); duplicate → 409',
      tag: 'shares',
      access: 'authenticated',
      params: idParam,
      body: z.object({ principal_type: z.enum(['user', 'group']), principal_id: z.string().min(1).max(64), role: z.enum(grantable) }),
      responses: { 201: { description: 'The member', schema: memberSchema } },
      errors: [409],
    },
    async (ctx, { principal, params, body }) => {
      ctx.status = 201;
      ctx.body = presentMember(await shares.addMember(ctx.deps.db, principal, params.id, { principalType: body.principal_type, principalId: body.principal_id, role: body.role }));
    },
  );

  route(
    {
      method: 'patch',
      path: '/shares/{id}/members/{member_id}',
      summary: "Change a member's role (admin or owner)",
      tag: 'shares',
      access: 'authenticated',
      params: memberParams,
      body: z.object({ role: z.enum(grantable) }),
      responses: { 200: { description: 'The member', schema: memberSchema } },
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = presentMember(await shares.changeMemberRole(ctx.deps.db, principal, params.id, params.member_id, body.role));
    },
  );

  route(
    { method: 'delete', path: '/shares/{id}/members/{member_id}', summary: 'Remove a member (admin or owner)', tag: 'shares', access: 'authenticated', params: memberParams, responses: { 204: { description: 'Removed' } } },
    async (ctx, { principal, params }) => {
      await shares.removeMember(ctx.deps.db, principal, params.id, params.member_id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'post',
      path: '/shares/{id}/invitations',
      summary: 'Invite by email (the mail is queued in the outbox); returns the token. Pending for that address → 409, over 20 per 10 min → 429',
      tag: 'shares',
      access: 'authenticated',
      params: idParam,
      body: z.object({ email: z.string().email().max(320), role: z.enum(grantable), expires_in_days: z.number().int().min(1).max(365).default(7) }),
      responses: { 201: { description: 'The invitation and its token', schema: createdInvitationSchema } },
      errors: [409, 429],
    },
    async (ctx, { principal, params, body }) => {
      const acceptUrlBase = `${ctx.deps.config.publicUrl}/api/v1/invitations`;
      const { invitation, token } = await shares.createInvitation(ctx.deps.db, principal, params.id, { email: body.email, role: body.role, expiresInDays: body.expires_in_days, acceptUrlBase });
      ctx.status = 201;
      ctx.body = presentCreatedInvitation(invitation, token, acceptUrlBase);
    },
  );

  for (const action of ['accept', 'decline'] as const) {
    route(
      {
        method: 'post',
        path: `/invitations/{token}/${action}`,
        summary: action === 'accept' ? 'Accept an invitation (adds you as a member); used → 409, expired → 410' : 'Decline an invitation; used → 409, expired → 410',
        tag: 'shares',
        access: 'authenticated',
        params: tokenParam,
        responses: { 200: { description: 'Done', schema: invitationResponseSchema } },
        errors: [409, 410],
      },
      async (ctx, { principal, params }) => {
        const result = await shares.respondToInvitation(ctx.deps.db, principal, params.token, action === 'accept');
        ctx.body = { share_id: result.share.id, status: action === 'accept' ? 'accepted' : 'declined', member: result.member ? presentMember(result.member) : null };
      },
    );
  }

  route(
    {
      method: 'get',
      path: '/admin/audit',
      summary: 'The audit trail of sharing actions, newest first (filters: action, actor_id, target_id, since, until)',
      tag: 'admin',
      access: 'tenant_admin',
      query: pageQuery.extend({
        action: z.string().max(100).optional(),
        actor_id: z.string().max(64).optional(),
        target_id: z.string().max(64).optional(),
        // ISO-8601 with Z or an offset (2020-01-01T00:00:00+05:00).
        since: z.iso.datetime({ offset: true }).optional(),
        until: z.iso.datetime({ offset: true }).optional(),
      }),
      responses: { 200: { description: 'A page of entries', schema: pageSchema(auditEntrySchema) } },
    },
    async (ctx, { principal, query }) => {
      const before = decodeCursor(query.cursor, cursorParts.sequence);
      const rows = await listAuditEntries(ctx.deps.db, principal.tenantId, {
        before,
        limit: query.limit + 1,
        action: query.action,
        actorId: query.actor_id,
        targetId: query.target_id,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
      });
      const page = toPage(rows, query.limit, (row) => row.id);
      ctx.body = { items: page.items.map(presentAuditEntry), next_cursor: page.next_cursor };
    },
  );
}
