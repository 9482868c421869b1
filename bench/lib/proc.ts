// /proc readers for benchmarks: a process's resident memory (VmRSS, VmHWM), its CPU time, the machine's
// busy CPU time, and a sampler that records the peak RSS of a process overall and per named phase.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface MemoryStatus {
  rssBytes: number;
  hwmBytes: number;
}

/** VmRSS and VmHWM of a process, or null once it is gone. */
export function readMemory(pid: number): MemoryStatus | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
}

/** The command line of a process (to show which program a pid really is). */
export function readCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** User + system CPU seconds a process has used so far (its own, not its children's), or null once it is gone. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at the last ')'; utime and stime are fields 14 and 15.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of the whole machine so far, summed over all cores: busy (user, nice, system, irq, softirq)
 * and steal (time the hypervisor gave this VM's CPUs to someone else).
 */
export function readMachineCpu(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user + nice + system + irq + softirq) / ticksPerSecond, steal: steal / ticksPerSecond };
}

/** CPU seconds used by each named process (and the machine) between two snapshots. */
export class CpuMeter {
  constructor(private readonly pids: Record<string, number>) {}

  snapshot(): Record<string, number> {
    const machine = readMachineCpu();
    const result: Record<string, number> = { machine: machine.busy, steal: machine.steal };
    for (const [name, pid] of Object.entries(this.pids)) result[name] = readCpuSeconds(pid) ?? NaN;
    return result;
  }

  static delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
    const result: Record<string, number> = {};
    for (const key of Object.keys(after)) result[key] = Math.round(((after[key] ?? NaN) - (before[key] ?? NaN)) * 100) / 100;
    return result;
  }
}

/** Samples VmRSS of one process at a fixed interval; keeps the overall peak and the peak of each phase. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private phase = 'start-up';
  private lastSampleAt = 0;
  peakBytes = 0;
  samples = 0;
  maxGapMs = 0;
  readonly phasePeaks = new Map<string, number>();

  constructor(
    readonly pid: number,
    readonly intervalMs = 100,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** Starts a new phase; samples once at the boundary so short phases get at least one reading. */
  setPhase(name: string): void {
    this.sample();
    this.phase = name;
    this.sample();
  }

  sample(): void {
    const memory = readMemory(this.pid);
    if (!memory || !Number.isFinite(memory.rssBytes)) return;
    const now = performance.now();
    if (this.lastSampleAt) this.maxGapMs = Math.max(this.maxGapMs, now - this.lastSampleAt);
    this.lastSampleAt = now;
    this.samples += 1;
    this.peakBytes = Math.max(this.peakBytes, memory.rssBytes);
    this.phasePeaks.set(this.phase, Math.max(this.phasePeaks.get(this.phase) ?? 0, memory.rssBytes));
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** CPU seconds so far of every process on the machine, with a short name (for "who else was busy"). */
export function snapshotAllProcesses(): Map<number, { name: string; cpu: number }> {
  const result = new Map<number, { name: string; cpu: number }>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return result;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    const cpu = readCpuSeconds(pid);
    if (cpu === null) continue;
    // The kernel's short name (postgres, kworker/…, node), plus the script for interpreters.
    let comm = '?';
    try {
      comm = /\((.*)\)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
    } catch {
      continue;
    }
    const args = readCommandLine(pid).split(' ');
    const script = ['node', 'python3', 'bash', 'sh'].includes(comm) ? args.slice(1).find((a) => !a.startsWith('-')) : undefined;
    result.set(pid, { name: script ? `${comm} ${script.split('/').slice(-2).join('/')}`.slice(0, 48) : comm, cpu });
  }
  return result;
}

/** The processes (other than `exclude`) that used the most CPU between two snapshots, by name. */
export function topOtherProcesses(
  before: Map<number, { name: string; cpu: number }>,
  after: Map<number, { name: string; cpu: number }>,
  exclude: Set<number>,
  top = 3,
): { name: string; cpuSeconds: number }[] {
  const byName = new Map<string, number>();
  for (const [pid, now] of after) {
    if (exclude.has(pid)) continue;
    const used = now.cpu - (before.get(pid)?.cpu ?? 0);
    if (used > 0) byName.set(now.name, (byName.get(now.name) ?? 0) + used);
  }
  return [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, cpuSeconds]) => ({ name, cpuSeconds: Math.round(cpuSeconds * 100) / 100 }));
}
