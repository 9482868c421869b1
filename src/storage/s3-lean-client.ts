// The requests on the data path — HEAD, PUT of one in-memory chunk, GET of a chunk — to an S3-compatible store
// without the AWS SDK's per-request machinery (middleware stack, endpoint rules, response deserialisation: 2–4 ms
// of CPU per request). Finalize checks that every chunk of an upload is still stored — 128 HEADs per GiB of 8 MiB
// chunks — which through the SDK took ~0.5 s of a 0.7 s finalize; chunk PUTs through the SDK cost the API ~0.35
// CPU-s more per GiB, and a download reads one object per chunk. Signed with the SDK's own SigV4 signer and
// credential provider; plain keep-alive HTTP(S) underneath.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Client } from '@aws-sdk/client-s3';

/** The checksum constructor SigV4 wants (SHA-256, or HMAC-SHA-256 with a key), over node:crypto. */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: SourceData) => (typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data));

class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    throw new Error('not resettable');
  }
}

/** A path segment as S3's canonical URI has it (RFC 3986: only unreserved characters stay as they are). */
export const encodeKeySegment = (segment: string) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export class S3LeanClient {
  private readonly signer: SignatureV4;
  /** HEADs and PUTs: short requests, at most 64 connections to the store. */
  private readonly agent: http.Agent;
  /**
   * GETs, whose responses a download holds for as long as its client takes: their own connections, unbounded, so
   * paused or slow downloads never hold up the chunk PUTs and HEADs of everyone else.
   */
  private readonly streamAgent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(
    private readonly endpoint: URL,
    private readonly bucket: string,
    private readonly pathStyle: boolean,
    config: Pick<S3Client['config'], 'credentials' | 'region'>,
    private readonly timeoutMs = 30_000,
  ) {
    this.signer = new SignatureV4({ service: 's3', region: config.region, credentials: config.credentials, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    this.transport = endpoint.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: 64 });
    this.streamAgent = new this.transport.Agent({ keepAlive: true });
  }

  /** The object's size, or null when the store answers 404; any other answer is an error. */
  async head(key: string): Promise<{ size: number } | null> {
    const response = await this.send('HEAD', key, {});
    if (response.statusCode === 200) return drained(response, { size: Number(response.headers['content-length'] ?? 0) });
    if (response.statusCode === 404) return drained(response, null);
    throw await storeError('HEAD', key, response);
  }

  /**
   * Stores `body` under `key`. The payload is sent unsigned (UNSIGNED-PAYLOAD): the caller has hashed these bytes
   * in its own memory already, and having the store hash them again to check a signed payload hash cost MinIO ~0.8
   * CPU-s per GiB — on a machine the API shares with the store, a tenth of the upload's speed. The transfer itself
   * is protected by TLS on an https endpoint (and by TCP's checksums on a plain one).
   */
  async put(key: string, body: Buffer): Promise<void> {
    const response = await this.send('PUT', key, { 'content-length': String(body.length) }, body);
    if (response.statusCode !== 200) throw await storeError('PUT', key, response);
    return drained(response, undefined);
  }

  /**
   * The object's bytes (or a range of them) as the store's response stream, or null when the store has no such
   * key (a missing bucket is an error). No idle timeout once the bytes flow: a slow client's back-pressure may hold
   * the stream — and the object read ahead of it — for as long as the download takes.
   */
  async get(key: string, range?: { start: number; end: number }): Promise<Readable | null> {
    const response = await this.send('GET', key, range ? { range: `bytes=${range.start}-${range.end}` } : {});
    if (response.statusCode === 200 || response.statusCode === 206) {
      response.socket.setTimeout(0);
      return response;
    }
    const error = await storeError('GET', key, response);
    if (error.name === 'NoSuchKey') return null;
    throw error;
  }

  /**
   * One request, answered with the store's response (its body unread); sent again once when a kept-alive
   * connection turns out closed by the store (a reset on a reused socket means the request was not processed —
   * the pattern Node's http documentation gives).
   */
  private async send(method: 'HEAD' | 'PUT' | 'GET', key: string, headers: Record<string, string>, body?: Buffer): Promise<http.IncomingMessage> {
    try {
      return await this.sendOnce(method, key, headers, body);
    } catch (error) {
      if (!(error as { onReusedSocket?: boolean }).onReusedSocket) throw error;
      return this.sendOnce(method, key, headers, body);
    }
  }

  private async sendOnce(method: 'HEAD' | 'PUT' | 'GET', key: string, headers: Record<string, string>, body?: Buffer): Promise<http.IncomingMessage> {
    const base = this.endpoint.pathname.replace(/\/+$/, '');
    const path = `${base}${this.pathStyle ? `/${encodeKeySegment(this.bucket)}` : ''}/${key.split('/').map(encodeKeySegment).join('/')}`;
    const hostname = this.pathStyle ? this.endpoint.hostname : `${this.bucket}.${this.endpoint.hostname}`;
    const port = this.endpoint.port ? Number(this.endpoint.port) : undefined;
    const host = port ? `${hostname}:${port}` : hostname;
    const signed = await this.signer.sign({ method, protocol: this.endpoint.protocol, hostname, port, path, query: {}, headers: { ...headers, host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    return new Promise((resolve, reject) => {
      const agent = method === 'GET' ? this.streamAgent : this.agent;
      const request = this.transport.request({ method, hostname, port, path, headers: signed.headers, agent, timeout: this.timeoutMs }, resolve);
      request.on('timeout', () => request.destroy(new Error(`${method} ${key}: no answer from the store within ${this.timeoutMs / 1000} s`)));
      request.on('error', (error: NodeJS.ErrnoException) => {
        reject(request.reusedSocket && error.code === 'ECONNRESET' ? Object.assign(error, { onReusedSocket: true }) : error);
      });
      request.end(body);
    });
  }

  destroy(): void {
    this.agent.destroy();
    this.streamAgent.destroy();
  }
}

/** Reads the (empty or short) rest of an answer, so its connection goes back to the pool, and gives `value`. */
async function drained<T>(response: http.IncomingMessage, value: T): Promise<T> {
  response.resume();
  if (!response.complete) await finished(response);
  return value;
}

/** An error for a store's refusal, with its S3 error code when the answer's XML document names one. */
async function storeError(method: string, key: string, response: http.IncomingMessage): Promise<Error> {
  let text = '';
  for await (const part of response) if (text.length < 4096) text += (part as Buffer).toString('utf8');
  const status = response.statusCode ?? 0;
  const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
  return Object.assign(new Error(`${method} ${key}: the store answered HTTP ${status}${code ? ` (${code})` : ''}`), { name: code ?? 'StoreError', $metadata: { httpStatusCode: status } });
}
