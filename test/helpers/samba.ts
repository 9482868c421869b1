// Test helper: a private, unprivileged-style Samba (`smbd --foreground`) on a loopback port with its own temp
// [global] paths and a share, default security settings and async I/O, which tests can stop, restart and tune.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The Unix account every test server maps its SMB user to (created once per machine, no home, no shell). */
export const sambaUnixUser = 'scaidrive-smb';
const offset = Number(process.env.TEST_PORT_OFFSET ?? 0);
/** First port tried; each server probes upward from a per-process start so parallel test files rarely meet. */
const basePort = 14451 + offset;

export interface SambaOptions {
  /** `server signing = mandatory` (Windows Server 2025's default) instead of Samba's default. */
  signing?: 'default' | 'mandatory';
  /**
   * Serve the share as the login user instead of `force user = root`, so Unix permissions apply and
   * makeUnreadable() can make Samba refuse a read (root bypasses permission checks).
   */
  enforcePermissions?: boolean;
  share?: string;
  /** Extra `[global]` lines, e.g. `aio read size = 0`. */
  globalParameters?: string[];
}

export interface SambaServer {
  host: string;
  port: number;
  share: string;
  username: string;
  password: string;
  /** The directory the share serves; tests write fixtures here directly. */
  shareDir: string;
  /** smbd's own log, for diagnosing a failure. */
  logFile: string;
  /** Makes Samba refuse to open the file for reading (needs enforcePermissions). */
  makeUnreadable(relativePath: string): Promise<void>;
  /** Stops smbd and its per-connection children, as a crash or shutdown would: clients see the socket close. */
  stop(): Promise<void>;
  /** SIGSTOPs smbd and its children: connections stay open but nothing answers (a hung server). */
  freeze(): Promise<void>;
  /** Undoes freeze(). */
  thaw(): Promise<void>;
  /** Starts smbd again on the same port with the same configuration and users. */
  start(): Promise<void>;
  /** Stops smbd and removes every file of this server. */
  dispose(): Promise<void>;
}

async function ensureUnixUser(): Promise<void> {
  try {
    await run('id', ['-u', sambaUnixUser]);
  } catch {
    try {
      await run('useradd', ['-M', '-s', '/usr/sbin/nologin', sambaUnixUser]);
    } catch (error) {
      // A parallel test file may have created it between our check and our useradd (exit code 9: exists).
      if ((error as { code?: number }).code !== 9) throw error;
    }
  }
}

/** True when nothing listens on the loopback port (we can bind it ourselves). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

async function findFreePort(from: number): Promise<number> {
  for (let port = from; port < from + 500; port += 1) if (await portIsFree(port)) return port;
  throw new Error(`no free loopback port from ${from}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

function configuration(dir: string, port: number, share: string, options: SambaOptions): string {
  const global = [
    'server role = standalone server',
    `smb ports = ${port}`,
    'interfaces = lo',
    'bind interfaces only = yes',
    'disable netbios = yes',
    `private dir = ${dir}/private`,
    `lock directory = ${dir}/lock`,
    `state directory = ${dir}/state`,
    `cache directory = ${dir}/cache`,
    `pid directory = ${dir}/pid`,
    `ncalrpc dir = ${dir}/ncalrpc`,
    `passdb backend = tdbsam:${dir}/private/passdb.tdb`,
    `log file = ${dir}/smbd.log`,
    'log level = 1',
    'load printers = no',
    'printcap name = /dev/null',
    'disable spoolss = yes',
    ...(options.signing === 'mandatory' ? ['server signing = mandatory'] : []),
    ...(options.globalParameters ?? []),
  ];
  const shareLines = [
    `path = ${dir}/share`,
    'read only = no',
    `valid users = ${sambaUnixUser}`,
    `force user = ${options.enforcePermissions ? sambaUnixUser : 'root'}`,
  ];
  return `[global]\n${global.map((l) => `  ${l}\n`).join('')}\n[${share}]\n${shareLines.map((l) => `  ${l}\n`).join('')}`;
}

/** Starts a private smbd; each call gets its own temp dir and port, so test files can run in parallel. */
export async function startSamba(options: SambaOptions = {}): Promise<SambaServer> {
  await ensureUnixUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'scaidrive-samba-'));
  const share = options.share ?? 'data';
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const shareDir = path.join(dir, 'share');
  for (const sub of ['private', 'lock', 'state', 'cache', 'pid', 'ncalrpc']) await mkdir(path.join(dir, sub), { recursive: true });
  await mkdir(shareDir);
  // The temp dir is 0700; a share served as a non-root user needs to reach its directory.
  await chmod(dir, 0o755);
  const confPath = path.join(dir, 'smb.conf');
  const logFile = path.join(dir, 'smbd.log');
  const stdoutLog = path.join(dir, 'smbd.stdout.log');

  let port = await findFreePort(basePort + (process.pid % 100) * 3);
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    await writeFile(confPath, configuration(dir, port, share, options));
    // detached: smbd signals its whole process group when it shuts down, which must not include the test runner.
    const proc = spawn('smbd', ['--foreground', '--no-process-group', '--debug-stdout', '-s', confPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const output: Buffer[] = [];
    proc.stdout!.on('data', (chunk: Buffer) => output.push(chunk));
    proc.stderr!.on('data', (chunk: Buffer) => output.push(chunk));
    proc.once('exit', () => void writeFile(stdoutLog, Buffer.concat(output)).catch(() => undefined));
    child = proc;
    // A test process that dies without dispose() must not leave a detached smbd behind.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.removeListener('exit', reap));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`smbd exited (${proc.exitCode ?? proc.signalCode}) before listening on ${port}:\n${Buffer.concat(output).toString().slice(-2000)}`);
      }
      if (await canConnect(port)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`smbd did not listen on ${port} within 20 s:\n${Buffer.concat(output).toString().slice(-2000)}`);
  };

  /** smbd's pid and its per-connection children's. */
  const processIds = async (): Promise<number[]> => {
    const proc = child;
    if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return [];
    const children = await run('pgrep', ['-P', String(proc.pid)]).then(
      ({ stdout }) => stdout.split(/\s+/).filter(Boolean).map(Number),
      () => [] as number[],
    );
    return [proc.pid, ...children];
  };
  const signalAll = async (signal: NodeJS.Signals) => {
    for (const pid of await processIds()) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    // smbd forks one child per client connection; stop those too, so clients really lose the server.
    const children = await run('pgrep', ['-P', String(proc.pid)]).then(
      ({ stdout }) => stdout.split(/\s+/).filter(Boolean).map(Number),
      () => [] as number[],
    );
    for (const pid of [proc.pid!, ...children]) {
      try {
        process.kill(pid, 'SIGCONT'); // a frozen smbd would not act on SIGTERM
      } catch {
        // gone
      }
    }
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    // Per-connection children die at once, as in a crash, so clients see their connections drop.
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  // The port probe and smbd's bind are not atomic: if another process took the port meanwhile, try the next one.
  for (let attempt = 0; ; attempt += 1) {
    try {
      await launch();
      break;
    } catch (error) {
      await stop();
      if (attempt >= 4) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = await findFreePort(port + 1);
    }
  }
  try {
    await run('sh', ['-c', `printf '%s\\n%s\\n' "$PW" "$PW" | smbpasswd -c "$CONF" -s -a ${sambaUnixUser}`], { env: { ...process.env, PW: password, CONF: confPath } });
  } catch (error) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    host: '127.0.0.1',
    port,
    share,
    username: sambaUnixUser,
    password,
    shareDir,
    logFile,
    async makeUnreadable(relativePath: string) {
      if (!options.enforcePermissions) throw new Error('makeUnreadable needs startSamba({ enforcePermissions: true }): smbd as root reads anything');
      await chmod(path.join(shareDir, relativePath), 0o000);
    },
    stop,
    freeze: () => signalAll('SIGSTOP'),
    thaw: () => signalAll('SIGCONT'),
    start: launch,
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** Runs Samba's own client against the server (independent check of what the server allows). */
export async function smbclient(server: SambaServer, command: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(
      'smbclient',
      [`//${server.host}/${server.share}`, '-p', String(server.port), '-U', `${server.username}%${server.password}`, '-c', command],
      { timeout: 30_000 },
    );
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

/** The raw `smbstatus -L` report of files the server holds open (handles a client forgot to close show here). */
export async function sambaOpenFiles(server: SambaServer): Promise<string> {
  const { stdout } = await run('smbstatus', ['-s', path.join(path.dirname(server.shareDir), 'smb.conf'), '-L']);
  return stdout;
}

/** smbd's log, for assertion messages. */
export async function sambaLog(server: SambaServer): Promise<string> {
  return readFile(server.logFile, 'utf8').catch(() => '');
}
