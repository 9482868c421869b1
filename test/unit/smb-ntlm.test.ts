// Unit tests for NTLMv2 (src/connectors/smb/ntlm.ts) against the MS-NLMP 4.2.4 test vectors; no server needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { authenticateMessage, negotiateMessage, ntHash, ntlmV2Responses, ntowfV2, parseAvPairs } from '../../src/connectors/smb/ntlm';

// MS-NLMP 4.2.1 common values: user "User", domain "Domain", password "Password".
const serverChallenge = Buffer.from('0123456789abcdef', 'hex');
const clientChallenge = Buffer.from('aaaaaaaaaaaaaaaa', 'hex');
// 4.2.4: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", MsvAvEOL.
const targetInfo = Buffer.from('02000c0044006f006d00610069006e0001000c005300650072007600650072000000' + '0000', 'hex');

/** A CHALLENGE_MESSAGE carrying the vector's challenge and the given target info. */
function challengeMessage(info: Buffer): Buffer {
  const header = Buffer.alloc(56);
  header.write('NTLMSSP\0', 0, 'latin1');
  header.writeUInt32LE(2, 8);
  header.writeUInt32LE(0xe28a8235, 20); // the flags of MS-NLMP 4.2.4.3
  serverChallenge.copy(header, 24);
  header.writeUInt16LE(info.length, 40);
  header.writeUInt16LE(info.length, 42);
  header.writeUInt32LE(56, 44);
  return Buffer.concat([header, info]);
}

function field(message: Buffer, at: number): Buffer {
  const length = message.readUInt16LE(at);
  const offset = message.readUInt32LE(at + 4);
  return message.subarray(offset, offset + length);
}

describe('NTLMv2 (MS-NLMP 4.2.4 vectors)', () => {
  test('NT hash (MD4 via hash-wasm) and NTOWFv2', async () => {
    assert.equal((await ntHash('Password')).toString('hex'), 'a4f49c406510bdcab6824ee7c30fd852');
    assert.equal((await ntowfV2('Password', 'User', 'Domain')).toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
    // The user name is case-insensitive, the domain is not.
    assert.deepEqual(await ntowfV2('Password', 'user', 'Domain'), await ntowfV2('Password', 'User', 'Domain'));
    assert.notDeepEqual(await ntowfV2('Password', 'User', 'DOMAIN'), await ntowfV2('Password', 'User', 'Domain'));
  });

  test('LMv2 response, NTProofStr, NTLMv2 response and session base key', async () => {
    const key = await ntowfV2('Password', 'User', 'Domain');
    const responses = ntlmV2Responses(key, serverChallenge, clientChallenge, 0n, targetInfo);
    assert.equal(responses.lmChallengeResponse.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(responses.ntProofStr.toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(
      responses.ntChallengeResponse.toString('hex'),
      '68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000' +
        '02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000',
    );
    assert.equal(responses.sessionBaseKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3');
  });

  test('AUTHENTICATE carries the vector responses and names; no server timestamp → no MIC', async () => {
    const { message, sessionKey } = await authenticateMessage({
      user: 'User',
      domain: 'Domain',
      password: 'Password',
      workstation: 'COMPUTER',
      negotiate: negotiateMessage(),
      challenge: challengeMessage(targetInfo),
      clientChallenge,
      timestamp: 0n,
    });
    assert.equal(message.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
    assert.equal(message.readUInt32LE(8), 3);
    assert.equal(field(message, 12).toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(field(message, 20).subarray(0, 16).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(field(message, 28).toString('utf16le'), 'Domain');
    assert.equal(field(message, 36).toString('utf16le'), 'User');
    assert.equal(field(message, 44).toString('utf16le'), 'COMPUTER');
    assert.equal(field(message, 52).length, 0, 'no KEY_EXCH, so no encrypted session key');
    assert.deepEqual(message.subarray(72, 88), Buffer.alloc(16), 'MIC left zero');
    assert.equal(sessionKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3');
  });

  test('with a server timestamp: timestamp echoed, LM response zero, MsvAvFlags has MIC bit, MIC verifies', async () => {
    const timestamp = Buffer.from('0700080000a0cdf0a1fbda01', 'hex'); // MsvAvTimestamp
    const info = Buffer.concat([targetInfo.subarray(0, targetInfo.length - 4), timestamp, Buffer.alloc(4)]);
    const negotiate = negotiateMessage();
    const challenge = challengeMessage(info);
    const { message, sessionKey } = await authenticateMessage({ user: 'User', domain: 'Domain', password: 'Password', workstation: 'COMPUTER', negotiate, challenge, clientChallenge });
    assert.deepEqual(field(message, 12), Buffer.alloc(24));
    const nt = field(message, 20);
    assert.equal(nt.subarray(24, 32).toString('hex'), '00a0cdf0a1fbda01', 'the blob carries the server time');
    const pairs = parseAvPairs(nt.subarray(44));
    assert.equal(pairs.find((p) => p.id === 6)!.value.readUInt32LE(0) & 0x2, 0x2);
    assert.ok(pairs.some((p) => p.id === 7));
    const zeroed = Buffer.from(message);
    zeroed.fill(0, 72, 88);
    const mic = createHmac('md5', sessionKey).update(negotiate).update(challenge).update(zeroed).digest();
    assert.deepEqual(message.subarray(72, 88), mic);
  });

  test('a malformed CHALLENGE is refused', async () => {
    const input = { user: 'u', domain: '', password: 'p', workstation: 'w', negotiate: negotiateMessage() };
    await assert.rejects(authenticateMessage({ ...input, challenge: Buffer.from('NTLMSSP\0') }), /CHALLENGE/);
    const bad = challengeMessage(targetInfo);
    bad.writeUInt32LE(10_000, 44);
    await assert.rejects(authenticateMessage({ ...input, challenge: bad }), /out of bounds/);
  });
});
