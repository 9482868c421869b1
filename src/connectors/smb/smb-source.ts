// The SMB source adapter: the connector platform's ConnectorSource on top of SmbClient, mapping the client's
// errors to the platform's (rejected credentials → 401, unreachable → 502, one unreadable file → error row).
import { PassThrough, type Readable } from 'node:stream';
import { SmbClient, type SmbEntry } from './smb-client';
import { SmbAccessDeniedError, SmbAuthError, SmbError, SmbNotFoundError, SmbProtocolError, SmbUnreachableError } from './smb-errors';
import { SourceAuthError, SourceEntryError, SourceUnreachableError, type ConnectorSource, type SourceEntry, type SourcePage } from '../source';

export interface SmbSourceSettings {
  host: string;
  port: number;
  share: string;
  /** The directory inside the share the connector imports ('' = the share's root). */
  path: string;
  domain?: string | null;
  username: string;
}

/** Joins '/'-separated segments, dropping empty ones and surrounding slashes. */
export function joinPath(...parts: string[]): string {
  return parts
    .flatMap((p) => p.split(/[\\/]+/))
    .filter((p) => p.length > 0)
    .join('/');
}

function mapError(error: unknown, path: string): Error {
  if (error instanceof SmbAuthError) return new SourceAuthError(`SMB server rejected the credentials: ${error.message}`);
  if (error instanceof SmbUnreachableError) return new SourceUnreachableError(`SMB server unreachable: ${error.message}`);
  if (error instanceof SmbNotFoundError) return new SourceEntryError('SOURCE_NOT_FOUND', `${path}: not found`);
  if (error instanceof SmbAccessDeniedError) return new SourceEntryError('SOURCE_ACCESS_DENIED', `${path}: access denied`);
  // A server we cannot talk to correctly (framing, signing, dialect) is as good as unreachable.
  if (error instanceof SmbProtocolError) return new SourceUnreachableError(`SMB protocol error: ${error.message}`);
  if (error instanceof SmbError) return new SourceEntryError('SOURCE_READ_FAILED', `${path}: ${error.statusName}`);
  return error instanceof Error ? error : new Error(String(error));
}

export class SmbSource implements ConnectorSource {
  private constructor(
    private readonly client: SmbClient,
    private readonly root: string,
  ) {}

  static async open(settings: SmbSourceSettings, password: string, timeoutMs = 10_000): Promise<SmbSource> {
    try {
      const client = await SmbClient.connect({
        host: settings.host,
        port: settings.port,
        share: settings.share,
        domain: settings.domain ?? undefined,
        username: settings.username,
        password,
        timeoutMs,
      });
      return new SmbSource(client, joinPath(settings.path));
    } catch (error) {
      throw mapError(error, '');
    }
  }

  private toEntry(entry: SmbEntry, directory: string): SourceEntry {
    return { name: entry.name, path: joinPath(directory, entry.name), kind: entry.kind, size: entry.size, mtime: entry.mtime };
  }

  async test(): Promise<void> {
    await this.list('', null, 1);
  }

  async list(directory: string, pageToken?: string | null, pageSize = 500): Promise<SourcePage> {
    try {
      const page = await this.client.list(joinPath(this.root, directory), pageToken ?? undefined, pageSize);
      const entries = page.entries.filter((e) => e.name !== '.' && e.name !== '..').map((e) => this.toEntry(e, directory));
      return { entries, nextPageToken: page.nextPageToken };
    } catch (error) {
      throw mapError(error, directory);
    }
  }

  async stat(path: string): Promise<SourceEntry> {
    try {
      const entry = await this.client.stat(joinPath(this.root, path));
      const parts = path.split('/');
      return { ...this.toEntry(entry, parts.slice(0, -1).join('/')), name: parts[parts.length - 1] ?? entry.name };
    } catch (error) {
      throw mapError(error, path);
    }
  }

  async read(path: string): Promise<Readable> {
    let stream: Readable;
    try {
      stream = await this.client.read(joinPath(this.root, path));
    } catch (error) {
      throw mapError(error, path);
    }
    // Errors in mid-stream (connection lost, access revoked) get the platform's meaning too.
    const mapped = new PassThrough({ highWaterMark: 0 });
    stream.on('error', (error) => mapped.destroy(mapError(error, path)));
    mapped.on('close', () => stream.destroy());
    return stream.pipe(mapped);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}
