// JSON shapes of shares, their members, invitations and the caller's permission in a share.
import type { Invitation, ShareMember, Space } from '../../db/database';
import type { SpaceRole } from '../../services/access.service';
import { roleAllows } from '../../services/access.service';
import { z } from '../openapi';
import { iso } from './time';

const roles = ['owner', 'admin', 'contributor', 'reader'] as const;

export const shareSchema = z
  .object({ id: z.string(), name: z.string(), owner_user_id: z.string(), root_folder_id: z.string(), created_at: z.string(), my_role: z.enum(roles).nullable() })
  .openapi('Share');
export const memberSchema = z
  .object({ id: z.string(), share_id: z.string(), principal_type: z.enum(['user', 'group']), principal_id: z.string(), role: z.enum(roles), created_at: z.string() })
  .openapi('ShareMember');
export const invitationSchema = z
  .object({ id: z.string(), share_id: z.string(), email: z.string(), role: z.enum(roles), status: z.string(), expires_at: z.string(), created_at: z.string() })
  .openapi('Invitation');
export const createdInvitationSchema = invitationSchema.extend({ token: z.string(), accept_url: z.string() });
export const permissionSchema = z.object({ share_id: z.string(), role: z.enum(roles), can: z.object({ read: z.boolean(), write: z.boolean(), manage: z.boolean(), own: z.boolean() }) });
export const invitationResponseSchema = z.object({ share_id: z.string(), status: z.string(), member: memberSchema.nullable() });

export const presentShare = (share: Space, myRole: SpaceRole | null) => ({
  id: share.id,
  name: share.name,
  owner_user_id: share.owner_user_id,
  root_folder_id: share.root_folder_id,
  created_at: iso(share.created_at),
  my_role: myRole,
});

export const presentMember = (member: ShareMember) => ({
  id: member.id,
  share_id: member.share_id,
  principal_type: member.principal_type,
  principal_id: member.principal_id,
  role: member.role,
  created_at: iso(member.created_at),
});

/** A new invitation with the token (shown only in this response) and the URL that accepts it. */
export const presentCreatedInvitation = (invitation: Invitation, token: string, acceptUrlBase: string) => ({
  id: invitation.id,
  share_id: invitation.share_id,
  email: invitation.email,
  role: invitation.role,
  status: invitation.status,
  expires_at: iso(invitation.expires_at),
  created_at: iso(invitation.created_at),
  token,
  accept_url: `${acceptUrlBase}/${token}/accept`,
});

export const presentPermission = (shareId: string, role: SpaceRole) => ({
  share_id: shareId,
  role,
  can: { read: true, write: roleAllows(role, 'write'), manage: roleAllows(role, 'manage'), own: role === 'owner' },
});
