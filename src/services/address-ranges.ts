// IP addresses and ranges (plain IPv4/IPv6 or CIDR): parsing, normalising and matching with node:net's BlockList.
import { BlockList, isIP } from 'node:net';

export interface AddressRange {
  network: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

const ipv4Mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * The canonical text of an address, or null when `value` is not one: IPv4-mapped IPv6 (`::ffff:1.2.3.4`,
 * what a dual-stack socket reports for IPv4 peers) becomes plain IPv4, IPv6 is lower-cased, a zone id is dropped.
 */
export function normalizeAddress(value: string): string | null {
  let address = value.trim();
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  const version = isIP(address);
  if (version === 4) return address;
  if (version !== 6) return null;
  const mapped = ipv4Mapped.exec(address);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  return address.toLowerCase();
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a plain address (a /32 or /128); null when malformed. */
export function parseAddressRange(text: string): AddressRange | null {
  const parts = text.trim().split('/');
  if (parts.length > 2) return null;
  const version = isIP(parts[0]!);
  if (version === 0) return null;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const longest = version === 4 ? 32 : 128;
  if (parts.length === 1) return { network: parts[0]!, prefix: longest, family };
  if (!/^\d{1,3}$/.test(parts[1]!)) return null;
  const prefix = Number(parts[1]);
  if (prefix > longest) return null;
  return { network: parts[0]!, prefix, family };
}

export const isAddressRange = (text: string): boolean => parseAddressRange(text) !== null;

export interface AddressMatcher {
  /** True when the (normalised or raw) address lies in one of the ranges. */
  includes(address: string): boolean;
}

/** A matcher over ranges already validated with parseAddressRange (invalid entries are skipped). */
export function addressMatcher(ranges: readonly string[]): AddressMatcher {
  const list = new BlockList();
  for (const text of ranges) {
    const range = parseAddressRange(text);
    if (!range) continue;
    if (range.prefix === (range.family === 'ipv4' ? 32 : 128)) list.addAddress(range.network, range.family);
    else list.addSubnet(range.network, range.prefix, range.family);
  }
  return {
    includes(address) {
      const version = isIP(address);
      // BlockList also matches IPv4 rules against IPv4-mapped IPv6 addresses and vice versa.
      return version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
