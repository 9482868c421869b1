// JSON shapes of spaces, nodes, versions and upload sessions.
import type { Node, Space, UploadSession, Version } from '../db/database';
import { z } from './openapi';

const iso = (value: Date | null) => (value === null ? null : new Date(value).toISOString());

export const spaceSchema = z
  .object({ id: z.string(), kind: z.enum(['personal', 'share']), name: z.string(), root_folder_id: z.string(), owner_user_id: z.string(), created_at: z.string() })
  .openapi('Space');

export const presentSpace = (space: Space) => ({
  id: space.id,
  kind: space.kind,
  name: space.name,
  root_folder_id: space.root_folder_id,
  owner_user_id: space.owner_user_id,
  created_at: iso(space.created_at)!,
});

export const nodeSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['file', 'folder']),
    name: z.string(),
    parent_id: z.string().nullable(),
    space_id: z.string(),
    size: z.number().int(),
    checksum_sha256: z.string().nullable(),
    current_version_id: z.string().nullable(),
    created_by: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
    lock: z.object({ locked_by: z.string(), locked_at: z.string().nullable(), expires_at: z.string() }).nullable(),
  })
  .openapi('Node');

export const presentNode = (node: Node) => {
  const locked = node.lock_user_id && node.lock_expires_at && node.lock_expires_at.getTime() > Date.now();
  return {
    id: node.id,
    kind: node.kind,
    name: node.name,
    parent_id: node.parent_id,
    space_id: node.space_id,
    size: node.kind === 'file' ? node.size : 0,
    checksum_sha256: node.checksum_sha256,
    current_version_id: node.current_version_id,
    created_by: node.created_by,
    created_at: iso(node.created_at)!,
    updated_at: iso(node.updated_at)!,
    deleted_at: iso(node.deleted_at),
    lock: locked ? { locked_by: node.lock_user_id!, locked_at: iso(node.locked_at), expires_at: iso(node.lock_expires_at)! } : null,
  };
};

export const versionSchema = z
  .object({ id: z.string(), file_id: z.string(), number: z.number().int(), size: z.number().int(), checksum_sha256: z.string(), created_by: z.string().nullable(), created_at: z.string(), is_current: z.boolean() })
  .openapi('Version');

export const presentVersion = (version: Version, currentVersionId?: string | null) => ({
  id: version.id,
  file_id: version.file_id,
  number: version.number,
  size: version.size,
  checksum_sha256: version.checksum_sha256,
  created_by: version.created_by,
  created_at: iso(version.created_at)!,
  is_current: version.id === currentVersionId,
});

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
  received_chunks: receivedChunks,
  file_id: session.file_id,
  version_id: session.version_id,
  error: session.error_code ? { code: session.error_code, detail: session.error_detail } : null,
  expires_at: iso(session.expires_at)!,
  created_at: iso(session.created_at)!,
});
