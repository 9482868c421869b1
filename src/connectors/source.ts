// The source adapter interface every connector kind implements (one folder per kind under src/connectors/),
// and the errors the platform turns into job outcomes: rejected credentials (401), unreachable (502).
import type { Readable } from 'node:stream';

export interface SourceEntry {
  /** The entry's name in its directory. */
  name: string;
  /** Path relative to the connector's root, '/'-separated, no leading slash ('' is the root). */
  path: string;
  kind: 'file' | 'directory';
  size: number;
  mtime: Date;
  /** Delta-fed sources: the item's id (stable across renames and moves) and its content version. */
  id?: string;
  version?: string;
}

/** One item of a source's change feed (delta-fed sources such as SharePoint). */
export interface SourceChange {
  id: string;
  /** The parent's id at the source; null for an item directly in the connector's root folder. */
  parentId: string | null;
  name: string;
  kind: 'file' | 'directory';
  size: number;
  mtime: Date;
  /** Changes exactly when the content changes (SharePoint's cTag). */
  version: string;
  deleted: boolean;
}

export interface ChangePage {
  changes: SourceChange[];
  /** Where the next page of this enumeration is; null on its last page. */
  nextPage: string | null;
  /** On the last page: where the next run continues (opaque; may be long). */
  resumeCursor: string | null;
}

export interface SourcePage {
  entries: SourceEntry[];
  /** Opaque, JSON-safe and small (it travels in workflow payloads); null on the last page. */
  nextPageToken: string | null;
}

/** One open session with a source. Paths are relative to the connector's root. */
export interface ConnectorSource {
  /** Cheap round trip proving the credentials and the root path work. */
  test(): Promise<void>;
  list(directory: string, pageToken?: string | null, pageSize?: number): Promise<SourcePage>;
  stat(path: string): Promise<SourceEntry>;
  /** The file's bytes as a stream: never the whole file in memory. */
  read(path: string): Promise<Readable>;
  /**
   * Delta-fed sources: one page of the change feed from `cursor` (null: a full enumeration from the start;
   * else a page link or the last run's resume cursor). Parents come before their children.
   * Throws SourceResyncRequiredError when the cursor is no longer valid.
   */
  changes?(cursor: string | null): Promise<ChangePage>;
  /** Delta-fed sources: a file's bytes by its id (a path may be ambiguous or already stale). */
  readItem?(id: string, what: string): Promise<Readable>;
  close(): Promise<void>;
}

/** The source refused the credentials: no retry helps (HTTP 401 semantics). */
export class SourceAuthError extends Error {
  readonly code = 'CONNECTOR_AUTH_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'SourceAuthError';
  }
}

/** The source could not be reached (HTTP 502 semantics); retried before a job gives up. */
export class SourceUnreachableError extends Error {
  readonly code = 'CONNECTOR_UNREACHABLE';
  constructor(message: string) {
    super(message);
    this.name = 'SourceUnreachableError';
  }
}

/** One entry is missing or cannot be read: an error row for that path, the job goes on. */
export class SourceEntryError extends Error {
  constructor(
    readonly code: 'SOURCE_NOT_FOUND' | 'SOURCE_ACCESS_DENIED' | 'SOURCE_READ_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'SourceEntryError';
  }
}

/** The change feed's cursor expired (Graph's 410 resyncRequired): enumerate everything again. */
export class SourceResyncRequiredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceResyncRequiredError';
  }
}
