// Share-relative paths: the client's '/'-separated form, its SMB wire form, and the resumable listing cursor.
import { NtStatus, SmbError } from './smb-errors';

/** UTF-16 bytes a path may take on the wire: the library's encoder builds each request in a 64 KiB buffer. */
const maxWirePathBytes = 32 * 1024;

function invalid(detail: string): SmbError {
  return new SmbError(detail, NtStatus.OBJECT_NAME_INVALID);
}

/**
 * Normalizes a share-relative path ('/a/b', 'a/b/', '' for the root) to 'a/b'. Refuses '.' and '..' (no climbing
 * out of the share), backslashes inside names (they are the wire separator), NUL and ':' (NTFS alternate data
 * streams: 'file:stream' would open something other than the file).
 */
export function normalizePath(path: string): string {
  const segments = path.split('/').filter((segment) => segment.length > 0);
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw invalid(`path ${JSON.stringify(path)} contains "${segment}"`);
    if (/[\\:\0]/.test(segment)) throw invalid(`path ${JSON.stringify(path)} contains a backslash, ':' or NUL`);
  }
  const normalized = segments.join('/');
  if (Buffer.byteLength(normalized, 'utf16le') > maxWirePathBytes) throw invalid('path too long');
  return normalized;
}

/** The name SMB2 CREATE expects: backslash-separated, no leading separator, '' for the share root. */
export function wirePath(normalized: string): string {
  return normalized.replaceAll('/', '\\');
}

export function joinPath(directory: string, name: string): string {
  return directory === '' ? name : `${directory}/${name}`;
}

/** Ordinal (UTF-16 code unit) order: deterministic, and names differing only in case stay distinct. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The listing cursor: the directory and the last name already returned. It names a position in the sorted listing
 * rather than a server handle, so it survives a new connection (a retried activity, continue-as-new): the next page
 * is whatever sorts after that name, whether or not entries came or went meanwhile.
 */
export function encodePageToken(directory: string, lastName: string): string {
  return Buffer.from(JSON.stringify({ d: directory, a: lastName }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string, directory: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new SmbError('malformed page token', NtStatus.INVALID_PARAMETER);
  }
  const { d, a } = (parsed ?? {}) as { d?: unknown; a?: unknown };
  if (typeof d !== 'string' || typeof a !== 'string') throw new SmbError('malformed page token', NtStatus.INVALID_PARAMETER);
  if (d !== directory) throw new SmbError(`page token belongs to directory ${JSON.stringify(d)}`, NtStatus.INVALID_PARAMETER);
  return a;
}
