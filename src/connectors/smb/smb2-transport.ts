// One SMB2 connection: direct-TCP framing, message ids and credits, interim STATUS_PENDING responses, signing,
// and a deadline on every request. Commands and their bodies live in smb2-messages; the session logic in smb-client.
import net from 'node:net';
import { Command, HeaderFlags, headerLength, parseHeader, type Smb2Header } from './smb2-messages';
import { signMessage, verifyMessage } from './smb2-signing';
import { NtStatus, SmbProtocolError, SmbTimeoutError, SmbUnreachableError, type SmbError } from './smb-errors';

export interface Smb2Response {
  header: Smb2Header;
  message: Buffer;
}

interface PendingRequest {
  command: number;
  resolve: (response: Smb2Response) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** Set once an interim STATUS_PENDING arrived: the final answer comes later with the same message id. */
  interim: boolean;
}

export interface TransportStatistics {
  requests: number;
  interimResponses: number;
  signedRequests: number;
  verifiedResponses: number;
}

/** Credits we ask for in every request; Samba and Windows cap the grant to their own limit (8192 by default). */
const creditRequest = 256;
/** The largest frame a direct-TCP header can announce (24-bit length). */
const maxFrameLength = 0xffffff;

export class Smb2Transport {
  private readonly pending = new Map<number, PendingRequest>();
  private readonly creditWaiters: Array<() => void> = [];
  private nextMessageId = 0;
  /** Credits granted and not yet spent; the negotiate request may use the one implicit credit. */
  private credits = 1;
  /** Requests holding credits whose final response has not arrived (includes ones not yet written). */
  private outstanding = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private frameLength: number | null = null;
  private failure: SmbError | null = null;

  sessionId = 0n;
  /** When set, requests are signed and every final response must carry a valid signature. */
  signingKey: Buffer | null = null;
  /** SMB 2.1 with LARGE_MTU: requests above 64 KiB charge one credit per 64 KiB. */
  multiCredit = false;
  readonly statistics: TransportStatistics = { requests: 0, interimResponses: 0, signedRequests: 0, verifiedResponses: 0 };

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new SmbUnreachableError(`connection failed: ${error.message}`, null, error.code ?? 'SOCKET_ERROR')));
    socket.on('close', () => this.fail(new SmbUnreachableError('connection closed by the server', null, 'CONNECTION_CLOSED')));
  }

  /** Opens the TCP connection; refused or silent hosts fail within timeoutMs as SmbUnreachableError. */
  static connect(host: string, port: number, timeoutMs: number): Promise<Smb2Transport> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SmbTimeoutError(`no TCP connection to ${host}:${port} within ${timeoutMs} ms`, null, 'CONNECT_TIMEOUT'));
      }, timeoutMs);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new SmbUnreachableError(`cannot connect to ${host}:${port}: ${error.message}`, null, error.code ?? 'SOCKET_ERROR'));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Smb2Transport(socket, timeoutMs));
      });
    });
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /**
   * Sends one request (a message from smb2-messages) and resolves with the final response, whatever its status.
   * `creditCharge` is the number of 64 KiB units the request or its response spans (1 for small requests).
   */
  async request(message: Buffer, options: { treeId?: number; creditCharge?: number } = {}): Promise<Smb2Response> {
    const charge = this.multiCredit ? Math.max(1, options.creditCharge ?? 1) : 1;
    await this.acquireCredits(charge);
    if (this.failure) throw this.failure;

    const messageId = this.nextMessageId;
    this.nextMessageId += charge; // a multi-credit request consumes `charge` message ids
    message.writeUInt16LE(this.multiCredit ? charge : 0, 6); // CreditCharge must be 0 on SMB 2.0.2
    message.writeUInt16LE(creditRequest, 14);
    message.writeUInt32LE(0, 16);
    message.writeBigUInt64LE(BigInt(messageId), 24);
    message.writeUInt32LE(0xfeff, 32);
    message.writeUInt32LE(options.treeId ?? 0, 36);
    message.writeBigUInt64LE(this.sessionId, 40);
    if (this.signingKey) {
      signMessage(this.signingKey, message);
      this.statistics.signedRequests += 1;
    }
    if (message.length > maxFrameLength) throw new SmbProtocolError('request too large', null, 'REQUEST_TOO_LARGE');

    const frame = Buffer.alloc(4 + message.length);
    frame.writeUInt32BE(message.length, 0); // direct TCP: a zero byte, then a 24-bit length
    message.copy(frame, 4);

    return new Promise<Smb2Response>((resolve, reject) => {
      const command = message.readUInt16LE(12);
      const timer = setTimeout(() => {
        // A request without an answer leaves the credit window and the server's state unknown: close the connection.
        this.fail(new SmbTimeoutError(`no answer to SMB2 command ${command} within ${this.timeoutMs} ms`, null, 'REQUEST_TIMEOUT'), messageId);
      }, this.timeoutMs);
      this.pending.set(messageId, { command, resolve, reject, timer, interim: false });
      this.statistics.requests += 1;
      this.socket.write(frame);
    });
  }

  /** Closes the connection; pending requests fail as unreachable. */
  async close(): Promise<void> {
    this.fail(new SmbUnreachableError('connection closed by the client', null, 'CLIENT_CLOSED'));
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (this.socket.destroy(), resolve()), 1_000);
      this.socket.once('close', () => (clearTimeout(timer), resolve()));
      this.socket.end();
    });
  }

  private async acquireCredits(charge: number): Promise<void> {
    while (this.credits < charge && !this.failure) {
      if (this.outstanding === 0) {
        // Nothing outstanding that could grant more: the server left us short (it must grant at least one).
        this.fail(new SmbProtocolError(`server granted ${this.credits} credits, request needs ${charge}`, null, 'NO_CREDITS'));
        break;
      }
      await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
    }
    this.credits -= charge;
    this.outstanding += 1;
  }

  private grantCredits(granted: number): void {
    if (granted === 0) return;
    this.credits += granted;
    for (const wake of this.creditWaiters.splice(0)) wake();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      for (;;) {
        if (this.frameLength === null) {
          if (this.buffered < 4) return;
          const head = this.take(4);
          if (head[0] !== 0) throw new SmbProtocolError('unexpected direct-TCP frame type', null, 'BAD_FRAME');
          this.frameLength = head.readUInt32BE(0) & maxFrameLength;
        }
        if (this.buffered < this.frameLength) return;
        const frame = this.take(this.frameLength);
        this.frameLength = null;
        this.onFrame(frame);
      }
    } catch (error) {
      this.fail(error instanceof SmbProtocolError ? error : new SmbProtocolError(String(error), null, 'BAD_FRAME'));
    }
  }

  /** Removes `length` bytes from the receive queue; a view when they sit in one chunk, one copy otherwise. */
  private take(length: number): Buffer {
    this.buffered -= length;
    const first = this.chunks[0]!;
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0]!;
      const used = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }

  /** A frame may hold several responses chained by NextCommand (compounding); each is dispatched on its own. */
  private onFrame(frame: Buffer): void {
    let offset = 0;
    for (;;) {
      const rest = frame.subarray(offset);
      const header = parseHeader(rest);
      const message = header.nextCommand ? rest.subarray(0, header.nextCommand) : rest;
      if (header.nextCommand && (header.nextCommand < headerLength || header.nextCommand > rest.length)) {
        throw new SmbProtocolError('bad NextCommand offset', null, 'BAD_FRAME');
      }
      this.onResponse(header, message);
      if (!header.nextCommand) return;
      offset += header.nextCommand;
    }
  }

  private onResponse(header: Smb2Header, message: Buffer): void {
    if ((header.flags & HeaderFlags.SERVER_TO_REDIR) === 0) throw new SmbProtocolError('received a request, not a response', null, 'BAD_FRAME');
    this.grantCredits(header.creditResponse);
    const request = this.pending.get(header.messageId);
    if (!request) return; // e.g. an oplock break notification (message id 0xFFFF...) we never asked for

    if (header.status === NtStatus.PENDING && header.flags & HeaderFlags.ASYNC_COMMAND) {
      // Interim response (MS-SMB2 3.3.4.2): unsigned, grants credits; the final one follows with the same id.
      request.interim = true;
      this.statistics.interimResponses += 1;
      return;
    }

    if (this.signingKey && header.command !== Command.NEGOTIATE) {
      // Once a session signs, every final response must be signed by the server with the same key, errors
      // included; an unsigned or forged answer means tampering or a broken server, and the connection ends.
      if (!verifyMessage(this.signingKey, message)) {
        throw new SmbProtocolError(`response to SMB2 command ${header.command} is not validly signed`, header.status, 'BAD_SIGNATURE');
      }
      this.statistics.verifiedResponses += 1;
    }
    this.pending.delete(header.messageId);
    this.outstanding -= 1;
    clearTimeout(request.timer);
    request.resolve({ header, message });
  }

  /** Marks the connection failed: rejects every pending request and credit waiter, destroys the socket. */
  private fail(error: SmbError, causeMessageId?: number): void {
    if (this.failure) return;
    this.failure = error;
    for (const [messageId, request] of this.pending) {
      clearTimeout(request.timer);
      request.reject(messageId === causeMessageId || error instanceof SmbProtocolError ? error : new SmbUnreachableError(error.message, null, error.statusName));
    }
    this.pending.clear();
    for (const wake of this.creditWaiters.splice(0)) wake();
    this.socket.destroy();
  }
}
