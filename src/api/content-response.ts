// Sends a version's bytes over HTTP: Range (single), ETag/If-None-Match, Content-Length, X-Checksum-Sha256;
// HEAD gets the same headers without the bytes being read.
import { z } from './openapi';
import type { Version } from '../db/database';
import { AppError } from '../errors';
import { openVersionStream, parseRange, presignedVersionUrl } from '../services/content.service';
import { pipeInBatches } from './batched-response';
import type { AppContext } from './context';

export function contentTypeFor(name: string): string {
  const extension = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
  const types: Record<string, string> = {
    txt: 'text/plain; charset=utf-8',
    md: 'text/markdown; charset=utf-8',
    html: 'text/html; charset=utf-8',
    json: 'application/json',
    csv: 'text/csv; charset=utf-8',
    pdf: 'application/pdf',
    png: 'image/png',
    jpg: 'image/jpeg',
    jpeg: 'image/jpeg',
    gif: 'image/gif',
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    zip: 'application/zip',
  };
  return types[extension] ?? 'application/octet-stream';
}

/** RFC 8187 ext-value encoding: encodeURIComponent leaves ' ( ) * which attr-char does not allow. */
function rfc8187Encode(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `?redirect=1` (or `true`): the client would rather follow a redirect to the store than have the API stream. */
export const redirectQuery = z.object({ redirect: z.enum(['0', '1', 'true', 'false']).optional() });

/**
 * Answers a version's content: 304 when the client has it, else — when `redirect` is asked for and the store can
 * serve it (S3, one chunk) — 302 to a 15-minute presigned GET carrying the same ETag and X-Checksum-Sha256, else
 * the bytes streamed by the API.
 */
export async function sendVersionContent(ctx: AppContext, version: Version, fileName: string, options: { redirect?: string } = {}): Promise<void> {
  const etag = `"${version.checksum_sha256}"`;
  const contentDisposition = `attachment; filename*=UTF-8''${rfc8187Encode(fileName)}`;
  ctx.set('ETag', etag);
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('X-Checksum-Sha256', version.checksum_sha256);
  ctx.set('Cache-Control', 'private, no-cache');
  ctx.set('Content-Disposition', contentDisposition);
  // Uploaded bytes are the tenant's, not ours: a browser must never sniff them into HTML or script.
  ctx.set('X-Content-Type-Options', 'nosniff');
  const ifNoneMatch = ctx.get('if-none-match');
  if (ifNoneMatch && (ifNoneMatch === '*' || ifNoneMatch.split(',').map((t) => t.trim().replace(/^W\//, '')).includes(etag))) {
    ctx.status = 304;
    return;
  }
  if (ctx.method === 'GET' && (options.redirect === '1' || options.redirect === 'true')) {
    const url = await presignedVersionUrl(ctx.deps.db, ctx.deps.storage, version.id, { contentType: contentTypeFor(fileName), contentDisposition });
    if (url) {
      ctx.set('Cache-Control', 'private, no-store'); // the URL is a short-lived credential
      ctx.status = 302;
      ctx.redirect(url);
      return;
    }
    ctx.set('X-Redirect-Unavailable', ctx.deps.storage.driver === 's3' ? 'stored in several chunks' : 'not on an object store');
  }
  const ifRange = ctx.get('if-range');
  const range = ifRange && ifRange !== etag ? undefined : parseRange(ctx.get('range') || undefined, version.size);
  if (range === 'unsatisfiable') {
    throw new AppError(416, 'RANGE_NOT_SATISFIABLE', `Range not satisfiable for ${version.size} bytes`, undefined, { 'Content-Range': `bytes */${version.size}` });
  }
  ctx.type = contentTypeFor(fileName);
  if (ctx.method === 'HEAD') {
    // Koa sends no body for HEAD; opening the stream would read the blob store for nothing.
    ctx.status = range ? 206 : 200;
    if (range) ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${version.size}`);
    ctx.length = range ? range.end - range.start + 1 : version.size;
    return;
  }
  // Counts the bytes as they are handed on to the response (counted by the source itself: a Transform would cost a
  // stream hop per piece).
  const bytesDownloaded = ctx.deps.metrics.bytesDownloaded;
  const source = openVersionStream(ctx.deps.db, ctx.deps.storage, version.id, range, (bytes) => bytesDownloaded.inc(bytes));
  // An error after the headers went out truncates the body (pipeInBatches closes the connection: clients check
  // Content-Length and the checksum). A client gone mid-download destroys the source, which releases the store
  // objects it has open, the one read ahead included.
  source.once('error', (error) => ctx.state.log.error({ err: error, version_id: version.id }, 'download stream failed'));
  if (range) {
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${version.size}`);
    ctx.length = range.end - range.start + 1;
  } else {
    ctx.status = 200;
    ctx.length = version.size;
  }
  // The body is written here, in batches (see batched-response.ts), not by Koa's pipe: status and headers are on
  // the response already.
  ctx.respond = false;
  pipeInBatches(source, ctx.res);
}
