// SmbClient: the SMB 2.x client the SMB connector uses (connect, paged listing, stat, streamed reads).
//
// Why a wrapper and not a patch: @marsaud/smb2 0.18.0 (the chosen library) authenticates with NTLMv1 only
// (refused by Samba's default `ntlm auth = ntlmv2-only` and by current Windows, and its DES needs OpenSSL's
// legacy provider on Node 20), treats Samba's interim STATUS_PENDING answer to async reads and writes as an error
// (upstream issue #78), cannot sign messages (servers with `server signing = mandatory`, Windows Server 2025's
// default, refuse it), reads with one 64 KiB request at a time, and lists a directory with a single
// QUERY_DIRECTORY call. Those faults sit in its connection core (callback chain, one error-handler stack per
// socket, response demultiplexing, a 32-bit header encoder), so a patch would rewrite most of that core inside
// node_modules, untyped and untested. Instead this folder keeps the library's request encoding (its structure
// tables, via smb2-message.js) and its NTSTATUS table, and replaces the rest with small typed modules:
//   ntlm.ts            NTLMv2 (HMAC-MD5 from node:crypto, MD4 from hash-wasm) with a MIC
//   smb2-transport.ts  framing, message ids and credits (multi-credit reads on SMB 2.1), interim STATUS_PENDING
//                      handling (wait for the final response with the same message id), per-request deadlines
//   smb2-signing.ts    HMAC-SHA256 signing and verification (MS-SMB2 3.1.4.1, SMB 2.0.2 and 2.1)
//   smb2-messages.ts   request bodies (library tables) and response decoding
//   smb-paths.ts       path rules and the resumable listing cursor
// Dialects: 2.0.2 and 2.1 (no SMB 3 encryption or AES-CMAC signing yet).
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { authenticateMessage, negotiateMessage } from './ntlm';
import {
  Access,
  CreateOptions,
  Dialect,
  GlobalCapabilities,
  SecurityMode,
  SessionFlags,
  closeRequest,
  createRequest,
  fileAttributeDirectory,
  negotiateRequest,
  parseCreateResponse,
  parseNegotiateResponse,
  parseQueryDirectoryResponse,
  parseReadResponse,
  parseSessionSetupResponse,
  queryDirectoryRequest,
  readRequest,
  sessionSetupRequest,
  treeConnectRequest,
  type DirectoryRecord,
} from './smb2-messages';
import { verifyMessage } from './smb2-signing';
import { Smb2Transport, type Smb2Response, type TransportStatistics } from './smb2-transport';
import { compareNames, decodePageToken, encodePageToken, joinPath, normalizePath, wirePath } from './smb-paths';
import { NtStatus, SmbAuthError, SmbError, SmbProtocolError, errorForStatus } from './smb-errors';

export {
  SmbAccessDeniedError,
  SmbAuthError,
  SmbError,
  SmbNotFoundError,
  SmbProtocolError,
  SmbTimeoutError,
  SmbUnreachableError,
} from './smb-errors';

export interface SmbConnectionOptions {
  host: string;
  port: number;
  share: string;
  domain?: string;
  username: string;
  password: string;
  /** Bound on every request (and on the TCP connect); default 30 s. */
  timeoutMs?: number;
}

export interface SmbEntry {
  name: string;
  /** Relative to the share, '/'-separated, no leading slash. */
  path: string;
  kind: 'file' | 'directory';
  size: number;
  mtime: Date;
}

export interface SmbListPage {
  entries: SmbEntry[];
  nextPageToken: string | null;
}

const defaultTimeoutMs = 30_000;
const defaultPageSize = 1_000;
const maxPageSize = 10_000;
/** Read size per request: 1 MiB on SMB 2.1 with large MTU (16 credits), else the 64 KiB every server accepts. */
const largeReadSize = 1024 * 1024;
const smallReadSize = 64 * 1024;
/** Reads in flight per stream: enough to keep loopback and LAN links busy, memory stays a few MiB. */
const readsInFlight = 4;
/** Directories whose sorted listing stays cached between pages (a sync walks one or two at a time). */
const cachedListings = 4;

function entryFrom(directory: string, record: DirectoryRecord): SmbEntry {
  const directoryFlag = (record.attributes & fileAttributeDirectory) !== 0;
  return {
    name: record.name,
    path: joinPath(directory, record.name),
    kind: directoryFlag ? 'directory' : 'file',
    size: directoryFlag ? 0 : record.endOfFile,
    mtime: record.lastWriteTime,
  };
}

export class SmbClient {
  /** Sorted listings by directory, most recently used last; a first page (no token) always lists afresh. */
  private readonly listings = new Map<string, SmbEntry[]>();

  private constructor(
    private readonly transport: Smb2Transport,
    private readonly treeId: number,
    private readonly readSize: number,
  ) {}

  /** Connects, authenticates with NTLMv2 and opens the share. Throws SmbAuthError or SmbUnreachableError. */
  static async connect(options: SmbConnectionOptions): Promise<SmbClient> {
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const transport = await Smb2Transport.connect(options.host, options.port, timeoutMs);
    try {
      const negotiated = parseNegotiateResponse(ok(await transport.request(negotiateRequest(randomBytes(16))), 'NEGOTIATE'));
      if (negotiated.dialect !== Dialect.SMB202 && negotiated.dialect !== Dialect.SMB210) {
        throw new SmbProtocolError(`server chose unsupported dialect 0x${negotiated.dialect.toString(16)}`, null, 'UNSUPPORTED_DIALECT');
      }
      transport.multiCredit = negotiated.dialect === Dialect.SMB210 && (negotiated.capabilities & GlobalCapabilities.LARGE_MTU) !== 0;
      const signingRequired = (negotiated.securityMode & SecurityMode.SIGNING_REQUIRED) !== 0;

      // NTLMSSP travels raw in the security buffers; Samba and Windows both accept it without a SPNEGO wrapper.
      const negotiate = negotiateMessage();
      const first = await transport.request(sessionSetupRequest(negotiate));
      if (first.header.status !== NtStatus.MORE_PROCESSING_REQUIRED) throw errorForStatus(first.header.status, 'SESSION_SETUP (negotiate)');
      transport.sessionId = first.header.sessionId;
      const challenge = parseSessionSetupResponse(first.message).securityBuffer;
      const { message: authenticate, sessionKey } = await authenticateMessage({
        user: options.username,
        domain: options.domain ?? '',
        password: options.password,
        workstation: 'SCAIDRIVE',
        negotiate,
        challenge,
      });
      const second = await transport.request(sessionSetupRequest(authenticate));
      ok(second, 'SESSION_SETUP (authenticate)');
      const { sessionFlags } = parseSessionSetupResponse(second.message);
      if (sessionFlags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL)) {
        // A guest session would silently show another account's view of the share, and cannot sign.
        throw new SmbAuthError('server logged us in as guest or anonymous instead of the given user', NtStatus.LOGON_FAILURE);
      }
      if (signingRequired) {
        // The server signs its final SESSION_SETUP answer with the new session key: proof both sides derived it.
        if (!verifyMessage(sessionKey, second.message)) throw new SmbProtocolError('SESSION_SETUP response is not validly signed', null, 'BAD_SIGNATURE');
        transport.signingKey = sessionKey;
      }

      const tree = await transport.request(treeConnectRequest(`\\\\${options.host}\\${options.share}`));
      ok(tree, `TREE_CONNECT \\\\${options.host}\\${options.share}`);
      const readSize = Math.min(negotiated.maxReadSize, transport.multiCredit ? largeReadSize : smallReadSize);
      return new SmbClient(transport, tree.header.treeId, readSize);
    } catch (error) {
      await transport.close();
      throw error;
    }
  }

  /** True when this session signs its requests and verifies every response (the server requires signing). */
  get signing(): boolean {
    return this.transport.signingKey !== null;
  }

  /** Protocol counters (requests, interim responses, signatures), for tests and diagnostics. */
  get statistics(): Readonly<TransportStatistics> {
    return this.transport.statistics;
  }

  /**
   * One page of a directory, in ordinal name order. `pageToken` is the previous page's `nextPageToken`; it stays
   * valid on another connection. Entries '.' and '..' are left out.
   */
  async list(directory: string, pageToken?: string, pageSize = defaultPageSize): Promise<SmbListPage> {
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize) {
      throw new SmbError(`pageSize must be an integer from 1 to ${maxPageSize}`, NtStatus.INVALID_PARAMETER);
    }
    const normalized = normalizePath(directory);
    const after = pageToken ? decodePageToken(pageToken, normalized) : null;
    let listing = after === null ? undefined : this.listings.get(normalized);
    if (!listing) listing = await this.listDirectory(normalized);
    this.listings.delete(normalized);
    this.listings.set(normalized, listing);
    for (const key of this.listings.keys()) if (this.listings.size > cachedListings) this.listings.delete(key);

    const start = after === null ? 0 : firstAfter(listing, after);
    const entries = listing.slice(start, start + pageSize);
    const more = start + pageSize < listing.length;
    if (!more) this.listings.delete(normalized);
    return { entries, nextPageToken: more ? encodePageToken(normalized, entries[entries.length - 1]!.name) : null };
  }

  /** The entry at `path`. SmbNotFoundError when absent. */
  async stat(path: string): Promise<SmbEntry> {
    const normalized = normalizePath(path);
    const opened = await this.open(normalized, Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE, 0);
    await this.closeHandle(opened.fileId);
    const slash = normalized.lastIndexOf('/');
    return entryFrom(normalized.slice(0, Math.max(0, slash)), { ...opened, name: normalized.slice(slash + 1) });
  }

  /**
   * The file's bytes as a stream of bounded memory (at most a few reads in flight, paced by the consumer).
   * SmbAccessDeniedError when the server refuses to open it for reading, SmbNotFoundError when absent; a file that
   * shrinks while being read ends the stream with an error rather than short data.
   */
  async read(path: string): Promise<Readable> {
    const normalized = normalizePath(path);
    const opened = await this.open(normalized, Access.FILE_READ_DATA | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE, CreateOptions.FILE_NON_DIRECTORY_FILE);
    return new SmbFileStream(this, opened.fileId, opened.endOfFile, this.readSize, normalized);
  }

  async close(): Promise<void> {
    this.listings.clear();
    await this.transport.close();
  }

  /** @internal One READ at `offset`; used by SmbFileStream. */
  async readChunk(fileId: Buffer, offset: number, length: number, path: string): Promise<Buffer> {
    const response = await this.transport.request(readRequest(fileId, offset, length), { treeId: this.treeId, creditCharge: Math.ceil(length / 65536) });
    if (response.header.status === NtStatus.END_OF_FILE) return Buffer.alloc(0);
    return parseReadResponse(ok(response, `READ ${path}`));
  }

  /** @internal */
  async closeHandle(fileId: Buffer): Promise<void> {
    if (this.transport.closed) return;
    ok(await this.transport.request(closeRequest(fileId), { treeId: this.treeId }), 'CLOSE');
  }

  private async open(normalized: string, access: number, createOptions: number) {
    const response = await this.transport.request(createRequest(wirePath(normalized), access, createOptions), { treeId: this.treeId });
    return parseCreateResponse(ok(response, `CREATE ${JSON.stringify(normalized)}`));
  }

  /** Every entry of a directory, sorted: QUERY_DIRECTORY repeated until STATUS_NO_MORE_FILES. */
  private async listDirectory(directory: string): Promise<SmbEntry[]> {
    const opened = await this.open(directory, Access.FILE_LIST_DIRECTORY | Access.FILE_READ_ATTRIBUTES | Access.SYNCHRONIZE, CreateOptions.FILE_DIRECTORY_FILE);
    const entries: SmbEntry[] = [];
    try {
      for (;;) {
        const response = await this.transport.request(queryDirectoryRequest(opened.fileId, 64 * 1024), { treeId: this.treeId });
        if (response.header.status === NtStatus.NO_MORE_FILES) break;
        for (const record of parseQueryDirectoryResponse(ok(response, `QUERY_DIRECTORY ${JSON.stringify(directory)}`))) {
          if (record.name !== '.' && record.name !== '..') entries.push(entryFrom(directory, record));
        }
      }
    } finally {
      await this.closeHandle(opened.fileId).catch(() => undefined);
    }
    return entries.sort((a, b) => compareNames(a.name, b.name));
  }
}

/** The response's message when its status is success; otherwise the matching SmbError. */
function ok(response: Smb2Response, what: string): Buffer {
  if (response.header.status !== NtStatus.SUCCESS) throw errorForStatus(response.header.status, what);
  return response.message;
}

/** Index of the first entry whose name sorts after `name` (binary search). */
function firstAfter(listing: SmbEntry[], name: string): number {
  let low = 0;
  let high = listing.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareNames(listing[middle]!.name, name) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A file as a Readable: ordered, pipelined READs, paced by the consumer through push()'s backpressure. */
class SmbFileStream extends Readable {
  private readonly inFlight: Promise<Buffer>[] = [];
  private nextOffset = 0;
  private delivered = 0;
  private pumping = false;
  private handleOpen = true;

  constructor(
    private readonly client: SmbClient,
    private readonly fileId: Buffer,
    private readonly size: number,
    private readonly chunkSize: number,
    private readonly path: string,
  ) {
    super({ highWaterMark: chunkSize });
  }

  override _read(): void {
    void this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Reads still in flight settle on their own; their results are dropped.
    for (const read of this.inFlight.splice(0)) read.catch(() => undefined);
    this.releaseHandle().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private async releaseHandle(): Promise<void> {
    if (!this.handleOpen) return;
    this.handleOpen = false;
    await this.client.closeHandle(this.fileId);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        while (this.inFlight.length < readsInFlight && this.nextOffset < this.size) {
          const length = Math.min(this.chunkSize, this.size - this.nextOffset);
          const read = this.client.readChunk(this.fileId, this.nextOffset, length, this.path);
          read.catch(() => undefined); // observed below, in order; avoid an unhandled rejection meanwhile
          this.inFlight.push(read);
          this.nextOffset += length;
        }
        const head = this.inFlight.shift();
        if (!head) {
          await this.releaseHandle();
          if (!this.destroyed) this.push(null);
          return;
        }
        const expected = Math.min(this.chunkSize, this.size - this.delivered);
        const data = await head;
        if (this.destroyed) return;
        if (data.length !== expected) {
          throw new SmbError(`${this.path} changed while being read (got ${data.length} bytes at offset ${this.delivered}, expected ${expected})`, NtStatus.END_OF_FILE);
        }
        this.delivered += data.length;
        if (!this.push(data)) return; // the consumer is full; _read() resumes us
      }
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.pumping = false;
    }
  }
}
