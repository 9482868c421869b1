// Unit tests for pure request helpers: byte ranges, address ranges (CIDR), and the client address rule.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/services/content.service';
import { addressMatcher, normalizeAddress, parseAddressRange } from '../../src/services/address-ranges';
import { clientAddressFrom } from '../../src/api/client-address';

describe('parseRange', () => {
  test('single ranges, suffixes and open ends', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-1000', 100), { start: 0, end: 99 }, 'a suffix longer than the file is the whole file');
    assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 }, 'the end is clamped');
  });
  test('unsatisfiable ranges are 416', () => {
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=99999999999999999999-', 100), 'unsatisfiable');
  });
  test('absent, malformed and multi-range headers mean the whole body', () => {
    for (const header of [undefined, '', 'bytes=', 'bytes=-', 'items=0-1', 'bytes=5-1', 'bytes=0-1,5-6', 'bytes=a-b']) {
      assert.equal(parseRange(header, 100), undefined, String(header));
    }
  });
});

describe('address ranges', () => {
  test('parses addresses and CIDRs, refuses the rest', () => {
    assert.deepEqual(parseAddressRange('10.0.0.0/8'), { network: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseAddressRange('2001:db8::/32'), { network: '2001:db8::', prefix: 32, family: 'ipv6' });
    assert.deepEqual(parseAddressRange('192.0.2.1'), { network: '192.0.2.1', prefix: 32, family: 'ipv4' });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/8/1', 'example.com', '10.0.0.0/x', '']) assert.equal(parseAddressRange(bad), null, bad);
  });
  test('normalises IPv4-mapped IPv6, case and zone ids', () => {
    assert.equal(normalizeAddress('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(normalizeAddress('2001:DB8::1'), '2001:db8::1');
    assert.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1');
    assert.equal(normalizeAddress('not-an-ip'), null);
  });
  test('matches inside and outside ranges of both families', () => {
    const matcher = addressMatcher(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);
    assert.equal(matcher.includes('10.200.3.4'), true);
    assert.equal(matcher.includes('11.0.0.1'), false);
    assert.equal(matcher.includes('2001:db8:1::5'), true);
    assert.equal(matcher.includes('2001:db9::5'), false);
    assert.equal(matcher.includes('192.0.2.1'), true);
    assert.equal(matcher.includes('192.0.2.2'), false);
    assert.equal(matcher.includes('garbage'), false);
  });
});

describe('clientAddressFrom', () => {
  const proxies = addressMatcher(['10.0.0.0/8']);
  test('an untrusted peer is the client, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddressFrom('203.0.113.9', '1.2.3.4', proxies), '203.0.113.9');
  });
  test('behind trusted proxies the nearest untrusted hop is the client', () => {
    assert.equal(clientAddressFrom('10.0.0.1', '198.51.100.7, 10.0.0.2', proxies), '198.51.100.7');
    assert.equal(clientAddressFrom('10.0.0.1', 'spoofed, 198.51.100.7, 10.0.0.2', proxies), '198.51.100.7', 'hops left of the client are ignored');
    assert.equal(clientAddressFrom('::ffff:10.0.0.1', '[2001:db8::9]:443', proxies), '2001:db8::9');
    assert.equal(clientAddressFrom('10.0.0.1', '198.51.100.7:8080', proxies), '198.51.100.7');
  });
  test('an unreadable hop stops the walk at the last readable address', () => {
    assert.equal(clientAddressFrom('10.0.0.1', 'junk', proxies), '10.0.0.1');
    assert.equal(clientAddressFrom('10.0.0.1', '198.51.100.7, junk, 10.0.0.3', proxies), '10.0.0.3');
  });
});
