// The caller's IP address: the socket peer, or — only when that peer is a trusted proxy — the nearest
// untrusted hop of X-Forwarded-For, so a client can never choose its own address by sending the header.
import { addressMatcher, normalizeAddress, type AddressMatcher } from '../services/address-ranges';
import type { AppContext } from './context';

const matchers = new WeakMap<readonly string[], AddressMatcher>();

function trustedProxies(ranges: readonly string[]): AddressMatcher {
  let matcher = matchers.get(ranges);
  if (!matcher) {
    matcher = addressMatcher(ranges);
    matchers.set(ranges, matcher);
  }
  return matcher;
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443` (some proxies append ports) → the bare address. */
function withoutPort(hop: string): string {
  const value = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) return bracketed[1]!;
  const ipv4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(value);
  return ipv4WithPort ? ipv4WithPort[1]! : value;
}

export function clientAddress(ctx: AppContext): string {
  return clientAddressFrom(ctx.req.socket.remoteAddress ?? '', ctx.get('x-forwarded-for'), trustedProxies(ctx.deps.config.trustedProxies));
}

/** The pure rule behind clientAddress: the socket peer, or the nearest untrusted X-Forwarded-For hop. */
export function clientAddressFrom(socketPeer: string, forwardedFor: string, trusted: AddressMatcher): string {
  const peer = normalizeAddress(socketPeer) ?? 'unknown';
  if (!trusted.includes(peer)) return peer;
  // Each proxy appends the address it saw, so walk from the right: the first hop we do not trust is the
  // client. An unreadable hop stops the walk at the last address we could read (as nginx's real_ip does).
  const hops = forwardedFor.split(',');
  let address = peer;
  for (let index = hops.length - 1; index >= 0; index--) {
    const hop = normalizeAddress(withoutPort(hops[index]!));
    if (!hop) break;
    address = hop;
    if (!trusted.includes(hop)) break;
  }
  return address;
}
