// Puts a generated request on the wire exactly as generated (raw percent-encoding, raw JSON numbers, raw bytes),
// and judges the answer against the spec's promises: below 500, and 4xx in the error shape.
import { createHmac } from 'node:crypto';
import { Agent, type Dispatcher } from 'undici';
import { Ref, type GeneratedRequest } from './openapi-operations';
import { RawJsonNumber, encodeComponent, toJsonText } from './hostile-values';
import type { FuzzCallers, ResourcePools } from './fuzz-fixtures';

export interface SentRequest {
  method: string;
  template: string;
  caller: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const pick = (pools: ResourcePools, ref: Ref) => {
  const pool = pools[ref.kind];
  return pool.length ? pool[ref.index % pool.length]! : 'missing';
};

/** Replaces every Ref inside a JSON value by the id it stands for. */
function resolveRefs(value: unknown, pools: ResourcePools): unknown {
  if (value instanceof Ref) return pick(pools, value);
  if (Array.isArray(value)) return value.map((item) => resolveRefs(item, pools));
  // Not `value.constructor === Object`: generated bodies carry own keys named "constructor" and "__proto__".
  if (value && typeof value === 'object' && !(value instanceof RawJsonNumber)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) Object.defineProperty(out, key, { value: resolveRefs(item, pools), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

const encodePart = (value: Ref | { raw: string } | string, pools: ResourcePools) =>
  value instanceof Ref ? encodeComponent(pick(pools, value)) : typeof value === 'object' ? value.raw : encodeComponent(value);

/** The concrete request: URL, headers and body bytes. */
export function materialise(request: GeneratedRequest, callers: FuzzCallers, pools: ResourcePools, webhookSecret: string): SentRequest {
  const { operation } = request;
  const path = operation.template.replace(/\{(\w+)\}/g, (_m, name: string) => encodePart(request.path[name] ?? 'missing', pools));
  const query = request.query.map(([name, value]) => `${encodeComponent(name)}=${encodePart(value, pools)}`).join('&');
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) headers[name] = value instanceof Ref ? pick(pools, value) : value;
  const authorization = callers.authorization[request.caller as keyof typeof callers.authorization];
  if (authorization) headers.authorization = authorization;
  if (request.caller === 'apiKey') headers['x-act-as-user'] ??= callers.member.userId;
  let body: string | Buffer | undefined;
  if (request.body && 'json' in request.body) {
    body = toJsonText(resolveRefs(request.body.json, pools));
    headers['content-type'] ??= request.body.contentType ?? 'application/json';
  } else if (request.body) {
    body = request.body.text;
    headers['content-type'] ??= request.body.contentType ?? (operation.rawBodyType ?? 'application/json');
  }
  if (request.webhookSignature && request.webhookSignature !== 'none') {
    const timestamp = Math.floor(Date.now() / 1000) - (request.webhookSignature === 'stale' ? 3600 : 0);
    const mac = createHmac('sha256', request.webhookSignature === 'wrong' ? 'not-the-secret' : webhookSecret);
    mac.update(`${timestamp}.`).update(body ?? '');
    headers['x-scaikey-timestamp'] = String(timestamp);
    headers['x-scaikey-signature'] = `sha256=${mac.digest('hex')}`;
  }
  return { method: operation.method, template: operation.template, caller: request.caller, url: query ? `${path}?${query}` : path, headers, body };
}

/**
 * Sends the request; a transport error (reset, hang-up, timeout) is returned as status 0 with its message.
 * A pooled keep-alive socket the server closed just before reuse fails with no response at all: that is the
 * client's race, not an answer, so such a request is sent once more on a new connection.
 */
export async function send(baseUrl: string, request: SentRequest, dispatcher: Dispatcher): Promise<Answer> {
  const answer = await sendOnce(baseUrl, request, dispatcher);
  if (answer.status === 0 && answer.text.startsWith('transport error: UND_ERR_SOCKET')) {
    const fresh = new Agent({ connections: 1 });
    try {
      return await sendOnce(baseUrl, request, fresh);
    } finally {
      await fresh.close();
    }
  }
  return answer;
}

async function sendOnce(baseUrl: string, request: SentRequest, dispatcher: Dispatcher): Promise<Answer> {
  try {
    const response = await fetch(`${baseUrl}${request.url}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      dispatcher,
      redirect: 'manual',
      signal: AbortSignal.timeout(60_000),
    } as RequestInit);
    try {
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      // The spec lets a download truncate its stream when something fails after the headers; nothing here fails.
      const cause = (error as { cause?: { code?: string } }).cause;
      return { status: 0, headers: response.headers, text: `transport error: body cut off after ${response.status} (content-length ${response.headers.get('content-length')}): ${cause?.code ?? (error as Error).message}` };
    }
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    // fetch refusing to build the request is a bug of this test, not of the server: surface it loudly.
    if (error instanceof TypeError && !cause?.code) throw new Error(`fuzz test built an unsendable request ${JSON.stringify(request.url)}: ${error.message}`);
    return { status: 0, headers: new Headers(), text: `transport error: ${cause?.code ?? ''} ${cause?.message ?? (error as Error).message}` };
  }
}

/** What breaks the spec in an answer, or null. `code` is the error code when the body has one. */
export function judge(answer: Answer): { problem: string; code?: string } | null {
  const { status, headers, text } = answer;
  if (status === 0) return { problem: text };
  if (status < 400) return null;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return { problem: `${status} with a non-JSON body: ${JSON.stringify(text.slice(0, 120))}` };
  }
  const code = typeof body?.code === 'string' ? body.code : undefined;
  // 507 QUOTA_EXCEEDED is the spec's own answer to a full quota, not a server fault; every other 5xx is one
  // (503 included: nothing here is busy enough to excuse it).
  if (status >= 500 && !(status === 507 && code === 'QUOTA_EXCEEDED')) return { problem: `${status} server error`, code };
  if (!(headers.get('content-type') ?? '').includes('application/json')) return { problem: `${status} error without a JSON content type`, code };
  if (!code || !/^[A-Z][A-Z0-9_]*$/.test(code)) return { problem: `${status} error without an UPPER_SNAKE code`, code };
  if (typeof body.request_id !== 'string' || !body.request_id) return { problem: `${status} error without request_id`, code };
  if (body.request_id !== headers.get('x-request-id')) return { problem: `${status} error whose request_id differs from X-Request-Id`, code };
  if (status === 422) {
    const entries = Array.isArray(body.detail) ? body.detail : null;
    const wellFormed = entries && entries.length > 0 && entries.every((e: any) => Array.isArray(e?.loc) && e.loc.every((p: unknown) => typeof p === 'string' || typeof p === 'number') && typeof e.msg === 'string' && typeof e.type === 'string');
    if (!wellFormed) return { problem: '422 whose detail is not a non-empty array of {loc, msg, type}', code };
  } else if (typeof body.detail !== 'string' || !body.detail) {
    return { problem: `${status} error whose detail is not a string`, code };
  }
  if (status === 429 && !headers.get('retry-after')) return { problem: '429 without Retry-After', code };
  if (status === 405 && !headers.get('allow')) return { problem: '405 without Allow', code };
  return null;
}

/** A copy-pasteable description of a request (credentials named by caller, long values shortened). */
export function describe(request: SentRequest): string {
  const headers = Object.entries(request.headers)
    .filter(([name]) => name !== 'authorization')
    .map(([name, value]) => `${name}: ${JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…(${value.length} chars)` : value)}`);
  const body =
    request.body === undefined
      ? ''
      : Buffer.isBuffer(request.body)
        ? ` body(hex)=${request.body.subarray(0, 64).toString('hex')}${request.body.length > 64 ? `…(${request.body.length} bytes)` : ''}`
        : ` body=${JSON.stringify(request.body.length > 400 ? `${request.body.slice(0, 400)}…(${request.body.length} chars)` : request.body)}`;
  const url = request.url.length > 400 ? `${request.url.slice(0, 400)}…(${request.url.length} chars)` : request.url;
  return `${request.method} ${url} as ${request.caller}${headers.length ? ` [${headers.join(', ')}]` : ''}${body}`;
}
