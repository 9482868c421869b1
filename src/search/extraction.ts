// Text extraction for search (spec §11): plain text, Markdown, CSV/TSV, JSON, HTML, PDF and DOCX, with size and
// time limits. Formats are recognised by their bytes first (a PDF renamed .txt is still a PDF) and then by the
// name. Text formats are read as a stream and cut at the text limit; PDF (unpdf, on Mozilla's pdf.js), DOCX
// (mammoth) and HTML (html-to-text) are parsed whole, on a thread of their own with a time and heap limit (see
// document-parser.ts), so they have a size limit. Anything else is `unsupported` with a reason — there is no OCR
// by default.
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { parseDocument } from './document-parser';

export type ExtractionFormat = 'text' | 'markdown' | 'csv' | 'json' | 'html' | 'pdf' | 'docx';

export type Extraction =
  | { status: 'extracted'; format: ExtractionFormat; text: string; truncated: boolean }
  | { status: 'unsupported'; reason: string };

export interface ExtractionLimits {
  /** Largest PDF or DOCX read (they are parsed whole). */
  maxDocumentBytes: number;
  /** Text kept per file (the rest is cut off; `truncated` says so). */
  maxTextChars: number;
  /** Longest a parse may take (the parsing thread is terminated then). */
  timeoutMs: number;
  /** Heap of the parsing thread, in MiB. */
  maxParseHeapMb: number;
}

export const defaultExtractionLimits: ExtractionLimits = { maxDocumentBytes: 50 * 1024 * 1024, maxTextChars: 2_000_000, timeoutMs: 60_000, maxParseHeapMb: 1024 };

const byExtension: Record<string, ExtractionFormat> = {
  txt: 'text',
  text: 'text',
  log: 'text',
  md: 'markdown',
  markdown: 'markdown',
  csv: 'csv',
  tsv: 'csv',
  json: 'json',
  html: 'html',
  htm: 'html',
  pdf: 'pdf',
  docx: 'docx',
};

/** The format by the file's first bytes, then by its extension; undefined when neither says. */
export function detectFormat(name: string, head: Buffer): ExtractionFormat | undefined {
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return 'pdf';
  const extension = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
  const byName = byExtension[extension];
  // A ZIP is a DOCX only by its name (other Office and archive formats are ZIPs too).
  if (head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return byName === 'docx' ? 'docx' : undefined;
  if (byName === 'pdf' || byName === 'docx') return undefined; // the name says so, the bytes do not
  return byName;
}

/** JSON's keys and string values, one per line (numbers and booleans carry little to search for). */
function jsonText(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) jsonText(item, out);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      jsonText(item, out);
    }
  }
}

/** Reads a stream as UTF-8 up to `maxChars` characters (decoding across chunk boundaries); stops reading there. */
async function readText(stream: AsyncIterable<Buffer>, first: Buffer, maxChars: number): Promise<{ text: string; truncated: boolean }> {
  const decoder = new StringDecoder('utf8');
  let text = decoder.write(first);
  if (text.length > maxChars) return { text: text.slice(0, maxChars), truncated: true };
  for await (const chunk of stream) {
    text += decoder.write(chunk);
    if (text.length > maxChars) return { text: text.slice(0, maxChars), truncated: true };
  }
  text += decoder.end();
  return { text, truncated: false };
}

async function readAll(stream: AsyncIterable<Buffer>, first: Buffer, maxBytes: number): Promise<Buffer | undefined> {
  const parts = [first];
  let size = first.length;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}

/** Takes the first chunk(s) of a stream until `bytes` are there (or it ends), for format detection. */
async function head(iterator: AsyncIterator<Buffer>, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done) break;
    parts.push(next.value);
    size += next.value.length;
  }
  return Buffer.concat(parts, size);
}

const clip = (text: string, maxChars: number) => ({ text: text.length > maxChars ? text.slice(0, maxChars) : text, truncated: text.length > maxChars });

/**
 * Extracts a file's text. `content` is its bytes as a stream (read at most as far as needed); `size` its
 * length. A damaged, oversized or too slow document is `unsupported` with the reason; only a failure to read
 * the stream itself throws.
 */
export async function extractText(name: string, size: number, content: Readable, limits: ExtractionLimits = defaultExtractionLimits): Promise<Extraction> {
  const iterator = (content as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator };
  try {
    const first = await head(iterator, 8);
    const format = detectFormat(name, first);
    if (!format) return { status: 'unsupported', reason: `no text extractor for "${name}" (OCR is off)` };
    if (format === 'pdf' || format === 'docx') {
      if (size > limits.maxDocumentBytes) return { status: 'unsupported', reason: `${format.toUpperCase()} larger than ${limits.maxDocumentBytes} bytes` };
      const bytes = await readAll(rest, first, limits.maxDocumentBytes);
      if (!bytes) return { status: 'unsupported', reason: `${format.toUpperCase()} larger than ${limits.maxDocumentBytes} bytes` };
      const parsed = await parseDocument(format, bytes, { timeoutMs: limits.timeoutMs, maxHeapMb: limits.maxParseHeapMb });
      if (!parsed.ok) return { status: 'unsupported', reason: parsed.reason };
      return { status: 'extracted', format, ...clip(parsed.text.trim(), limits.maxTextChars) };
    }
    if (format === 'html' || format === 'json') {
      // Parsed whole: bounded by the text limit (four bytes per character at most).
      const bytes = await readAll(rest, first, limits.maxTextChars * 4);
      if (!bytes) return { status: 'unsupported', reason: `${format.toUpperCase()} larger than the ${limits.maxTextChars}-character text limit` };
      if (format === 'html') {
        const parsed = await parseDocument(format, bytes, { timeoutMs: limits.timeoutMs, maxHeapMb: limits.maxParseHeapMb });
        return parsed.ok ? { status: 'extracted', format, ...clip(parsed.text, limits.maxTextChars) } : { status: 'unsupported', reason: parsed.reason };
      }
      const source = bytes.toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(source);
      } catch {
        return { status: 'extracted', format, ...clip(source, limits.maxTextChars) };
      }
      const parts: string[] = [];
      jsonText(parsed, parts);
      return { status: 'extracted', format, ...clip(parts.join('\n'), limits.maxTextChars) };
    }
    return { status: 'extracted', format, ...(await readText(rest, first, limits.maxTextChars)) };
  } finally {
    content.destroy();
  }
}
