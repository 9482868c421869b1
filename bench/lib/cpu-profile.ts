// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per package/area, optionally
// restricted to a time window. V8 stamps samples with the monotonic clock in microseconds, the clock of
// process.hrtime(), so windows recorded with monotonicMicros() in another process line up.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time in the window, ms (idle included). */
  totalMs: number;
  idleMs: number;
  byArea: { name: string; ms: number; pct: number }[];
  /** Busy time per stage of the data path (every area counted, not only the top ones). */
  byStage: { name: string; ms: number; pct: number }[];
  byFunction: { name: string; area: string; ms: number; pct: number }[];
}

export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * The newest main-thread profile in a directory. Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile;
 * thread 0 is the main thread (others are worker threads, e.g. tsx's module-loader hooks).
 */
export async function mainThreadProfile(dir: string): Promise<string | undefined> {
  try {
    const files = (await readdir(dir)).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)).sort();
    return files.length ? path.join(dir, files[files.length - 1]!) : undefined;
  } catch {
    return undefined;
  }
}

function area(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).replace(/^internal\//, '').split('/')[0]}`;
  const src = /\/(src\/[^?]+)/.exec(url);
  if (src) return src[1]!;
  return url.replace(/^file:\/\//, '');
}

/** The stage of the data path an area belongs to (issue #13: receive, hash, S3 client, database). */
export function stageOf(area: string): string {
  if (/^node:crypto$|^hash-wasm$/.test(area)) return 'hash';
  if (/^@aws-sdk\/|^@smithy\//.test(area)) return 'S3 client';
  if (/^(pg|pg-[a-z-]+|kysely)$/.test(area)) return 'database';
  if (/^node:(_http_\w+|http|net|stream|streams|buffer|events|timers)$|^(koa|koa-[a-z-]+|@koa\/[a-z-]+|raw-body|co-body)$/.test(area)) return 'receive (HTTP, streams)';
  if (area === '(garbage collector)') return 'GC';
  if (area.startsWith('src/')) return 'ScaiDrive code';
  if (area === '(native / V8 builtins)' || area === '(program)') return 'V8 builtins, native';
  return 'other packages';
}

export async function summarizeProfile(file: string, window?: { startUs: number; endUs: number }, top = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const perNode = new Map<number, number>();
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    const duration = profile.timeDeltas[i + 1] ?? 0;
    if (window && (time < window.startUs || time > window.endUs)) continue;
    const id = profile.samples[i]!;
    perNode.set(id, (perNode.get(id) ?? 0) + duration);
  }
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, { area: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of perNode) {
    const frame = nodes.get(id)!.callFrame;
    total += us;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = area(frame.url, frame.functionName);
    byArea.set(where, (byArea.get(where) ?? 0) + us);
    const file = frame.url ? `${frame.url.split('/').slice(-1)[0]}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
    const entry = byFunction.get(key) ?? { area: where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const busy = total - idle || 1;
  const ms = (us: number) => Math.round(us / 100) / 10;
  const pct = (us: number) => Math.round((us / busy) * 1000) / 10;
  const byStage = new Map<string, number>();
  for (const [name, us] of byArea) byStage.set(stageOf(name), (byStage.get(stageOf(name)) ?? 0) + us);
  return {
    totalMs: ms(total),
    byStage: [...byStage.entries()].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: ms(us), pct: pct(us) })),
    idleMs: ms(idle),
    byArea: [...byArea.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, ms: ms(us), pct: pct(us) })),
    byFunction: [...byFunction.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, top).map(([name, v]) => ({ name, area: v.area, ms: ms(v.us), pct: pct(v.us) })),
  };
}
