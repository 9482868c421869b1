// NTLMv2 authentication (MS-NLMP) for SMB session setup: NEGOTIATE, CHALLENGE parsing, AUTHENTICATE with a MIC.
// HMAC-MD5 comes from node:crypto; MD4 (for the NT hash) from hash-wasm, because OpenSSL 3 no longer ships MD4.
import { createHmac, randomBytes } from 'node:crypto';
import { md4 } from 'hash-wasm';

const signature = Buffer.from('NTLMSSP\0', 'latin1');

/** NEGOTIATE_MESSAGE flags we ask for (MS-NLMP 2.2.2.5). No KEY_EXCH: it would need RC4, which OpenSSL 3 also dropped. */
export const NegotiateFlags = {
  UNICODE: 0x00000001,
  REQUEST_TARGET: 0x00000004,
  SIGN: 0x00000010,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  NEGOTIATE_128: 0x20000000,
  NEGOTIATE_56: 0x80000000,
} as const;

const clientFlags =
  (NegotiateFlags.UNICODE |
    NegotiateFlags.REQUEST_TARGET |
    NegotiateFlags.SIGN |
    NegotiateFlags.NTLM |
    NegotiateFlags.ALWAYS_SIGN |
    NegotiateFlags.EXTENDED_SESSIONSECURITY |
    NegotiateFlags.TARGET_INFO |
    NegotiateFlags.VERSION |
    NegotiateFlags.NEGOTIATE_128 |
    NegotiateFlags.NEGOTIATE_56) >>>
  0;

/** AV_PAIR ids (MS-NLMP 2.2.2.1) the client reads or writes. */
const AvId = { EOL: 0, FLAGS: 6, TIMESTAMP: 7 } as const;
/** MsvAvFlags bit: the AUTHENTICATE message carries a MIC. */
const avFlagMicPresent = 0x2;

/** A fixed VERSION structure (6.1 build 7600, NTLM revision 15); servers only log it. */
const version = Buffer.from([6, 1, 0xb0, 0x1d, 0, 0, 0, 15]);

const utf16 = (text: string) => Buffer.from(text, 'utf16le');
const hmacMd5 = (key: Buffer, ...data: Buffer[]) => {
  const hmac = createHmac('md5', key);
  for (const part of data) hmac.update(part);
  return hmac.digest();
};

/** NT hash: MD4 of the UTF-16LE password (MS-NLMP 3.3.1). */
export async function ntHash(password: string): Promise<Buffer> {
  return Buffer.from(await md4(utf16(password)), 'hex');
}

/** NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) + UserDom)) (MS-NLMP 3.3.2). */
export async function ntowfV2(password: string, user: string, domain: string): Promise<Buffer> {
  return hmacMd5(await ntHash(password), utf16(user.toUpperCase() + domain));
}

export interface NtlmV2Responses {
  ntChallengeResponse: Buffer;
  lmChallengeResponse: Buffer;
  ntProofStr: Buffer;
  sessionBaseKey: Buffer;
}

/**
 * The NTLMv2 responses (MS-NLMP 3.3.2) for a server challenge. `timestamp` is a FILETIME (100 ns since 1601);
 * `targetInfo` the AV pairs to echo (the server's, possibly amended with MsvAvFlags).
 */
export function ntlmV2Responses(
  responseKey: Buffer,
  serverChallenge: Buffer,
  clientChallenge: Buffer,
  timestamp: bigint,
  targetInfo: Buffer,
): NtlmV2Responses {
  const time = Buffer.alloc(8);
  time.writeBigUInt64LE(timestamp);
  // temp = Responserversion, HiResponserversion, Z(6), Time, ClientChallenge, Z(4), ServerName (the AV pairs), Z(4)
  const temp = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), time, clientChallenge, Buffer.alloc(4), targetInfo, Buffer.alloc(4)]);
  const ntProofStr = hmacMd5(responseKey, serverChallenge, temp);
  return {
    ntProofStr,
    ntChallengeResponse: Buffer.concat([ntProofStr, temp]),
    lmChallengeResponse: Buffer.concat([hmacMd5(responseKey, serverChallenge, clientChallenge), clientChallenge]),
    sessionBaseKey: hmacMd5(responseKey, ntProofStr),
  };
}

/** NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1): no domain or workstation supplied, VERSION present. */
export function negotiateMessage(): Buffer {
  const message = Buffer.alloc(40);
  signature.copy(message, 0);
  message.writeUInt32LE(1, 8);
  message.writeUInt32LE(clientFlags, 12);
  // DomainNameFields and WorkstationFields stay zero (length 0, offset 0).
  version.copy(message, 32);
  return message;
}

export interface NtlmChallenge {
  flags: number;
  serverChallenge: Buffer;
  targetInfo: Buffer;
}

/** Parses a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2); throws on anything malformed. */
export function parseChallengeMessage(message: Buffer): NtlmChallenge {
  if (message.length < 48 || !message.subarray(0, 8).equals(signature) || message.readUInt32LE(8) !== 2) {
    throw new Error('not an NTLM CHALLENGE message');
  }
  const flags = message.readUInt32LE(20);
  const infoLength = message.readUInt16LE(40);
  const infoOffset = message.readUInt32LE(44);
  if (infoOffset + infoLength > message.length) throw new Error('NTLM CHALLENGE target info out of bounds');
  return { flags, serverChallenge: Buffer.from(message.subarray(24, 32)), targetInfo: Buffer.from(message.subarray(infoOffset, infoOffset + infoLength)) };
}

interface AvPair {
  id: number;
  value: Buffer;
}

export function parseAvPairs(targetInfo: Buffer): AvPair[] {
  const pairs: AvPair[] = [];
  let offset = 0;
  while (offset + 4 <= targetInfo.length) {
    const id = targetInfo.readUInt16LE(offset);
    const length = targetInfo.readUInt16LE(offset + 2);
    if (id === AvId.EOL) break;
    pairs.push({ id, value: targetInfo.subarray(offset + 4, offset + 4 + length) });
    offset += 4 + length;
  }
  return pairs;
}

function encodeAvPairs(pairs: AvPair[]): Buffer {
  const parts = pairs.flatMap(({ id, value }) => {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(id, 0);
    head.writeUInt16LE(value.length, 2);
    return [head, value];
  });
  return Buffer.concat([...parts, Buffer.alloc(4)]); // MsvAvEOL
}

/** FILETIME for "now": 100 ns intervals since 1601-01-01. */
export function fileTimeNow(): bigint {
  return (BigInt(Date.now()) + 11_644_473_600_000n) * 10_000n;
}

export interface AuthenticateInput {
  user: string;
  domain: string;
  password: string;
  workstation: string;
  negotiate: Buffer;
  challenge: Buffer;
  /** For tests: fixed client challenge and time. */
  clientChallenge?: Buffer;
  timestamp?: bigint;
}

export interface AuthenticateResult {
  message: Buffer;
  /** The session key (ExportedSessionKey = SessionBaseKey without KEY_EXCH): SMB 2.x signs with it. */
  sessionKey: Buffer;
}

/**
 * AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) with NTLMv2 responses. When the server sent a timestamp, we echo it,
 * send a zero LM response and add a MIC over all three messages, as MS-NLMP 3.1.5.1.2 asks.
 */
export async function authenticateMessage(input: AuthenticateInput): Promise<AuthenticateResult> {
  const challenge = parseChallengeMessage(input.challenge);
  const pairs = parseAvPairs(challenge.targetInfo);
  const serverTime = pairs.find((p) => p.id === AvId.TIMESTAMP);
  const timestamp = input.timestamp ?? (serverTime && serverTime.value.length === 8 ? serverTime.value.readBigUInt64LE(0) : fileTimeNow());
  const withMic = serverTime !== undefined;

  let targetInfo = challenge.targetInfo;
  if (withMic) {
    const flags = pairs.find((p) => p.id === AvId.FLAGS);
    const value = Buffer.alloc(4);
    value.writeUInt32LE(((flags && flags.value.length === 4 ? flags.value.readUInt32LE(0) : 0) | avFlagMicPresent) >>> 0);
    targetInfo = encodeAvPairs([...pairs.filter((p) => p.id !== AvId.FLAGS), { id: AvId.FLAGS, value }]);
  }

  const responseKey = await ntowfV2(input.password, input.user, input.domain);
  const clientChallenge = input.clientChallenge ?? randomBytes(8);
  const responses = ntlmV2Responses(responseKey, challenge.serverChallenge, clientChallenge, timestamp, targetInfo);
  const lmResponse = withMic ? Buffer.alloc(24) : responses.lmChallengeResponse;
  const flags = (clientFlags & challenge.flags) | NegotiateFlags.UNICODE;

  const payload = [lmResponse, responses.ntChallengeResponse, utf16(input.domain), utf16(input.user), utf16(input.workstation), Buffer.alloc(0)];
  const headerLength = 88; // fixed fields + VERSION + MIC
  const header = Buffer.alloc(headerLength);
  signature.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let offset = headerLength;
  payload.forEach((field, index) => {
    const at = 12 + index * 8; // Lm, Nt, Domain, User, Workstation, EncryptedRandomSessionKey
    header.writeUInt16LE(field.length, at);
    header.writeUInt16LE(field.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += field.length;
  });
  header.writeUInt32LE(flags >>> 0, 60);
  version.copy(header, 64);
  const message = Buffer.concat([header, ...payload]);
  const sessionKey = responses.sessionBaseKey;
  if (withMic) hmacMd5(sessionKey, input.negotiate, input.challenge, message).copy(message, 72);
  return { message, sessionKey };
}
