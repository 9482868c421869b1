// Files: spaces, the node tree, versions as chunk manifests, the chunk registry, upload sessions, quotas,
// and the change log.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('spaces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('personal', 'share')`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('owner_user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('root_folder_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One personal space per user.
  await sql`create unique index spaces_personal_owner_unique on spaces (owner_user_id) where kind = 'personal'`.execute(db);

  await db.schema
    .createTable('nodes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('space_id', 'text', (c) => c.notNull().references('spaces.id').onDelete('cascade'))
    .addColumn('parent_id', 'text', (c) => c.references('nodes.id'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('folder', 'file')`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('current_version_id', 'text')
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('checksum_sha256', 'text')
    .addColumn('created_by', 'text', (c) => c.references('users.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Trash: every node under a deleted folder gets deleted_at; trash_root marks the node the user deleted.
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('deleted_by', 'text')
    .addColumn('trash_root', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('lock_user_id', 'text')
    .addColumn('lock_expires_at', 'timestamptz')
    .addColumn('locked_at', 'timestamptz')
    .execute();
  // Sibling names are unique among live nodes, compared case-insensitively.
  await sql`create unique index nodes_live_sibling_name_unique on nodes (parent_id, lower(name)) where deleted_at is null`.execute(db);
  // Children listing: keyset on (lower(name), id) among live siblings — an index-only walk on 50k+ children.
  await sql`create index nodes_children_idx on nodes (parent_id, lower(name), id) where deleted_at is null`.execute(db);
  await sql`create index nodes_trash_idx on nodes (tenant_id, deleted_at, id) where trash_root`.execute(db);
  await sql`create index nodes_space_idx on nodes (space_id)`.execute(db);

  await db.schema
    .createTable('versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('file_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('checksum_sha256', 'text', (c) => c.notNull())
    .addColumn('chunk_count', 'integer', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.references('users.id'))
    // The upload that produced it: a retried commit finds the version it already made.
    .addColumn('upload_id', 'text', (c) => c.unique())
    // Charged quota subjects, so a purge refunds exactly what was charged.
    .addColumn('charged', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('versions_file_number_unique', ['file_id', 'number'])
    .execute();

  await sql`create index versions_charged_idx on versions using gin (charged jsonb_path_ops)`.execute(db);

  await db.schema
    .createTable('version_chunks')
    .addColumn('version_id', 'text', (c) => c.notNull().references('versions.id').onDelete('cascade'))
    .addColumn('index', 'integer', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('offset', 'bigint', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('version_chunks_pk', ['version_id', 'index'])
    .execute();
  await db.schema.createIndex('version_chunks_chunk_idx').on('version_chunks').columns(['tenant_id', 'sha256']).execute();

  // The chunk registry: one row per stored chunk object ({tenant}/chunks/{sha256}).
  await db.schema
    .createTable('chunks')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Touched whenever an upload relies on the chunk; the sweep leaves anything touched within its grace period.
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('chunks_pk', ['tenant_id', 'sha256'])
    .execute();

  await db.schema
    .createTable('upload_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('space_id', 'text', (c) => c.notNull().references('spaces.id').onDelete('cascade'))
    .addColumn('parent_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('chunk_size', 'integer', (c) => c.notNull())
    .addColumn('chunk_count', 'integer', (c) => c.notNull())
    .addColumn('checksum_sha256', 'text')
    .addColumn('base_version_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
    .addColumn('error_code', 'text')
    .addColumn('error_detail', 'text')
    .addColumn('file_id', 'text')
    .addColumn('version_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('upload_sessions_expiry_idx').on('upload_sessions').columns(['status', 'expires_at']).execute();

  await db.schema
    .createTable('upload_chunks')
    .addColumn('upload_id', 'text', (c) => c.notNull().references('upload_sessions.id').onDelete('cascade'))
    .addColumn('index', 'integer', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('upload_chunks_pk', ['upload_id', 'index'])
    .execute();
  await db.schema.createIndex('upload_chunks_chunk_idx').on('upload_chunks').columns(['tenant_id', 'sha256']).execute();
  await db.schema.createIndex('upload_chunks_user_idx').on('upload_chunks').columns(['user_id', 'sha256']).execute();

  await db.schema
    .createTable('quotas')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('level', 'text', (c) => c.notNull().check(sql`level in ('user', 'group', 'share', 'tenant', 'partner')`))
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('limit_bytes', 'bigint')
    .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('calculated_at', 'timestamptz')
    .addPrimaryKeyConstraint('quotas_pk', ['level', 'subject_id'])
    .execute();

  await db.schema
    .createTable('change_log')
    .addColumn('seq', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) =>
      c.notNull().check(sql`type in ('created', 'updated', 'moved', 'renamed', 'deleted', 'restored', 'purged', 'permissions_changed')`),
    )
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    .addColumn('space_id', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text')
    .addColumn('name', 'text')
    .addColumn('actor_id', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('change_log_tenant_seq_idx').on('change_log').columns(['tenant_id', 'seq']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['change_log', 'quotas', 'upload_chunks', 'upload_sessions', 'chunks', 'version_chunks', 'versions', 'nodes', 'spaces']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
