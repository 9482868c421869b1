// Names and tree: one database-made name key (NFC, lower-cased) behind the sibling unique index, the
// sibling lookups and the children cursor; an index on parent_id for the subtree walks of trash and purge.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The one rule for comparing names. A SQL-standard body is parsed once, so the generated column below
  // does not depend on the search_path at run time; `immutable` is what a generated column requires.
  await sql`create function node_name_key(name text) returns text language sql immutable strict parallel safe
    return lower(normalize(name, nfc))`.execute(db);

  // Live siblings that only differed by normalisation (café / cafe + U+0301) or by a case mapping the old
  // key did not share would collide in the new index: all but the oldest id get their id appended.
  await sql`update nodes n set name = n.name || ' (' || n.id || ')'
    from (select id, row_number() over (partition by parent_id, node_name_key(name) order by id) as rank
          from nodes where deleted_at is null) d
    where d.id = n.id and d.rank > 1`.execute(db);
  // Names are stored in NFC from now on.
  await sql`update nodes set name = normalize(name, nfc) where name is not nfc normalized`.execute(db);
  await sql`update upload_sessions set name = normalize(name, nfc) where name is not nfc normalized`.execute(db);

  await sql`alter table nodes add column name_key text generated always as (node_name_key(name)) stored`.execute(db);
  await sql`drop index nodes_live_sibling_name_unique`.execute(db);
  await sql`drop index nodes_children_idx`.execute(db);
  await sql`create unique index nodes_live_sibling_name_unique on nodes (parent_id, name_key) where deleted_at is null`.execute(db);
  // Children listing: keyset on (name_key, id) among live siblings — the cursor carries exactly this key.
  await sql`create index nodes_children_idx on nodes (parent_id, name_key, id) where deleted_at is null`.execute(db);
  // Subtree walks (trash, restore, purge, cross-space moves) also follow trashed children.
  await sql`create index nodes_parent_idx on nodes (parent_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists nodes_parent_idx`.execute(db);
  await sql`drop index if exists nodes_children_idx`.execute(db);
  await sql`drop index if exists nodes_live_sibling_name_unique`.execute(db);
  await sql`alter table nodes drop column if exists name_key`.execute(db);
  await sql`drop function if exists node_name_key(text)`.execute(db);
  await sql`create unique index nodes_live_sibling_name_unique on nodes (parent_id, lower(name)) where deleted_at is null`.execute(db);
  await sql`create index nodes_children_idx on nodes (parent_id, lower(name), id) where deleted_at is null`.execute(db);
}
