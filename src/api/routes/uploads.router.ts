// Resumable uploads (spec §6): sessions, chunk PUTs, status, abort, dedup check, finalize via the workflow.
import type { Hash } from 'node:crypto';
import type Router from '@koa/router';
import { WorkflowFailedError } from '@temporalio/client';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { AppError, conflict } from '../../errors';
import * as sessions from '../../services/upload-sessions.service';
import { chunkUploadUrl, chunkUploadUrls, completeDirectChunk, completeDirectChunks, maxChunksPerBatch } from '../../services/direct-transfer.service';
import { loadCommit } from '../../services/versions.service';
import { uploadFinalizationWorkflow, type FinalizationResult } from '../../workflows/upload-finalization.workflow';
import { workflowIds } from '../../temporal/workflow-ids';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import type { Principal } from '../../services/principal';
import { nodeName } from '../node-name';
import { chunkCheckSchema, chunkReceiptSchema, chunkUploadTicketSchema, finalizingSchema, presentUploadSession, uploadSessionSchema } from '../presenters/uploads';
import { commitSchema, presentCommit } from '../presenters/versions';
import { readBounded } from '../request-body';
import { resultWithin, startOrAttach } from '../workflow-starter';
import { uploadDeps, uploadLimits } from '../upload-deps';

const idParam = z.object({ id: z.string().max(64) });
const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'a 64-character hex SHA-256');

async function answerCompleted(ctx: AppContext, fileId: string, versionId: string) {
  ctx.status = 200;
  ctx.body = presentCommit(await loadCommit(ctx.deps.db, fileId, versionId));
}

/** HTTP status of each reason a finalization can be refused for (the one place reasons become HTTP). */
const rejectionStatus: Record<string, number> = {
  NOT_FOUND: 404,
  UPLOAD_EXPIRED: 410,
  IN_TRASH: 410,
  UPLOAD_INCOMPLETE: 400,
  CHECKSUM_MISMATCH: 400,
  FORBIDDEN: 403,
  PAYLOAD_TOO_LARGE: 413,
  LOCKED: 423,
  QUOTA_EXCEEDED: 507,
  // NAME_CONFLICT, VERSION_CONFLICT, UPLOAD_FAILED, UPLOAD_CHANGED and anything new: 409.
};

export function registerUploadRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'post',
      path: '/uploads',
      summary: 'Start a resumable upload session',
      tag: 'uploads',
      access: 'authenticated',
      body: z.object({
        parent_id: z.string().min(1).max(64),
        name: nodeName,
        size: z.number().int().min(0),
        checksum_sha256: sha256.optional(),
        chunk_size: z.number().int().min(sessions.minChunkSize).max(sessions.maxChunkSize).optional(),
        base_version_id: z.string().max(64).optional(),
        transfer: z.enum(['proxied', 'direct']).optional().describe('direct (S3 driver): chunks go to presigned URLs from POST /uploads/{id}/chunks/{index}/url'),
      }),
      responses: { 201: { description: 'The session', schema: uploadSessionSchema } },
      errors: [400, 409, 410, 413, 429, 507],
    },
    async (ctx, { principal, body }) => {
      const session = await sessions.createUploadSession(
        ctx.deps.db,
        principal,
        {
          parentId: body.parent_id,
          name: body.name,
          size: body.size,
          checksumSha256: body.checksum_sha256,
          chunkSize: body.chunk_size,
          baseVersionId: body.base_version_id,
          transfer: body.transfer,
        },
        {
          maxOpenSessionsPerUser: uploadLimits(ctx.deps).maxOpenSessionsPerUser,
          deviceId: ctx.get('x-device-id') || undefined,
          keepOpenOnConflict: true,
          storageDriver: ctx.deps.storage.driver,
        },
      );
      ctx.status = 201;
      ctx.body = presentUploadSession(session, [], false);
    },
  );

  route(
    { method: 'get', path: '/uploads/{id}', summary: 'Session status and received chunks', tag: 'uploads', access: 'authenticated', params: idParam, responses: { 200: { description: 'The session', schema: uploadSessionSchema } } },
    async (ctx, { principal, params }) => {
      const { session, receivedChunks, expired } = await sessions.describeOwnSession(ctx.deps.db, principal, params.id);
      ctx.body = presentUploadSession(session, receivedChunks, expired);
    },
  );

  route(
    { method: 'delete', path: '/uploads/{id}', summary: 'Abort an upload session', tag: 'uploads', access: 'authenticated', params: idParam, responses: { 204: { description: 'Aborted' } }, errors: [409] },
    async (ctx, { principal, params }) => {
      await sessions.abortUpload(ctx.deps.db, principal, params.id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'put',
      path: '/uploads/{id}/chunks/{index}',
      summary: 'Send one chunk (raw bytes; idempotent per index; any order; optional X-Chunk-Sha256)',
      tag: 'uploads',
      access: 'authenticated',
      params: z.object({ id: z.string().max(64), index: z.string().regex(/^\d{1,9}$/) }),
      rawBody: { contentType: 'application/octet-stream', description: 'The chunk bytes: chunk_size bytes, the last chunk the remainder.' },
      responses: { 200: { description: 'Stored', schema: chunkReceiptSchema } },
      errors: [400, 408, 409, 410, 413, 429, 503],
    },
    async (ctx, { principal, params }) => {
      const length = ctx.get('content-length');
      const idleMs = uploadLimits(ctx.deps).bodyIdleTimeoutMs;
      const readBody = (expectedBytes: number, into?: Buffer, hash?: Hash) => readBounded(ctx.req, expectedBytes, idleMs, into, hash);
      ctx.body = await sessions.putChunk(uploadDeps(ctx), principal, params.id, Number(params.index), readBody, {
        contentLength: length ? Number(length) : undefined,
        sha256: ctx.get('x-chunk-sha256') || undefined,
      });
    },
  );

  const chunkParams = z.object({ id: z.string().max(64), index: z.string().regex(/^\d{1,9}$/) });

  route(
    {
      method: 'post',
      path: '/uploads/{id}/chunks/{index}/url',
      summary: 'Direct transfer: a presigned PUT URL for one chunk on the store (or "deduplicated" when your own uploads hold it)',
      tag: 'uploads',
      access: 'authenticated',
      params: chunkParams,
      body: z.object({ sha256, size: z.number().int().min(0) }),
      responses: { 200: { description: 'Where to send the chunk', schema: chunkUploadTicketSchema } },
      errors: [400, 409, 410],
    },
    async (ctx, { principal, params, body }) => {
      const deps = { ...uploadDeps(ctx), directUrlTtlSeconds: ctx.deps.config.uploads.directUrlTtlSeconds };
      ctx.body = await chunkUploadUrl(deps, principal, params.id, Number(params.index), body);
    },
  );

  route(
    {
      method: 'put',
      path: '/uploads/{id}/chunks/{index}/complete',
      summary: 'Direct transfer: record a chunk PUT to its presigned URL (checked on the store: this session wrote it, with this SHA-256 and size)',
      tag: 'uploads',
      access: 'authenticated',
      params: chunkParams,
      body: z.object({ sha256 }),
      responses: { 200: { description: 'Recorded', schema: chunkReceiptSchema } },
      errors: [400, 409, 410],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = await completeDirectChunk(uploadDeps(ctx), principal, params.id, Number(params.index), body.sha256);
    },
  );

  route(
    {
      method: 'post',
      path: '/uploads/{id}/chunks/urls',
      summary: `Direct transfer: presigned PUT URLs for up to ${maxChunksPerBatch} chunks in one request`,
      tag: 'uploads',
      access: 'authenticated',
      params: idParam,
      body: z.object({ chunks: z.array(z.object({ index: z.number().int().min(0), sha256, size: z.number().int().min(0) })).min(1).max(maxChunksPerBatch) }),
      responses: { 200: { description: 'Where to send each chunk', schema: z.object({ items: z.array(chunkUploadTicketSchema) }) } },
      errors: [400, 409, 410],
    },
    async (ctx, { principal, params, body }) => {
      const deps = { ...uploadDeps(ctx), directUrlTtlSeconds: ctx.deps.config.uploads.directUrlTtlSeconds };
      ctx.body = { items: await chunkUploadUrls(deps, principal, params.id, body.chunks) };
    },
  );

  route(
    {
      method: 'post',
      path: '/uploads/{id}/chunks/complete',
      summary: `Direct transfer: record up to ${maxChunksPerBatch} chunks PUT to their URLs (those not found are named in a 409, the others recorded)`,
      tag: 'uploads',
      access: 'authenticated',
      params: idParam,
      body: z.object({ chunks: z.array(z.object({ index: z.number().int().min(0), sha256 })).min(1).max(maxChunksPerBatch) }),
      responses: { 200: { description: 'Recorded', schema: z.object({ items: z.array(chunkReceiptSchema) }) } },
      errors: [400, 409, 410],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = { items: await completeDirectChunks(uploadDeps(ctx), principal, params.id, body.chunks) };
    },
  );

  route(
    {
      method: 'post',
      path: '/uploads/{id}/chunks/check',
      summary: 'Which of these chunk hashes you already hold (from your own uploads) and may skip; with `index` set, also attaches a held chunk at that index',
      tag: 'uploads',
      access: 'authenticated',
      params: idParam,
      body: z.object({
        sha256: z.array(sha256).min(1).max(sessions.maxCheckEntries),
        attach: z.array(z.object({ index: z.number().int().min(0), sha256 })).max(sessions.maxCheckEntries).optional(),
      }),
      responses: { 200: { description: 'Known hashes', schema: chunkCheckSchema } },
      errors: [400, 409, 410],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = await sessions.checkAndAttach(uploadDeps(ctx), principal, params.id, body.sha256, body.attach ?? []);
    },
  );

  route(
    {
      method: 'post',
      path: '/uploads/{id}/finalize',
      summary: 'Finalize: runs the upload-finalization workflow and waits a bounded time for it',
      tag: 'uploads',
      access: 'authenticated',
      params: idParam,
      responses: {
        200: { description: 'Committed', schema: commitSchema },
        202: { description: 'Still finalizing', schema: finalizingSchema },
      },
      errors: [400, 409, 410, 423, 507],
    },
    async (ctx, { principal, params }) => {
      await finalizeUploadSession(ctx, principal, params.id);
    },
  );
}

/**
 * Runs the upload-finalization workflow for the caller's session and answers like POST /uploads/{id}/finalize:
 * 200 with the commit, 202 while it is still finalizing, or the refusal's status.
 */
export async function finalizeUploadSession(ctx: AppContext, principal: Principal, uploadId: string): Promise<void> {
  const ready = await sessions.sessionToFinalize(ctx.deps.db, principal, uploadId);
  if ('committed' in ready) return answerCompleted(ctx, ready.committed.fileId, ready.committed.versionId);
  const { session } = ready;
  const workflowId = workflowIds.uploadFinalize(session.id);
  const { handle } = await startOrAttach(ctx, uploadFinalizationWorkflow, {
    workflowId,
    taskQueue: ctx.deps.taskQueues.uploads,
    args: [session.id],
    attributes: { tenantId: session.tenant_id, fileId: session.file_id ?? undefined },
    reuse: 'attach-or-rerun',
  });
  let result: FinalizationResult | undefined;
  try {
    result = await resultWithin(ctx, handle, ctx.deps.config.workflowWaitSeconds);
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    // The workflow's failure path marked the session failed with the reason: answer that.
    const failed = await sessions.getOwnSession(ctx.deps.db, principal, uploadId);
    throw conflict(`Upload session failed: ${failed.error_detail ?? 'finalization failed'}`, 'UPLOAD_FAILED', { reason: failed.error_code, workflow_id: workflowId });
  }
  if (!result) {
    ctx.status = 202;
    ctx.body = { status: 'finalizing', workflow_id: workflowId };
    return;
  }
  if (result.outcome === 'completed') return answerCompleted(ctx, result.fileId, result.versionId);
  throw new AppError(rejectionStatus[result.reason] ?? 409, result.reason, result.detail, result.details);
}
