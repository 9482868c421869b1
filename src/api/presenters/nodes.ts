// JSON shape of a file or folder (a node), with its lock while one is held.
import type { Node } from '../../db/database';
import { z } from '../openapi';
import { iso } from './time';

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
    created_at: iso(node.created_at),
    updated_at: iso(node.updated_at),
    deleted_at: iso(node.deleted_at),
    lock: locked ? { locked_by: node.lock_user_id!, locked_at: iso(node.locked_at), expires_at: iso(node.lock_expires_at!) } : null,
  };
};
