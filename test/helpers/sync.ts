// Sync-client helpers for tests: pull the change feed to the end and mirror it into a local tree, the way a real
// sync client applies it (upsert by node id; a deleted folder takes its local subtree; space_removed drops a space).
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { api, type TestStack } from './stack';

const V1 = '/api/v1';

export interface FeedChange {
  seq: number;
  type: string;
  node_id: string | null;
  kind: 'folder' | 'file' | null;
  parent_id: string | null;
  space_id: string;
  version_id: string | null;
  name: string | null;
}

export async function pullPage(stack: TestStack, token: string, cursor: string, options: { limit?: number; spaceId?: string; dispatcher?: Dispatcher } = {}) {
  const query = new URLSearchParams({ cursor, limit: String(options.limit ?? 500), ...(options.spaceId ? { space_id: options.spaceId } : {}) });
  const res = await api(stack.baseUrl, 'GET', `${V1}/sync/changes?${query}`, { token, dispatcher: options.dispatcher });
  assert.equal(res.status, 200, res.text);
  return res.body as { changes: FeedChange[]; next_cursor: string; has_more: boolean };
}

/** Pulls until has_more is false; returns every change and the cursor to continue from. */
export async function pullAll(stack: TestStack, token: string, cursor: string, options: { limit?: number; spaceId?: string } = {}) {
  const changes: FeedChange[] = [];
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'the feed never ends');
    const page = await pullPage(stack, token, cursor, options);
    changes.push(...page.changes);
    cursor = page.next_cursor;
    if (!page.has_more) return { changes, cursor };
  }
}

export interface MirroredNode {
  kind: string | null;
  parent_id: string | null;
  space_id: string;
  name: string | null;
  version_id: string | null;
}

/** A client's local copy of the tree, built only from feed entries. */
export class Mirror {
  readonly nodes = new Map<string, MirroredNode>();

  apply(changes: FeedChange[]): void {
    for (const change of changes) {
      if (change.type === 'space_removed') {
        for (const [id, node] of this.nodes) if (node.space_id === change.space_id) this.nodes.delete(id);
      } else if (change.type === 'deleted' || change.type === 'purged') {
        this.removeSubtree(change.node_id!);
      } else {
        const previous = this.nodes.get(change.node_id!);
        this.nodes.set(change.node_id!, {
          kind: change.kind ?? previous?.kind ?? null,
          parent_id: change.parent_id,
          space_id: change.space_id,
          name: change.name,
          version_id: change.version_id ?? (change.type === 'permissions_changed' ? (previous?.version_id ?? null) : null),
        });
        // A subtree moved to another space moves with its folder (entries for it follow, too).
      }
    }
  }

  private removeSubtree(id: string): void {
    const doomed = new Set([id]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [nodeId, node] of this.nodes) {
        if (!doomed.has(nodeId) && node.parent_id && doomed.has(node.parent_id)) {
          doomed.add(nodeId);
          grew = true;
        }
      }
    }
    for (const nodeId of doomed) this.nodes.delete(nodeId);
  }

  /** `id → "space/parent/name/kind"`, comparable with the server's tree. */
  snapshot(): Map<string, string> {
    return new Map([...this.nodes].map(([id, n]) => [id, `${n.space_id}|${n.parent_id}|${n.name}|${n.kind}|${n.version_id}`]));
  }
}
