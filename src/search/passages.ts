// Splitting extracted text into overlapping passages for embedding (spec §11): passages of about
// `targetChars`, cut at paragraph, then sentence, then word boundaries where one is near, each starting with the
// last `overlapChars` of the previous one so a sentence cut in two is whole in one of them.

export interface PassageOptions {
  targetChars: number;
  overlapChars: number;
  /** At most this many passages per file (the rest of a huge text is not embedded). */
  maxPassages: number;
}

export const defaultPassageOptions: PassageOptions = { targetChars: 1000, overlapChars: 150, maxPassages: 2000 };

export interface Passage {
  index: number;
  /** Offset of the passage's first character in the text (for snippets). */
  start: number;
  text: string;
}

/** The best cut at or before `limit` (and after `from`): a blank line, a sentence end, a space; else `limit`. */
function cutPoint(text: string, from: number, limit: number): number {
  const window = text.slice(from, limit);
  const floor = Math.floor(window.length / 2); // never cut a passage to less than half its size
  for (const boundary of [/\n\s*\n/g, /[.!?。！？]\s/g, /\s/g]) {
    let best = -1;
    for (const match of window.matchAll(boundary)) if (match.index! >= floor) best = match.index! + match[0].length;
    if (best > 0) return from + best;
  }
  return limit;
}

export function splitPassages(text: string, options: PassageOptions = defaultPassageOptions): Passage[] {
  const { targetChars, overlapChars, maxPassages } = options;
  if (overlapChars >= targetChars) throw new Error('overlapChars must be smaller than targetChars');
  const passages: Passage[] = [];
  let start = 0;
  while (start < text.length && passages.length < maxPassages) {
    const limit = Math.min(text.length, start + targetChars);
    const end = limit === text.length ? limit : cutPoint(text, start, limit);
    const body = text.slice(start, end).trim();
    if (body) passages.push({ index: passages.length, start, text: body });
    if (end >= text.length) break;
    // The next passage repeats the tail of this one, from a word start.
    let next = Math.max(end - overlapChars, start + 1);
    const space = text.indexOf(' ', next);
    if (space !== -1 && space < end) next = space + 1;
    start = next;
  }
  return passages;
}
