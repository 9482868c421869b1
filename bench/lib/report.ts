// Small formatting helpers shared by benchmarks: markdown tables, numbers, dated result file names.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const MiB = 1024 * 1024;
/** Throughput unit of every report: 1 MB = 10^6 bytes. */
export const MB = 1_000_000;

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.slice(1).map(line)].join('\n');
}

export const fixed = (value: number | undefined, digits = 2): string => (value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits));

export const megabytesPerSecond = (bytes: number, seconds: number): number => bytes / MB / seconds;

/** Local calendar date, YYYY-MM-DD. */
export function localDate(date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Writes `<dir>/<base>.md` and `<dir>/<base>.json`; returns their paths. */
export async function writeResults(dir: string, base: string, markdown: string, json: unknown): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const md = path.join(dir, `${base}.md`);
  const js = path.join(dir, `${base}.json`);
  await writeFile(md, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  await writeFile(js, `${JSON.stringify(json, null, 2)}\n`);
  return [md, js];
}
