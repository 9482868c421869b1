// JSON shapes of a file version and of a commit (the file with the version just created).
import type { Node, Version } from '../../db/database';
import { z } from '../openapi';
import { nodeSchema, presentNode } from './nodes';
import { iso } from './time';

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
  created_at: iso(version.created_at),
  is_current: version.id === currentVersionId,
});

export const commitSchema = z.object({ file: nodeSchema, version: versionSchema });

export const presentCommit = ({ file, version }: { file: Node; version: Version }) => ({ file: presentNode(file), version: presentVersion(version, file.current_version_id) });
