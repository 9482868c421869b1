// Who may do what on a node: resolves the caller's role in the node's space. Invisible → 404, visible but
// not allowed → 403. Personal spaces belong to their owner alone; in a share the effective role is the
// highest of the caller's direct grant and their groups' grants, read fresh on every check (never cached).
import type { Db, Node, Space } from '../db/database';
import { AppError, forbidden, gone, notFound } from '../errors';
import type { Principal } from './principal';

export type SpaceRole = 'owner' | 'admin' | 'contributor' | 'reader';
export type Action = 'read' | 'write' | 'manage';

const allowed: Record<SpaceRole, Action[]> = {
  owner: ['read', 'write', 'manage'],
  admin: ['read', 'write', 'manage'],
  contributor: ['read', 'write'],
  reader: ['read'],
};

const rank: Record<SpaceRole, number> = { reader: 1, contributor: 2, admin: 3, owner: 4 };

export function highestRole(roles: SpaceRole[]): SpaceRole | null {
  return roles.reduce<SpaceRole | null>((best, role) => (best === null || rank[role] > rank[best] ? role : best), null);
}

export function roleAllows(role: SpaceRole, action: Action): boolean {
  return allowed[role].includes(action);
}

export async function roleInSpace(db: Db, principal: Principal, space: Space): Promise<SpaceRole | null> {
  if (principal.kind !== 'user' || principal.tenantId !== space.tenant_id) return null;
  if (space.owner_user_id === principal.userId) return 'owner';
  if (space.kind !== 'share') return null;
  const userId = principal.userId;
  const grants = await db
    .selectFrom('share_members')
    .select('role')
    .where('share_id', '=', space.id)
    .where((eb) =>
      eb.or([
        eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', userId)]),
        eb.and([eb('principal_type', '=', 'group'), eb('principal_id', 'in', eb.selectFrom('group_members').select('group_id').where('user_id', '=', userId))]),
      ]),
    )
    .execute();
  return highestRole(grants.map((g) => g.role));
}

export interface NodeAccess {
  node: Node;
  space: Space;
  role: SpaceRole;
}

/**
 * Loads a node the caller may act on. `trashed: 'gone'` (default) answers 410 for nodes in the trash;
 * `'allow'` returns them (trash endpoints). `kind` narrows to files or folders (the other kind is 404).
 */
export async function accessNode(
  db: Db,
  principal: Principal,
  nodeId: string,
  action: Action,
  options: { kind?: Node['kind']; trashed?: 'gone' | 'allow' } = {},
): Promise<NodeAccess> {
  const what = options.kind === 'folder' ? 'Folder' : options.kind === 'file' ? 'File' : 'Node';
  // The node with its space in one query (every request on a file or folder starts here).
  const row = await db
    .selectFrom('nodes')
    .innerJoin('spaces', 'spaces.id', 'nodes.space_id')
    .selectAll('nodes')
    .select([
      'spaces.tenant_id as space_tenant_id',
      'spaces.kind as space_kind',
      'spaces.name as space_name',
      'spaces.owner_user_id as space_owner_user_id',
      'spaces.root_folder_id as space_root_folder_id',
      'spaces.created_at as space_created_at',
      'spaces.conflict_policy as space_conflict_policy',
    ])
    .where('nodes.id', '=', nodeId)
    .where('nodes.tenant_id', '=', principal.tenantId)
    .executeTakeFirst();
  if (!row || (options.kind && row.kind !== options.kind)) throw notFound(what);
  const { space_tenant_id, space_kind, space_name, space_owner_user_id, space_root_folder_id, space_created_at, space_conflict_policy, ...node } = row;
  const space: Space = {
    id: node.space_id,
    tenant_id: space_tenant_id,
    kind: space_kind,
    name: space_name,
    owner_user_id: space_owner_user_id,
    root_folder_id: space_root_folder_id,
    created_at: space_created_at,
    conflict_policy: space_conflict_policy,
  };
  const role = await roleInSpace(db, principal, space);
  if (!role) throw notFound(what);
  if (node.deleted_at && options.trashed !== 'allow') throw gone(`${what} is in the trash`, 'IN_TRASH');
  if (!roleAllows(role, action)) throw forbidden(`Your role (${role}) does not allow ${action} here`);
  return { node, space, role };
}

/** 423 when someone else holds an unexpired lock on the file. */
export function assertNotLockedByOther(node: Node, principal: Principal): void {
  if (!node.lock_user_id || !node.lock_expires_at || node.lock_expires_at.getTime() <= Date.now()) return;
  if (principal.kind === 'user' && principal.userId === node.lock_user_id) return;
  throw new AppError(423, 'LOCKED', 'The file is locked by another user', {
    locked_by: node.lock_user_id,
    locked_at: node.locked_at?.toISOString() ?? null,
    lock_expires_at: node.lock_expires_at.toISOString(),
  });
}
