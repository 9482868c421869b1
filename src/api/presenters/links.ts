// JSON shapes of external links: the owner's view of a link, and what a recipient sees (no ids beyond the node's).
import type { Link, Node } from '../../db/database';
import { z } from '../openapi';
import { iso } from './time';

export const linkSchema = z
  .object({
    id: z.string(),
    node_id: z.string(),
    status: z.enum(['active', 'disabled', 'expired', 'revoked']),
    has_password: z.boolean(),
    expires_at: z.string().nullable(),
    allowed_ips: z.array(z.string()),
    require_email: z.array(z.string()),
    max_downloads: z.number().int().nullable(),
    download_count: z.number().int(),
    max_views: z.number().int().nullable(),
    view_count: z.number().int(),
    enabled: z.boolean(),
    revoked_at: z.string().nullable(),
    created_by: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Link');

export const createdLinkSchema = linkSchema.extend({ token: z.string(), url: z.string() }).openapi('CreatedLink');

export function presentLink(link: Link) {
  const status = link.revoked_at ? 'revoked' : !link.enabled ? 'disabled' : link.expires_at && link.expires_at.getTime() <= Date.now() ? 'expired' : 'active';
  return {
    id: link.id,
    node_id: link.node_id,
    status: status as 'active' | 'disabled' | 'expired' | 'revoked',
    has_password: link.password_hash !== null,
    expires_at: iso(link.expires_at),
    allowed_ips: link.allowed_ips,
    require_email: link.require_email,
    max_downloads: link.max_downloads,
    download_count: link.download_count,
    max_views: link.max_views,
    view_count: link.view_count,
    enabled: link.enabled,
    revoked_at: iso(link.revoked_at),
    created_by: link.created_by,
    created_at: iso(link.created_at),
  };
}

/** The link as its creator sees it once: with its token and the recipient URL. */
export const presentCreatedLink = (link: Link, token: string, publicUrl: string) => ({ ...presentLink(link), token, url: `${publicUrl}/api/v1/public/links/${token}` });

/** What a recipient sees of a node: no space, parent or user ids. */
export const linkedNodeSchema = z
  .object({ id: z.string(), kind: z.enum(['file', 'folder']), name: z.string(), size: z.number().int(), checksum_sha256: z.string().nullable(), updated_at: z.string() })
  .openapi('LinkedNode');

export const presentLinkedNode = (node: Node) => ({
  id: node.id,
  kind: node.kind,
  name: node.name,
  size: node.kind === 'file' ? node.size : 0,
  checksum_sha256: node.kind === 'file' ? node.checksum_sha256 : null,
  updated_at: iso(node.updated_at),
});

export const linkMetadataSchema = linkedNodeSchema
  .extend({ expires_at: z.string().nullable(), views_remaining: z.number().int().nullable(), downloads_remaining: z.number().int().nullable() })
  .openapi('LinkMetadata');

/** The recipient's view of a link: the node, when the link expires, and what its caps leave. */
export const presentLinkMetadata = (link: Link, node: Node, viewsRemaining: number | null) => ({
  ...presentLinkedNode(node),
  expires_at: iso(link.expires_at),
  views_remaining: viewsRemaining,
  downloads_remaining: link.max_downloads === null ? null : Math.max(0, link.max_downloads - link.download_count),
});

export const linkSessionSchema = z.object({ session: z.string(), expires_at: z.string() }).openapi('LinkSession');
