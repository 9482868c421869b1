// fast-check arbitraries for hostile input: strings, numbers, cursors, path segments and headers that the API
// must answer with a clear 4xx (never a 500), plus the encoders that put them on the wire unchanged.
import fc from 'fast-check';

/** A JSON number written verbatim into the body text (JSON.stringify cannot express 1e400 or 2**64 exactly). */
export class RawJsonNumber {
  constructor(readonly text: string) {}
}

/** JSON text of `value`, with every RawJsonNumber spliced in as written. */
export function toJsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, item) => {
    if (item instanceof RawJsonNumber) {
      raws.push(item.text);
      return `\u0001raw${raws.length - 1}\u0001`;
    }
    return item;
  });
  // JSON.stringify escapes U+0001 as \u0001, so the placeholder cannot collide with generated strings.
  return (text ?? 'null').replace(/"\\u0001raw(\d+)\\u0001"/g, (_m, i: string) => raws[Number(i)]!);
}

/**
 * Percent-encodes a string as UTF-8 like encodeURIComponent, except that lone surrogates (which
 * encodeURIComponent refuses) are written as their 3-byte WTF-8 form (e.g. %ED%A0%80): invalid UTF-8 on the wire.
 */
export function encodeComponent(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    const isHigh = unit >= 0xd800 && unit <= 0xdbff;
    const next = value.charCodeAt(i + 1);
    if (isHigh && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(value.slice(i, i + 2));
      i++;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(value[i]!);
    }
  }
  return out;
}

const b64 = (text: string) => Buffer.from(text).toString('base64url');

/** Strings that have broken (or could break) a parser, a SQL driver or a comparison somewhere. */
export const nastyStrings: string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\uD800',
  'x\uDC00y',
  '\uDBFF\uDBFF',
  '\u202Egnp.exe',
  'name\u200B\u200C\u200D\uFEFF',
  '\u2066bidi\u2069',
  '..',
  '.',
  '../../etc/passwd',
  'a/b',
  'a\\b',
  '%00',
  '%2e%2e%2f',
  '\r\nX-Injected: 1',
  "' OR '1'='1' --",
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  'NaN',
  'Infinity',
  '-1',
  '1e400',
  '18446744073709551616',
  'true',
  'null',
  '[]',
  '{}',
  'fil_00000000000000000000000000',
  'usr_01J00000000000000000000000',
  'Ünïcödé ☃ 🙂',
  '🙂'.repeat(70),
  'é'.repeat(200),
  'a'.repeat(256),
  'a'.repeat(5000),
  '\u0001\u0002\u001f\u007f',
  '\uFFFF\uFFFE',
  'CON',
  ' leading and trailing ',
];

/** Every UTF-16 code unit is equally likely, so lone surrogates and control characters show up often. */
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...nastyStrings) },
  { weight: 2, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/** Numbers outside every sane range, written verbatim (1e400 parses to Infinity, 2**64 loses precision). */
export const hostileNumber: fc.Arbitrary<RawJsonNumber | number> = fc.oneof(
  fc.constantFrom(
    ...['1e400', '-1e400', '18446744073709551616', '9007199254740993', '-9223372036854775809', '1e-400', '-0', '2147483648', '0.5', '1E2'].map((t) => new RawJsonNumber(t)),
  ),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, 1e21),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Any JSON value of the wrong kind: arrays, objects, booleans, null, numbers, strings. */
export const wrongTypeValue: fc.Arbitrary<unknown> = fc.oneof(
  // JSON.parse makes "__proto__" an own key, as a parsed request body would.
  fc.constantFrom(null, true, false, [], {}, [null], { $ne: null }, JSON.parse('{"__proto__":{"admin":true}}'), [[[[[[[[[[]]]]]]]]]]),
  hostileNumber,
  hostileString,
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
);

/** Cursors a client could forge: well-formed base64url of the wrong shapes, non-finite numbers, non-base64. */
export const forgedCursor: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    b64('["garbage","x"]'),
    b64('1e400'),
    b64('{"name":1}'),
    b64('["\\u0000","x"]'),
    b64('["\\ud800",1]'),
    b64('[1e400,"x"]'),
    b64('[18446744073709551616,"fil_x"]'),
    b64('null'),
    b64('[]'),
    b64('"x"'),
    b64('[["nested"],{"a":1}]'),
    b64('{"seq":-1}'),
    b64('[' + '['.repeat(100) + ']'.repeat(100) + ']'),
    b64('not json'),
    b64('["2024-13-45T99:99:99Z","x"]'),
    b64('[null,null]'),
    '!!!not-base64!!!',
    '====',
    'a',
    '%00',
    '0',
    '-1',
    'A'.repeat(512),
    'A'.repeat(513),
  ),
  fc.string({ unit: anyCodeUnit, maxLength: 30 }).map(b64),
  fc.json({ maxDepth: 3 }).map(b64),
  hostileString,
);

/** Already-encoded path segments: percent junk, encoded separators, invalid UTF-8, traversal. */
export const rawPathSegment: fc.Arbitrary<string> = fc.constantFrom(
  '%00',
  'a%00b',
  '%E0%A4%A',
  '%E0%A4',
  '%',
  '%ZZ',
  '%C0%AE%C0%AE',
  '%ED%A0%80',
  '%FF%FE',
  '..%2F..%2Fadmin',
  '..%2f',
  '%2e%2e',
  '%2F',
  '%5C',
  '.',
  '..',
  '%20',
  '%E2%80%AE',
  '%EF%BB%BF',
  'a'.repeat(2000),
  '%25',
  '%u0000',
  '1e400',
  '-1',
  '99999999999999999999',
  '0x10',
);

/** Header values fetch can carry (no NUL/CR/LF; Latin-1 only) that are still hostile to parsers. */
export const hostileHeaderValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', 'x', '*', 'a'.repeat(4000), 'é', '\u00ff\u00fe', 'null', '-1', '1e400', 'bytes=0-', '"', 'W/"x"', ' , , ', 'a=b; c', 'Bearer'),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }),
);

/** Range headers: valid, reversed, huge, multi-range, wrong unit, garbage. */
export const rangeHeader: fc.Arbitrary<string> = fc.constantFrom(
  'bytes=0-0',
  'bytes=0-',
  'bytes=-1',
  'bytes=-0',
  'bytes=5-1',
  'bytes=99999999999999999999-',
  'bytes=0-99999999999999999999',
  'bytes=1e400-',
  'bytes=0-1,2-3',
  'bytes=abc',
  'bytes=',
  'items=0-1',
  'bytes=-',
  'bytes=--1',
);
