// The SMB client's errors: one class per outcome a caller acts on, each carrying the NTSTATUS that caused it.
import statusTable from '@marsaud/smb2/lib/tools/ms_erref.js';

/** NTSTATUS values the client itself branches on (MS-ERREF 2.3.1). */
export const NtStatus = {
  SUCCESS: 0x00000000,
  PENDING: 0x00000103,
  NO_MORE_FILES: 0x80000006,
  INVALID_PARAMETER: 0xc000000d,
  NO_SUCH_FILE: 0xc000000f,
  END_OF_FILE: 0xc0000011,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  ACCESS_DENIED: 0xc0000022,
  OBJECT_NAME_INVALID: 0xc0000033,
  OBJECT_NAME_NOT_FOUND: 0xc0000034,
  OBJECT_PATH_NOT_FOUND: 0xc000003a,
  WRONG_PASSWORD: 0xc000006a,
  LOGON_FAILURE: 0xc000006d,
  ACCOUNT_RESTRICTION: 0xc000006e,
  INVALID_LOGON_HOURS: 0xc000006f,
  INVALID_WORKSTATION: 0xc0000070,
  PASSWORD_EXPIRED: 0xc0000071,
  ACCOUNT_DISABLED: 0xc0000072,
  FILE_IS_A_DIRECTORY: 0xc00000ba,
  BAD_NETWORK_NAME: 0xc00000cc,
  NOT_A_DIRECTORY: 0xc0000103,
  NETWORK_SESSION_EXPIRED: 0xc000035c,
  ACCOUNT_LOCKED_OUT: 0xc0000234,
  PASSWORD_MUST_CHANGE: 0xc0000224,
  USER_SESSION_DELETED: 0xc0000203,
} as const;

/** The symbolic name of an NTSTATUS (e.g. STATUS_ACCESS_DENIED), from the library's MS-ERREF table. */
export function ntStatusName(status: number): string {
  return statusTable.getStatus(status >>> 0).code;
}

const hex = (status: number) => `0x${(status >>> 0).toString(16).padStart(8, '0')}`;

/**
 * Base class. `status` is the NTSTATUS the server answered, or null when no SMB answer exists (network errors,
 * timeouts, protocol violations); `statusName` is then the socket error code or a short reason.
 */
export class SmbError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly statusName: string = status === null ? 'NO_STATUS' : ntStatusName(status),
  ) {
    super(status === null ? message : `${message}: ${statusName} (${hex(status)})`);
    this.name = new.target.name;
  }
}

/** The server rejected the credentials (logon failure, disabled or locked account, expired password). */
export class SmbAuthError extends SmbError {}

/** No SMB conversation possible: connection refused or lost, host down, or a request timed out. */
export class SmbUnreachableError extends SmbError {}

/** A request got no answer within the client's timeoutMs; the connection is closed afterwards. */
export class SmbTimeoutError extends SmbUnreachableError {}

/** The path (or the share) does not exist. */
export class SmbNotFoundError extends SmbError {}

/** The server refused the operation on this path. */
export class SmbAccessDeniedError extends SmbError {}

/** The server answered something this client cannot accept (bad framing, bad signature, unsupported dialect). */
export class SmbProtocolError extends SmbError {}

const authStatuses = new Set<number>([
  NtStatus.WRONG_PASSWORD,
  NtStatus.LOGON_FAILURE,
  NtStatus.ACCOUNT_RESTRICTION,
  NtStatus.INVALID_LOGON_HOURS,
  NtStatus.INVALID_WORKSTATION,
  NtStatus.PASSWORD_EXPIRED,
  NtStatus.ACCOUNT_DISABLED,
  NtStatus.ACCOUNT_LOCKED_OUT,
  NtStatus.PASSWORD_MUST_CHANGE,
]);
const notFoundStatuses = new Set<number>([
  NtStatus.NO_SUCH_FILE,
  NtStatus.OBJECT_NAME_NOT_FOUND,
  NtStatus.OBJECT_PATH_NOT_FOUND,
  NtStatus.BAD_NETWORK_NAME,
  NtStatus.NOT_A_DIRECTORY,
]);

/** The error class for a failed request's NTSTATUS. */
export function errorForStatus(status: number, what: string): SmbError {
  if (authStatuses.has(status)) return new SmbAuthError(what, status);
  if (notFoundStatuses.has(status)) return new SmbNotFoundError(what, status);
  if (status === NtStatus.ACCESS_DENIED) return new SmbAccessDeniedError(what, status);
  // The server dropped our session (expired or deleted): the caller reconnects, as after a lost connection.
  if (status === NtStatus.NETWORK_SESSION_EXPIRED || status === NtStatus.USER_SESSION_DELETED) return new SmbUnreachableError(what, status);
  return new SmbError(what, status);
}
