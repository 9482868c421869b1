// Spaces, folders, files, versions, content, locks and direct uploads (spec §5, §6).
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { accessNode } from '../../services/access.service';
import { spacesOf } from '../../services/spaces.service';
import * as tree from '../../services/tree.service';
import { copyFile, listFileVersions, readableFileVersion, restoreVersion } from '../../services/versions.service';
import { directUpload } from '../../services/direct-upload.service';
import { trashNodeWithBase, updateNodeWithBase } from '../../services/sync-conflicts.service';
import { badRequest } from '../../errors';
import type { AppContext } from '../context';
import { issueDownloadUrl, openSignedDownload } from '../../services/signed-urls';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { nodeName } from '../node-name';
import { nodeSchema, presentNode } from '../presenters/nodes';
import { presentSpace, spaceSchema } from '../presenters/spaces';
import { iso } from '../presenters/time';
import { commitSchema, presentCommit, presentVersion, versionSchema } from '../presenters/versions';
import { redirectQuery, sendVersionContent } from '../content-response';
import { bodyParts } from '../request-body';
import { uploadDeps, uploadLimits } from '../upload-deps';

/**
 * The version a sync client's write is based on: `base_version_id` or an `If-Match` header holding the version id
 * (quoted or not, as ETags are). Folders have no versions: a base on them is 400.
 */
function baseVersionOf(ctx: AppContext, kind: 'file' | 'folder', fromBody: string | undefined): string | undefined {
  const ifMatch = ctx.get('if-match').trim();
  const fromHeader = ifMatch ? ifMatch.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') : undefined;
  const base = fromBody ?? fromHeader;
  if (base !== undefined && kind === 'folder') throw badRequest('Folders have no versions: If-Match / base_version_id apply to files', 'BAD_REQUEST');
  if (base !== undefined && (base.length === 0 || base.length > 64)) throw badRequest('If-Match must hold a version id', 'BAD_REQUEST');
  return base;
}

const idParam = z.object({ id: z.string().max(64) });
const versionParams = z.object({ id: z.string().max(64), version_id: z.string().max(64) });

export function registerFileRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'get',
      path: '/spaces',
      summary: 'The spaces the caller can reach, each with its root folder',
      tag: 'files',
      access: 'authenticated',
      responses: { 200: { description: 'Spaces', schema: z.object({ items: z.array(spaceSchema) }) } },
    },
    async (ctx, { principal }) => {
      ctx.body = { items: (await spacesOf(ctx.deps.db, principal)).map(presentSpace) };
    },
  );

  route(
    {
      method: 'post',
      path: '/folders',
      summary: 'Create a folder',
      tag: 'files',
      access: 'authenticated',
      body: z.object({ parent_id: z.string().min(1).max(64), name: nodeName }),
      responses: { 201: { description: 'The folder', schema: nodeSchema } },
      errors: [404, 409, 410],
    },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = presentNode(await tree.createFolder(ctx.deps.db, principal, body.parent_id, body.name));
    },
  );

  for (const kind of ['folder', 'file'] as const) {
    const base = kind === 'folder' ? '/folders/{id}' : '/files/{id}';
    route(
      { method: 'get', path: base, summary: `A ${kind}'s metadata`, tag: 'files', access: 'authenticated', params: idParam, responses: { 200: { description: kind, schema: nodeSchema } }, errors: [410] },
      async (ctx, { principal, params }) => {
        ctx.body = presentNode((await accessNode(ctx.deps.db, principal, params.id, 'read', { kind })).node);
      },
    );
    route(
      {
        method: 'patch',
        path: base,
        summary: `Rename and/or move a ${kind}`,
        tag: 'files',
        access: 'authenticated',
        params: idParam,
        body: z.object({
          name: nodeName.optional(),
          parent_id: z.string().min(1).max(64).optional(),
          ...(kind === 'file' ? { base_version_id: z.string().min(1).max(64).optional().describe('Only if this is still the current version (or If-Match); else 409 VERSION_CONFLICT') } : {}),
        }),
        responses: { 200: { description: kind, schema: nodeSchema } },
        errors: [409, 410, 423],
      },
      async (ctx, { principal, params, body }) => {
        const baseVersionId = baseVersionOf(ctx, kind, (body as { base_version_id?: string }).base_version_id);
        ctx.body = presentNode(
          await updateNodeWithBase(ctx.deps.db, principal, { id: params.id, kind }, { name: body.name, parentId: body.parent_id, baseVersionId }, ctx.get('x-device-id') || undefined),
        );
      },
    );
    route(
      { method: 'delete', path: base, summary: `Move a ${kind} to the trash (files: If-Match a version id, else 409 VERSION_CONFLICT)`, tag: 'files', access: 'authenticated', params: idParam, responses: { 204: { description: 'In the trash' } }, errors: [409, 410, 423] },
      async (ctx, { principal, params }) => {
        await trashNodeWithBase(ctx.deps.db, principal, { id: params.id, kind }, baseVersionOf(ctx, kind, undefined), ctx.get('x-device-id') || undefined);
        ctx.status = 204;
      },
    );
  }

  route(
    {
      method: 'get',
      path: '/folders/{id}/children',
      summary: 'List a folder (keyset pagination, ordered by name)',
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      query: pageQuery,
      responses: { 200: { description: 'A page of children', schema: pageSchema(nodeSchema) } },
      errors: [410],
    },
    async (ctx, { principal, params, query }) => {
      const page = toPage(await tree.listFolder(ctx.deps.db, principal, params.id, query.limit, decodeCursor(query.cursor, tree.isChildrenCursor)), query.limit, tree.childrenCursorOf);
      ctx.body = { items: page.items.map(presentNode), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'put',
      path: '/folders/{id}/files/{name}',
      summary: 'Direct streaming upload (creates the file or a new version of it)',
      tag: 'uploads',
      access: 'authenticated',
      params: z.object({ id: z.string().max(64), name: z.string() }),
      rawBody: { contentType: 'application/octet-stream', description: 'The file bytes. Optional headers: X-Checksum-Sha256 (verified), X-Base-Version-Id.' },
      responses: { 201: { description: 'New file', schema: commitSchema }, 200: { description: 'New version of an existing file', schema: commitSchema } },
      errors: [400, 408, 409, 410, 413, 423, 429, 503, 507],
    },
    async (ctx, { principal, params }) => {
      tree.assertValidName(params.name);
      const declaredLength = ctx.get('content-length');
      const result = await directUpload(
        uploadDeps(ctx),
        principal,
        {
          parentId: params.id,
          name: params.name,
          contentLength: declaredLength ? Number(declaredLength) : undefined,
          checksumSha256: ctx.get('x-checksum-sha256') || undefined,
          baseVersionId: ctx.get('x-base-version-id') || undefined,
          deviceId: ctx.get('x-device-id') || undefined,
          body: bodyParts(ctx.req, uploadLimits(ctx.deps).bodyIdleTimeoutMs),
        },
      );
      ctx.status = result.version.number === 1 ? 201 : 200;
      ctx.body = presentCommit(result);
    },
  );

  route(
    {
      method: 'post',
      path: '/files/{id}/copy',
      summary: 'Copy a file (its current version) into a folder',
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      body: z.object({ parent_id: z.string().min(1).max(64), name: nodeName.optional() }),
      responses: { 201: { description: 'The copy', schema: commitSchema } },
      errors: [409, 410, 507],
    },
    async (ctx, { principal, params, body }) => {
      const result = await copyFile(ctx.deps.db, principal, params.id, { parentId: body.parent_id, name: body.name });
      ctx.status = 201;
      ctx.body = presentCommit(result);
    },
  );

  route(
    {
      method: 'get',
      path: '/files/{id}/content',
      summary: 'Download the current version (Range, ETag/If-None-Match, X-Checksum-Sha256); ?redirect=1: 302 to the store when it can serve the bytes',
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      query: redirectQuery,
      responses: { 200: { description: 'The bytes' }, 206: { description: 'A byte range' }, 302: { description: 'redirect=1: a 15-minute presigned URL on the store (S3, a file stored in one chunk)' }, 304: { description: 'Not modified' } },
      errors: [410, 416],
    },
    async (ctx, { principal, params, query }) => {
      const { file, version } = await readableFileVersion(ctx.deps.db, principal, params.id);
      await sendVersionContent(ctx, version, file.name, query);
    },
  );

  route(
    {
      method: 'get',
      path: '/files/{id}/download-url',
      summary: 'A 15-minute signed URL for the current version that needs no bearer token',
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      responses: { 200: { description: 'The URL', schema: z.object({ url: z.string(), expires_at: z.string() }) } },
      errors: [410],
    },
    async (ctx, { principal, params }) => {
      const { url, expiresAt } = await issueDownloadUrl(ctx.deps.db, ctx.deps.secretKey, principal, params.id, ctx.deps.config.publicUrl);
      ctx.body = { url, expires_at: iso(expiresAt) };
    },
  );

  route(
    {
      method: 'get',
      path: '/downloads/{token}',
      summary: 'Download through a signed URL (no bearer token)',
      tag: 'files',
      access: 'public',
      params: z.object({ token: z.string().max(1024) }),
      query: redirectQuery,
      responses: { 200: { description: 'The bytes' }, 206: { description: 'A byte range' }, 302: { description: 'redirect=1: a presigned URL on the store (S3, one chunk)' } },
      errors: [403, 404, 410, 416],
    },
    async (ctx, { params, query }) => {
      const { file, version } = await openSignedDownload(ctx.deps.db, ctx.deps.secretKey, params.token);
      await sendVersionContent(ctx, version, file.name, query);
    },
  );

  route(
    {
      method: 'get',
      path: '/files/{id}/versions',
      summary: "A file's versions, newest first",
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      responses: { 200: { description: 'Versions', schema: z.object({ items: z.array(versionSchema) }) } },
      errors: [410],
    },
    async (ctx, { principal, params }) => {
      const { file, versions } = await listFileVersions(ctx.deps.db, principal, params.id);
      ctx.body = { items: versions.map((v) => presentVersion(v, file.current_version_id)) };
    },
  );

  route(
    {
      method: 'get',
      path: '/files/{id}/versions/{version_id}/content',
      summary: 'Download a version',
      tag: 'files',
      access: 'authenticated',
      params: versionParams,
      responses: { 200: { description: 'The bytes' }, 206: { description: 'A byte range' } },
      errors: [410, 416],
    },
    async (ctx, { principal, params }) => {
      const { file, version } = await readableFileVersion(ctx.deps.db, principal, params.id, params.version_id);
      await sendVersionContent(ctx, version, file.name);
    },
  );

  route(
    {
      method: 'post',
      path: '/files/{id}/versions/{version_id}/restore',
      summary: 'Make an old version current again (as a new version with the same content)',
      tag: 'files',
      access: 'authenticated',
      params: versionParams,
      responses: { 201: { description: 'The new current version', schema: commitSchema } },
      errors: [410, 423, 507],
    },
    async (ctx, { principal, params }) => {
      const result = await restoreVersion(ctx.deps.db, principal, params.id, params.version_id);
      ctx.status = 201;
      ctx.body = presentCommit(result);
    },
  );

  route(
    { method: 'post', path: '/files/{id}/lock', summary: 'Lock a file for 1 hour (others get 423)', tag: 'files', access: 'authenticated', params: idParam, responses: { 200: { description: 'Locked', schema: nodeSchema } }, errors: [410, 423] },
    async (ctx, { principal, params }) => {
      ctx.body = presentNode(await tree.lockFile(ctx.deps.db, principal, params.id));
    },
  );

  route(
    {
      method: 'delete',
      path: '/files/{id}/lock',
      summary: 'Unlock a file (the holder; tenant admins with ?force=true)',
      tag: 'files',
      access: 'authenticated',
      params: idParam,
      query: z.object({ force: z.enum(['true', 'false']).optional() }),
      responses: { 204: { description: 'Unlocked' } },
      errors: [410, 423],
    },
    async (ctx, { principal, params, query }) => {
      await tree.releaseFileLock(ctx.deps.db, principal, params.id, query.force === 'true');
      ctx.status = 204;
    },
  );
}
