// SMB2 command bodies (MS-SMB2 2.2): requests encoded with @marsaud/smb2's structure tables, responses decoded here.
// The library's encoder writes the header's 64-bit fields with 32-bit shifts, so smb2-transport overwrites them.
import SMB2Message from '@marsaud/smb2/lib/tools/smb2-message.js';
import { SmbProtocolError } from './smb-errors';

export const headerLength = 64;

export const Command = {
  NEGOTIATE: 0x0000,
  SESSION_SETUP: 0x0001,
  TREE_CONNECT: 0x0003,
  CREATE: 0x0005,
  CLOSE: 0x0006,
  READ: 0x0008,
  QUERY_DIRECTORY: 0x000e,
} as const;
export type CommandName = keyof typeof Command;

export const HeaderFlags = { SERVER_TO_REDIR: 0x1, ASYNC_COMMAND: 0x2, SIGNED: 0x8 } as const;

/** NEGOTIATE SecurityMode bits. */
export const SecurityMode = { SIGNING_ENABLED: 0x1, SIGNING_REQUIRED: 0x2 } as const;
/** SESSION_SETUP SessionFlags bits. */
export const SessionFlags = { IS_GUEST: 0x1, IS_NULL: 0x2 } as const;
export const GlobalCapabilities = { LARGE_MTU: 0x4 } as const;
export const Dialect = { SMB202: 0x0202, SMB210: 0x0210 } as const;

/** CREATE request values (MS-SMB2 2.2.13, MS-FSCC 2.4). */
export const Access = { FILE_READ_DATA: 0x1, FILE_LIST_DIRECTORY: 0x1, FILE_READ_ATTRIBUTES: 0x80, SYNCHRONIZE: 0x100000 } as const;
export const CreateOptions = { FILE_DIRECTORY_FILE: 0x1, FILE_NON_DIRECTORY_FILE: 0x40 } as const;
const shareReadWriteDelete = 0x7;
const fileOpen = 0x1;
const impersonation = 0x2;
export const fileAttributeDirectory = 0x10;
/** FileDirectoryInformation (MS-FSCC 2.4.10): the smallest listing record with times, size and attributes. */
const fileDirectoryInformation = 0x01;

/** Header plus body, header fields zero: smb2-transport fills ids, credits, flags and the signature. */
function encode(command: CommandName, request: Record<string, string | number | Buffer>): Buffer {
  const message = new SMB2Message({ headers: { Command: command }, request });
  return message.getBuffer({ messageId: 0 });
}

export function negotiateRequest(clientGuid: Buffer): Buffer {
  return encode('NEGOTIATE', {
    DialectCount: 2,
    SecurityMode: SecurityMode.SIGNING_ENABLED,
    ClientGuid: clientGuid,
    Dialects: Buffer.from([0x02, 0x02, 0x10, 0x02]), // 2.0.2 and 2.1
  });
}

export function sessionSetupRequest(securityBuffer: Buffer): Buffer {
  return encode('SESSION_SETUP', { SecurityMode: SecurityMode.SIGNING_ENABLED, Capabilities: 0, SecurityBufferOffset: 88, Buffer: securityBuffer });
}

export function treeConnectRequest(uncPath: string): Buffer {
  return encode('TREE_CONNECT', { PathOffset: 72, Buffer: Buffer.from(uncPath, 'utf16le') });
}

export function createRequest(name: string, desiredAccess: number, createOptions: number): Buffer {
  return encode('CREATE', {
    ImpersonationLevel: impersonation,
    DesiredAccess: desiredAccess,
    FileAttributes: 0,
    ShareAccess: shareReadWriteDelete,
    CreateDisposition: fileOpen,
    CreateOptions: createOptions,
    NameOffset: 0x78,
    CreateContextsOffset: 0,
    Buffer: Buffer.from(name, 'utf16le'),
  });
}

export function closeRequest(fileId: Buffer): Buffer {
  return encode('CLOSE', { FileId: fileId });
}

export function readRequest(fileId: Buffer, offset: number, length: number): Buffer {
  const offset64 = Buffer.alloc(8);
  offset64.writeBigUInt64LE(BigInt(offset));
  return encode('READ', { FileId: fileId, Length: length, Offset: offset64 });
}

export function queryDirectoryRequest(fileId: Buffer, outputBufferLength: number): Buffer {
  return encode('QUERY_DIRECTORY', {
    FileInformationClass: fileDirectoryInformation,
    FileId: fileId,
    FileNameOffset: 96,
    OutputBufferLength: outputBufferLength,
    Buffer: Buffer.from('*', 'utf16le'),
  });
}

export interface Smb2Header {
  status: number;
  command: number;
  creditResponse: number;
  flags: number;
  nextCommand: number;
  messageId: number;
  treeId: number;
  sessionId: bigint;
}

export function parseHeader(message: Buffer): Smb2Header {
  if (message.length < headerLength || message.readUInt32BE(0) !== 0xfe534d42) throw new SmbProtocolError('not an SMB2 message', null, 'BAD_MESSAGE');
  const flags = message.readUInt32LE(16);
  return {
    status: message.readUInt32LE(8),
    command: message.readUInt16LE(12),
    creditResponse: message.readUInt16LE(14),
    flags,
    nextCommand: message.readUInt32LE(20),
    messageId: Number(message.readBigUInt64LE(24)),
    // In async responses bytes 32..39 are the AsyncId instead of ProcessId/TreeId.
    treeId: flags & HeaderFlags.ASYNC_COMMAND ? 0 : message.readUInt32LE(36),
    sessionId: message.readBigUInt64LE(40),
  };
}

/** A variable-length field addressed by an offset from the start of the SMB2 header, bounds-checked. */
function field(message: Buffer, offset: number, length: number, what: string): Buffer {
  if (length === 0) return Buffer.alloc(0);
  if (offset < headerLength || offset + length > message.length) throw new SmbProtocolError(`${what} out of bounds`, null, 'BAD_MESSAGE');
  return message.subarray(offset, offset + length);
}

function requireBody(message: Buffer, length: number, what: string): void {
  if (message.length < headerLength + length) throw new SmbProtocolError(`${what} response too short`, null, 'BAD_MESSAGE');
}

export interface NegotiateResponse {
  securityMode: number;
  dialect: number;
  capabilities: number;
  maxTransactSize: number;
  maxReadSize: number;
}

export function parseNegotiateResponse(message: Buffer): NegotiateResponse {
  requireBody(message, 64, 'NEGOTIATE');
  const body = headerLength;
  return {
    securityMode: message.readUInt16LE(body + 2),
    dialect: message.readUInt16LE(body + 4),
    capabilities: message.readUInt32LE(body + 24),
    maxTransactSize: message.readUInt32LE(body + 28),
    maxReadSize: message.readUInt32LE(body + 32),
  };
}

export function parseSessionSetupResponse(message: Buffer): { sessionFlags: number; securityBuffer: Buffer } {
  requireBody(message, 8, 'SESSION_SETUP');
  const body = headerLength;
  const securityBuffer = field(message, message.readUInt16LE(body + 4), message.readUInt16LE(body + 6), 'security buffer');
  return { sessionFlags: message.readUInt16LE(body + 2), securityBuffer: Buffer.from(securityBuffer) };
}

/** FILETIME (100 ns since 1601, UTC) to Date. */
export function fileTimeToDate(fileTime: bigint): Date {
  return new Date(Number(fileTime / 10_000n - 11_644_473_600_000n));
}

export interface FileAttributesInfo {
  lastWriteTime: Date;
  endOfFile: number;
  attributes: number;
}

export function parseCreateResponse(message: Buffer): FileAttributesInfo & { fileId: Buffer } {
  requireBody(message, 88, 'CREATE');
  const body = headerLength;
  return {
    lastWriteTime: fileTimeToDate(message.readBigUInt64LE(body + 24)),
    endOfFile: Number(message.readBigUInt64LE(body + 48)),
    attributes: message.readUInt32LE(body + 56),
    fileId: Buffer.from(message.subarray(body + 64, body + 80)),
  };
}

/** READ response data: a view into the received message (no copy). */
export function parseReadResponse(message: Buffer): Buffer {
  requireBody(message, 16, 'READ');
  return field(message, message.readUInt8(headerLength + 2), message.readUInt32LE(headerLength + 4), 'read data');
}

export interface DirectoryRecord extends FileAttributesInfo {
  name: string;
}

/** Decodes a QUERY_DIRECTORY response's FileDirectoryInformation records. */
export function parseQueryDirectoryResponse(message: Buffer): DirectoryRecord[] {
  requireBody(message, 8, 'QUERY_DIRECTORY');
  const output = field(message, message.readUInt16LE(headerLength + 2), message.readUInt32LE(headerLength + 4), 'directory listing');
  const records: DirectoryRecord[] = [];
  let offset = 0;
  while (offset + 64 <= output.length) {
    const next = output.readUInt32LE(offset);
    const nameLength = output.readUInt32LE(offset + 60);
    if (offset + 64 + nameLength > output.length) throw new SmbProtocolError('directory record out of bounds', null, 'BAD_MESSAGE');
    records.push({
      lastWriteTime: fileTimeToDate(output.readBigUInt64LE(offset + 24)),
      endOfFile: Number(output.readBigUInt64LE(offset + 40)),
      attributes: output.readUInt32LE(offset + 56),
      name: output.toString('utf16le', offset + 64, offset + 64 + nameLength),
    });
    if (next === 0) break;
    offset += next;
  }
  return records;
}
