// tusd, the tus reference server (github.com/tus/tusd), as a peer in the upload benchmark: built with
// `go install` into the tools cache on first use (about a minute), started on loopback with its S3 store
// pointed at the benchmark's MinIO, and a minimal tus 1.0 client (creation, PATCH, concatenation).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isPortOpen } from '../../src/temporal/dev-server';
import { stopChild, type Cleanup } from './stack';

export const tusdModule = 'github.com/tus/tusd/v2/cmd/tusd@v2.9.1';
const toolsDir = process.env.SCAIDRIVE_TOOLS_DIR || path.join(os.homedir(), '.cache', 'scaidrive', 'bin');

/** The tusd binary, built into the tools cache when missing. */
export async function ensureTusd(log: (line: string) => void): Promise<string> {
  const binary = path.join(toolsDir, 'tusd');
  if (existsSync(binary)) return binary;
  log(`building tusd (${tusdModule}) into ${toolsDir}`);
  await promisify(execFile)('go', ['install', tusdModule], { env: { ...process.env, GOBIN: toolsDir, GOFLAGS: '-mod=mod' }, cwd: os.tmpdir(), maxBuffer: 16 * 1024 * 1024 });
  return binary;
}

export interface TusdOptions {
  port: number;
  bucket: string;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** S3 part size: the benchmark's chunk size, so one PATCH maps to one part as one chunk maps to one object. */
  partSize: number;
  logFile: string;
}

export async function startTusd(binary: string, options: TusdOptions, cleanup: Cleanup): Promise<{ child: ChildProcess; url: string }> {
  const log = openSync(options.logFile, 'a');
  const child = spawn(
    binary,
    ['-host', '127.0.0.1', '-port', String(options.port), '-s3-bucket', options.bucket, '-s3-endpoint', options.s3.endpoint, '-s3-part-size', String(options.partSize), '-disable-download'],
    {
      env: { ...process.env, AWS_ACCESS_KEY_ID: options.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: options.s3.secretAccessKey, AWS_REGION: options.s3.region },
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  cleanup.add('stop tusd', () => stopChild(child));
  const deadline = Date.now() + 30_000;
  while (!(await isPortOpen('127.0.0.1', options.port))) {
    if (child.exitCode !== null) throw new Error(`tusd exited with code ${child.exitCode}; see ${options.logFile}`);
    if (Date.now() > deadline) throw new Error(`tusd did not listen on ${options.port} within 30 s; see ${options.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url: `http://127.0.0.1:${options.port}/files/` };
}

export type HttpCall = (url: string, method: string, headers: Record<string, string | number>, body?: Buffer) => Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }>;

/** The tus 1.0 requests the benchmark makes. */
export class TusClient {
  constructor(
    private readonly endpoint: string,
    private readonly call: HttpCall,
  ) {}

  /** Creates an upload of `length` bytes (a partial one for concatenation); returns its URL. */
  async create(length: number, partial = false): Promise<string> {
    const headers: Record<string, string | number> = { 'tus-resumable': '1.0.0', 'upload-length': length, 'content-length': 0 };
    if (partial) headers['upload-concat'] = 'partial';
    return this.location(await this.call(this.endpoint, 'POST', headers), 'create');
  }

  /** Sends `data` at `offset`; returns the new offset. */
  async patch(url: string, offset: number, data: Buffer): Promise<number> {
    const answer = await this.call(url, 'PATCH', { 'tus-resumable': '1.0.0', 'upload-offset': offset, 'content-type': 'application/offset+octet-stream', 'content-length': data.length }, data);
    if (answer.status !== 204) throw new Error(`tus PATCH at ${offset}: HTTP ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
    return Number(answer.headers['upload-offset']);
  }

  /** Concatenates finished partial uploads into one; returns the final upload's URL. */
  async concatenate(partials: string[]): Promise<string> {
    const paths = partials.map((url) => new URL(url).pathname).join(' ');
    return this.location(await this.call(this.endpoint, 'POST', { 'tus-resumable': '1.0.0', 'upload-concat': `final;${paths}`, 'content-length': 0 }), 'concatenate');
  }

  private location(answer: { status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }, what: string): string {
    const location = answer.headers.location;
    if (answer.status !== 201 || typeof location !== 'string') throw new Error(`tus ${what}: HTTP ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
    return new URL(location, this.endpoint).toString();
  }
}
