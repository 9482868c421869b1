// The SharePoint Online source adapter: a document library (drive) of a site through Microsoft Graph, with
// `@microsoft/microsoft-graph-client` (the chosen library) and application tokens (client credentials).
// Resolves the site (URL or id) and the drive (name or id; the default document library), lists folders page by
// page (`children`, `@odata.nextLink` as the page token), reads the delta feed of the connector's folder page by
// page (`@odata.nextLink`, then `@odata.deltaLink`), and streams content from `@microsoft.graph.downloadUrl`
// (pre-authenticated: no bearer token is sent there) with a Range resume when the connection drops mid-file.
import { Readable } from 'node:stream';
import { Client, GraphError, HTTPMessageHandler, AuthenticationHandler } from '@microsoft/microsoft-graph-client';
import { SourceAuthError, SourceEntryError, SourceResyncRequiredError, SourceUnreachableError, type ChangePage, type ConnectorSource, type SourceEntry, type SourcePage } from '../source';
import { GraphTokenSource } from './graph-token';
import { ThrottleHandler } from './throttle-handler';

export interface SharePointSourceSettings {
  azure_tenant_id: string;
  azure_client_id: string;
  /** A site URL (`https://contoso.sharepoint.com/sites/finance`) or a Graph site id. */
  site: string;
  /** A document library's name or drive id; null: the site's default document library. */
  drive?: string | null;
  /** The folder inside the drive the connector imports ('' = the drive's root). */
  folder?: string | null;
}

export interface GraphEndpoints {
  /** The Microsoft identity platform, e.g. `https://login.microsoftonline.com`. */
  authority: string;
  /** Graph's root, e.g. `https://graph.microsoft.com` (the API version is added). */
  graphUrl: string;
}

export interface SharePointSourceOptions extends GraphEndpoints {
  /** Longest a request waits on throttling (429/503 Retry-After) in total. */
  throttleBudgetMs?: number;
  /** Called while waiting on throttling (an activity heartbeats here). */
  onWait?: (waitMs: number, status: number) => void;
  requestTimeoutMs?: number;
}

/** A drive item as Graph returns it (the fields the connector uses). */
export interface DriveItem {
  id: string;
  name?: string;
  size?: number;
  eTag?: string;
  cTag?: string;
  lastModifiedDateTime?: string;
  file?: { mimeType?: string };
  folder?: { childCount?: number };
  root?: object;
  deleted?: { state?: string };
  parentReference?: { driveId?: string; id?: string; path?: string };
  '@microsoft.graph.downloadUrl'?: string;
}

export interface DeltaPage {
  items: DriveItem[];
  /** Where the next page is; null on the last page. */
  nextLink: string | null;
  /** On the last page: where the next run continues. */
  deltaLink: string | null;
}

/** The delta link is no longer valid (Graph's 410 `resyncRequired`): start a full enumeration again. */
export class DeltaResyncRequiredError extends SourceResyncRequiredError {}

const encodePath = (path: string) => path.split('/').filter(Boolean).map(encodeURIComponent).join('/');

function normalizeFolder(folder: string | null | undefined): string {
  return (folder ?? '').split(/[\\/]+/).filter(Boolean).join('/');
}

/** Graph's failure as the platform's: rejected credentials (401), unreachable (502), one entry (error row). */
function mapGraphError(error: unknown, what: string): Error {
  if (error instanceof SourceAuthError || error instanceof SourceUnreachableError || error instanceof SourceEntryError || error instanceof DeltaResyncRequiredError) return error;
  if (error instanceof GraphError) {
    // The client wraps what a middleware threw (our token source's refusals) in a GraphError named after it.
    if (error.code === 'SourceAuthError') return new SourceAuthError(error.message);
    if (error.code === 'SourceUnreachableError') return new SourceUnreachableError(error.message);
    const status = error.statusCode;
    if (status === 410 || error.code === 'resyncRequired') return new DeltaResyncRequiredError(`${what}: ${error.message}`);
    if (status === 401) return new SourceAuthError(`Microsoft Graph refused the application's token for ${what}: ${error.message}`);
    if (status === 403) return new SourceAuthError(`The application may not read ${what}: grant Sites.Read.All (or Sites.Selected for this site) with admin consent (${error.message})`);
    if (status === 404) return new SourceEntryError('SOURCE_NOT_FOUND', `${what}: not found`);
    if (status === 429 || status >= 500 || status === -1 || status === 0) return new SourceUnreachableError(`Microsoft Graph unavailable for ${what}: ${status} ${error.message}`);
    return new SourceEntryError('SOURCE_READ_FAILED', `${what}: ${status} ${error.code ?? ''} ${error.message}`.trim());
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SourceUnreachableError(`Microsoft Graph unreachable for ${what}: ${message}`);
}

export class SharePointSource implements ConnectorSource {
  private constructor(
    private readonly client: Client,
    readonly siteId: string,
    readonly driveId: string,
    /** The connector's folder inside the drive ('' = root). */
    readonly folder: string,
    /** That folder's item id (its children's parentReference.id). */
    readonly rootItemId: string,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Authenticates, resolves the site and the drive (and so proves the settings work). */
  static async open(settings: SharePointSourceSettings, clientSecret: string, options: SharePointSourceOptions): Promise<SharePointSource> {
    const graphUrl = new URL(options.graphUrl);
    const tokens = new GraphTokenSource({
      authority: options.authority,
      azureTenantId: settings.azure_tenant_id,
      clientId: settings.azure_client_id,
      clientSecret,
      scope: `${graphUrl.origin}/.default`,
    });
    const throttle = new ThrottleHandler({ budgetMs: options.throttleBudgetMs ?? 15 * 60_000, onWait: options.onWait, onUnauthorized: () => tokens.invalidate() });
    const auth = new AuthenticationHandler({ getAccessToken: () => tokens.token() });
    throttle.setNext(auth);
    auth.setNext(new HTTPMessageHandler());
    const client = Client.initWithMiddleware({
      middleware: throttle,
      baseUrl: `${graphUrl.origin}${graphUrl.pathname.replace(/\/*$/, '/')}`,
      defaultVersion: 'v1.0',
      // The client only sends the token to, and follows absolute links on, Graph's own hosts and these.
      customHosts: new Set([graphUrl.hostname]),
    });
    const timeoutMs = options.requestTimeoutMs ?? 30_000;
    const siteId = await SharePointSource.resolveSite(client, settings.site);
    const driveId = await SharePointSource.resolveDrive(client, siteId, settings.drive ?? null);
    const folder = normalizeFolder(settings.folder);
    let rootItemId: string;
    try {
      rootItemId = ((await client.api(folder ? `/drives/${driveId}/root:/${encodePath(folder)}:` : `/drives/${driveId}/root`).select('id').get()) as { id: string }).id;
    } catch (error) {
      const mapped = mapGraphError(error, `folder /${folder}`);
      // A folder that does not exist is a setting to fix, like a wrong site: no retry helps.
      throw mapped instanceof SourceEntryError ? new SourceAuthError(`The folder /${folder} does not exist in the document library`) : mapped;
    }
    return new SharePointSource(client, siteId, driveId, folder, rootItemId, timeoutMs);
  }

  private static async resolveSite(client: Client, site: string): Promise<string> {
    try {
      if (/^https:\/\//i.test(site)) {
        const url = new URL(site);
        const path = url.pathname.replace(/\/+$/, '');
        const found = (await client.api(path ? `/sites/${url.hostname}:${path}` : `/sites/${url.hostname}`).select('id').get()) as { id: string };
        return found.id;
      }
      return ((await client.api(`/sites/${encodeURIComponent(site)}`).select('id').get()) as { id: string }).id;
    } catch (error) {
      const mapped = mapGraphError(error, `site ${site}`);
      throw mapped instanceof SourceEntryError ? new SourceAuthError(`The site ${site} was not found or the application may not see it`) : mapped;
    }
  }

  private static async resolveDrive(client: Client, siteId: string, drive: string | null): Promise<string> {
    try {
      if (!drive) return ((await client.api(`/sites/${siteId}/drive`).select('id').get()) as { id: string }).id;
      const drives = (await client.api(`/sites/${siteId}/drives`).select('id,name').get()) as { value: { id: string; name: string }[] };
      const match = drives.value.find((d) => d.id === drive) ?? drives.value.find((d) => d.name.toLowerCase() === drive.toLowerCase());
      if (!match) throw new SourceAuthError(`The site has no document library "${drive}" (it has: ${drives.value.map((d) => d.name).join(', ')})`);
      return match.id;
    } catch (error) {
      throw mapGraphError(error, `drive ${drive ?? '(default)'}`);
    }
  }

  /** The item API path of a path relative to the connector's folder. */
  private itemPath(relative: string): string {
    const full = [this.folder, relative].filter(Boolean).join('/');
    return full ? `/drives/${this.driveId}/root:/${encodePath(full)}:` : `/drives/${this.driveId}/root`;
  }

  async test(): Promise<void> {
    try {
      await this.client.api(this.itemPath('')).select('id,folder').get();
    } catch (error) {
      throw mapGraphError(error, `folder /${this.folder}`);
    }
  }

  private toEntry(item: DriveItem, directory: string): SourceEntry {
    const name = item.name ?? item.id;
    return {
      name,
      path: directory ? `${directory}/${name}` : name,
      kind: item.folder || item.root ? 'directory' : 'file',
      size: Number(item.size ?? 0),
      mtime: new Date(item.lastModifiedDateTime ?? 0),
    };
  }

  async list(directory: string, pageToken?: string | null, pageSize = 500): Promise<SourcePage> {
    try {
      const page = (pageToken
        ? await this.client.api(pageToken).get()
        : await this.client.api(`${this.itemPath(directory)}/children`).select('id,name,size,file,folder,lastModifiedDateTime,eTag').top(pageSize).get()) as { value: DriveItem[]; '@odata.nextLink'?: string };
      return { entries: page.value.map((item) => this.toEntry(item, directory)), nextPageToken: page['@odata.nextLink'] ?? null };
    } catch (error) {
      throw mapGraphError(error, `/${directory}`);
    }
  }

  async stat(path: string): Promise<SourceEntry> {
    try {
      const item = (await this.client.api(this.itemPath(path)).select('id,name,size,file,folder,lastModifiedDateTime').get()) as DriveItem;
      const directory = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
      return this.toEntry(item, directory);
    } catch (error) {
      throw mapGraphError(error, `/${path}`);
    }
  }

  /**
   * One page of the delta feed of the connector's folder: from the start (`link` null), from a page's
   * `nextLink`, or from the last run's `deltaLink`. A 410 / resyncRequired is DeltaResyncRequiredError.
   */
  async delta(link: string | null): Promise<DeltaPage> {
    try {
      const page = (link ? await this.client.api(link).get() : await this.client.api(`${this.itemPath('')}/delta`).get()) as {
        value: DriveItem[];
        '@odata.nextLink'?: string;
        '@odata.deltaLink'?: string;
      };
      return { items: page.value, nextLink: page['@odata.nextLink'] ?? null, deltaLink: page['@odata.deltaLink'] ?? null };
    } catch (error) {
      throw mapGraphError(error, `the delta feed of /${this.folder}`);
    }
  }

  /** The delta feed as the platform's change pages: ids, parents by id (delta carries no paths), versions by cTag. */
  async changes(cursor: string | null): Promise<ChangePage> {
    const page = await this.delta(cursor);
    const changes = page.items
      .filter((item) => item.id !== this.rootItemId && !item.root)
      .map((item) => ({
        id: item.id,
        parentId: !item.parentReference?.id || item.parentReference.id === this.rootItemId ? null : item.parentReference.id,
        name: item.name ?? item.id,
        kind: item.folder ? ('directory' as const) : ('file' as const),
        size: Number(item.size ?? 0),
        mtime: new Date(item.lastModifiedDateTime ?? 0),
        version: item.cTag ?? item.eTag ?? '',
        deleted: Boolean(item.deleted),
      }));
    return { changes, nextPage: page.nextLink, resumeCursor: page.deltaLink };
  }

  /** A file's download URL, fresh (they expire after about an hour). */
  private async downloadUrl(path: string): Promise<string> {
    try {
      const item = (await this.client.api(this.itemPath(path)).select('id,@microsoft.graph.downloadUrl').get()) as DriveItem;
      const url = item['@microsoft.graph.downloadUrl'];
      if (!url) throw new SourceEntryError('SOURCE_READ_FAILED', `/${path}: not a file`);
      return url;
    } catch (error) {
      throw mapGraphError(error, `/${path}`);
    }
  }

  async read(path: string): Promise<Readable> {
    return this.readUrl(await this.downloadUrl(path), path);
  }

  async readItem(id: string, what: string): Promise<Readable> {
    let url: string | undefined;
    try {
      url = ((await this.client.api(`/drives/${this.driveId}/items/${encodeURIComponent(id)}`).select('id,@microsoft.graph.downloadUrl').get()) as DriveItem)['@microsoft.graph.downloadUrl'];
    } catch (error) {
      throw mapGraphError(error, `/${what}`);
    }
    if (!url) throw new SourceEntryError('SOURCE_READ_FAILED', `/${what}: not a file`);
    return this.readUrl(url, what);
  }

  /**
   * Streams a download URL (pre-authenticated: no Authorization header goes there). When the connection
   * drops mid-file, the rest is requested with a Range from the first byte not yet delivered (3 times at most),
   * so the consumer sees one uninterrupted, byte-exact stream.
   */
  readUrl(url: string, what: string): Readable {
    const timeoutMs = this.requestTimeoutMs;
    let delivered = 0;
    let resumes = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (;;) {
        let response: Response;
        // The timeout covers connecting and the headers; the body may take as long as it needs.
        const headersArrived = new AbortController();
        const timer = setTimeout(() => headersArrived.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        try {
          response = await fetch(url, { headers: delivered > 0 ? { range: `bytes=${delivered}-` } : {}, signal: headersArrived.signal });
        } catch (error) {
          if (resumes++ < 3) continue;
          throw new SourceUnreachableError(`download of /${what} failed: ${(error as Error).message}`);
        } finally {
          clearTimeout(timer);
        }
        if (delivered > 0 && response.status !== 206) throw new SourceEntryError('SOURCE_READ_FAILED', `/${what}: the server cannot resume the download (${response.status})`);
        if (response.status === 404 || response.status === 410) throw new SourceEntryError('SOURCE_NOT_FOUND', `/${what}: gone`);
        if (response.status === 401 || response.status === 403) throw new SourceEntryError('SOURCE_ACCESS_DENIED', `/${what}: the download URL was refused (${response.status})`);
        if (!response.ok || !response.body) throw new SourceUnreachableError(`download of /${what}: ${response.status}`);
        try {
          for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
            delivered += part.byteLength;
            yield Buffer.from(part.buffer, part.byteOffset, part.byteLength);
          }
          return;
        } catch (error) {
          if (resumes++ < 3) continue;
          throw new SourceUnreachableError(`download of /${what} broke off after ${delivered} bytes: ${(error as Error).message}`);
        }
      }
    }
    return Readable.from(body(), { objectMode: false });
  }

  async close(): Promise<void> {
    // Stateless HTTPS: nothing to close.
  }
}
