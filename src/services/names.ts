// Node names: what a name may contain (a pure check) and its stored form (NFC). Comparing names is the
// database's job (node_name_key), never this module's.

/** Characters that make a name render differently from what it is: reordering and invisible ones. */
const characterClasses: { pattern: RegExp; problem: string }[] = [
  { pattern: /[\u0000-\u001f\u007f]/, problem: 'Name must not contain control characters (U+0000–U+001F, U+007F)' },
  { pattern: /[\u0080-\u009f]/, problem: 'Name must not contain C1 control characters (U+0080–U+009F)' },
  { pattern: /[\u202a-\u202e\u2066-\u2069]/, problem: 'Name must not contain bidirectional override characters (U+202A–U+202E, U+2066–U+2069)' },
  { pattern: /[\u200b-\u200d\u2060\ufeff]/, problem: 'Name must not contain zero-width characters (U+200B–U+200D, U+2060, U+FEFF)' },
];

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why a name is not acceptable, or null when it is (spec §5: no `/`, NUL, `.`/`..`, ≤ 255 bytes; and
 * nothing that hides or reorders what the name says).
 */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'Name must not be empty';
  // Before the byte count: an unpaired surrogate has no UTF-8 form at all.
  if (loneSurrogate.test(name)) return 'Name must not contain unpaired surrogate code units (not valid Unicode)';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'Name must be at most 255 bytes';
  if (name === '.' || name === '..') return 'Name must not be "." or ".."';
  if (name.includes('/') || name.includes('\\')) return 'Name must not contain "/" or "\\"';
  for (const { pattern, problem } of characterClasses) if (pattern.test(name)) return problem;
  if (name !== name.trim()) return 'Name must not start or end with whitespace';
  return null;
}

/**
 * The form a name is stored in: NFC, so `café` typed precomposed or as `e` + U+0301 is one name. The
 * checks run on that form (normalising can change the byte length). Returns the problem or the name.
 */
export function normalizedName(name: string): { name: string; problem: null } | { name: string; problem: string } {
  const nfc = loneSurrogate.test(name) ? name : name.normalize('NFC');
  const problem = nameProblem(nfc);
  return problem ? { name: nfc, problem } : { name: nfc, problem: null };
}

/**
 * The name a client's conflicting content is saved under beside the server's (keep_both):
 * "report (conflict from Laptop 2026-12-03).pdf", with ` N` after the date for the Nth such copy of a day. The
 * device name is made name-safe (separators and invisible characters become "_") and shortened; the stem is
 * shortened when the result would pass 255 bytes.
 */
export function conflictCopyName(name: string, deviceName: string, date: Date, attempt = 1): string {
  const device = Array.from(deviceName.replace(/[/\\\u0000-\u001f\u007f-\u009f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]/g, '_').trim() || 'device')
    .slice(0, 40)
    .join('');
  const dot = name.lastIndexOf('.');
  const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  const suffix = ` (conflict from ${device} ${date.toISOString().slice(0, 10)}${attempt > 1 ? ` ${attempt}` : ''})${extension}`;
  let shortened = Array.from(stem);
  while (shortened.length > 1 && Buffer.byteLength(shortened.join('') + suffix, 'utf8') > 255) shortened = shortened.slice(0, -1);
  return `${shortened.join('').trimEnd()}${suffix}`;
}
