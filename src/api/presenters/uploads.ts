// JSON shapes of an upload session, a stored chunk and a finalization still running.
import type { UploadSession } from '../../db/database';
import { z } from '../openapi';
import { iso } from './time';

export const uploadSessionSchema = z
  .object({
    id: z.string(),
    status: z.enum(['open', 'finalizing', 'completed', 'failed', 'expired']),
    parent_id: z.string(),
    name: z.string(),
    size: z.number().int(),
    chunk_size: z.number().int(),
    chunk_count: z.number().int(),
    checksum_sha256: z.string().nullable(),
    base_version_id: z.string().nullable(),
    transfer: z.enum(['proxied', 'direct']),
    received_chunks: z.array(z.number().int()),
    file_id: z.string().nullable(),
    version_id: z.string().nullable(),
    error: z.object({ code: z.string(), detail: z.string().nullable() }).nullable(),
    expires_at: z.string(),
    created_at: z.string(),
  })
  .openapi('UploadSession');

export const presentUploadSession = (session: UploadSession, receivedChunks: number[], expired: boolean) => ({
  id: session.id,
  status: expired && session.status !== 'completed' ? 'expired' : session.status,
  parent_id: session.parent_id,
  name: session.name,
  size: session.size,
  chunk_size: session.chunk_size,
  chunk_count: session.chunk_count,
  checksum_sha256: session.checksum_sha256,
  base_version_id: session.base_version_id,
  transfer: session.transfer,
  received_chunks: receivedChunks,
  file_id: session.file_id,
  version_id: session.version_id,
  error: session.error_code ? { code: session.error_code, detail: session.error_detail } : null,
  expires_at: iso(session.expires_at),
  created_at: iso(session.created_at),
});

export const chunkReceiptSchema = z.object({ index: z.number().int(), size: z.number().int(), sha256: z.string(), deduplicated: z.boolean() });

export const chunkUploadTicketSchema = z
  .object({
    index: z.number().int(),
    sha256: z.string(),
    size: z.number().int(),
    deduplicated: z.boolean().describe('true: your own uploads hold this chunk; it is attached, send nothing'),
    url: z.string().nullable().describe('PUT the chunk bytes here with exactly `headers` (null when deduplicated)'),
    method: z.literal('PUT'),
    headers: z.record(z.string(), z.string()),
    expires_at: z.string().nullable(),
  })
  .openapi('ChunkUploadTicket');

export const chunkCheckSchema = z.object({ known: z.array(z.string()), attached: z.array(z.number().int()) });

export const finalizingSchema = z.object({ status: z.literal('finalizing'), workflow_id: z.string() });
