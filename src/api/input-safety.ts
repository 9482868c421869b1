// Strings from outside must be safe to hand to PostgreSQL: no NUL (text columns refuse it) and no unpaired
// UTF-16 surrogates (they cannot be encoded as UTF-8). Checked once for every input, before any schema.

/** NUL, or a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const unsafeCharacter = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored, or null when it can. */
export function unsafeStringProblem(value: string): string | null {
  const match = unsafeCharacter.exec(value);
  if (!match) return null;
  return match[0] === '\u0000' ? 'String must not contain NUL characters' : 'String must not contain unpaired UTF-16 surrogates';
}

export interface UnsafeValue {
  /** Path inside the input, e.g. `['items', 2, 'name']`; object keys are checked too. */
  path: (string | number)[];
  problem: string;
}

/**
 * The first unsafe string (value or object key) in a parsed JSON value, query object or params object.
 * Walks at most `maxDepth` levels: deeper structures are refused outright rather than walked.
 */
export function findUnsafeValue(input: unknown, maxDepth = 64): UnsafeValue | null {
  const walk = (value: unknown, path: (string | number)[]): UnsafeValue | null => {
    if (typeof value === 'string') {
      const problem = unsafeStringProblem(value);
      return problem ? { path, problem } : null;
    }
    if (typeof value === 'number') return Number.isFinite(value) ? null : { path, problem: 'Number must be finite' };
    if (value === null || typeof value !== 'object') return null;
    if (path.length >= maxDepth) return { path, problem: `Input nests deeper than ${maxDepth} levels` };
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const found = walk(value[i], [...path, i]);
        if (found) return found;
      }
      return null;
    }
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = unsafeStringProblem(key);
      if (keyProblem) return { path: [...path, key], problem: keyProblem };
      const found = walk(item, [...path, key]);
      if (found) return found;
    }
    return null;
  };
  return walk(input, []);
}
