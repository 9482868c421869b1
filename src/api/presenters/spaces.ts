// JSON shape of a space (a user's personal space or a share) with its root folder.
import type { Space } from '../../db/database';
import { z } from '../openapi';
import { iso } from './time';

export const spaceSchema = z
  .object({ id: z.string(), kind: z.enum(['personal', 'share']), name: z.string(), root_folder_id: z.string(), owner_user_id: z.string(), created_at: z.string() })
  .openapi('Space');

export const presentSpace = (space: Space) => ({
  id: space.id,
  kind: space.kind,
  name: space.name,
  root_folder_id: space.root_folder_id,
  owner_user_id: space.owner_user_id,
  created_at: iso(space.created_at),
});
