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
