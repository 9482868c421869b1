// The `scaidrive` command: migrate, dev, api, worker, doctor, create-tenant, dev-token.
import { parseArgs } from 'node:util';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ConfigError, loadConfig, type Config } from '../config';
import { createServices, type Services } from '../bootstrap';
import { closeServer, createApp, listen } from '../api/app';
import { migrateDown, migrateToLatest } from '../db/migrator';
import { ensureDatabase } from '../db/ensure-database';
import { createPartner, createTenant } from '../services/identity.service';
import { DevIssuerKeyMissing, loadDevIssuer, type DevIssuer } from '../auth/dev-issuer';
import { createDb, type Db } from '../db/database';
import { taskQueueKinds, type TaskQueueKind } from '../temporal/task-queues';
import { isPortOpen, startTemporalDevServer } from '../temporal/dev-server';
import { startWeaviate } from '../search/weaviate-server';
import { waitForTemporal } from '../temporal/client';
import { ensureSchedules } from '../temporal/schedules';
import { formatDoctorTable, runDoctor } from './doctor';

const usage = `Usage: scaidrive <command> [options]

Commands:
  dev                          run the whole stack on 127.0.0.1 (Temporal dev server, migrations, API, workers)
  api                          run the API server
  worker [--queue Q ...]       run workers (all task queues unless --queue is given: ${taskQueueKinds.join(', ')})
  migrate [--down]             apply pending migrations (or undo the last one)
  doctor                       check config, database, Temporal, workers, storage, Weaviate, JWKS
  create-tenant --name N [--partner P]   create a tenant (P: an existing partner id, or a new partner's name)
  dev-token --tenant ID --user SUB [--email E] [--name N] [--admin] [--expires-in SECONDS]
                               print a token signed by the dev issuer
`;

/**
 * `dev`'s defaults for the commands a developer runs next to a dev stack (dev, dev-token, migrate,
 * create-tenant, doctor): SCAIDRIVE_ENV=development unless set. `api` and `worker` keep production's default.
 */
/** `scaidrive dev`'s local Weaviate; other commands in development find it there too (doctor, workers). */
const devWeaviateUrl = 'http://127.0.0.1:8080';
const devDefaults = () => {
  const env = process.env.SCAIDRIVE_ENV ?? 'development';
  // Overrides win over the environment in loadConfig: keep what the caller set.
  return { SCAIDRIVE_ENV: env, ...(env === 'development' ? { SCAIDRIVE_WEAVIATE_URL: process.env.SCAIDRIVE_WEAVIATE_URL || devWeaviateUrl } : {}) };
};

/** For commands that need only the database: no issuer, secret, Temporal or storage is asked for. */
async function withDatabase<T>(run: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, devDefaults(), { serverSecrets: false });
  const db = createDb(config.database.url, { poolSize: 2 });
  try {
    return await run(db, config);
  } finally {
    await db.destroy();
  }
}

/** A database URL without its password, for messages. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function withServices<T>(config: Config, run: (services: Services) => Promise<T>): Promise<T> {
  const services = await createServices(config, 'cli');
  try {
    return await run(services);
  } finally {
    await services.close();
  }
}

async function serve(services: Services): Promise<() => Promise<void>> {
  const { app } = createApp(services);
  const server = await listen(app, services.config.host, services.config.port);
  services.logger.info({ url: services.config.publicUrl }, 'api listening');
  return () => closeServer(server, { graceMs: 10_000 });
}

async function ensureDevTenant(services: Services): Promise<string> {
  const file = path.join(services.config.dataDir, 'dev-tenant.json');
  try {
    const { id } = JSON.parse(await readFile(file, 'utf8')) as { id: string };
    const exists = await services.db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst();
    if (exists) return id;
  } catch {
    // first run: create it below
  }
  const tenant = await createTenant(services.db, { name: 'Development' });
  await writeFile(file, JSON.stringify({ id: tenant.id }));
  return tenant.id;
}

/** The banner's token lines: an admin token from the dev issuer, or where tokens come from when a real issuer is configured. */
async function tokenLines(services: Services, tenantId: string): Promise<string[]> {
  const { config, devIssuer } = services;
  if (!devIssuer) {
    return [
      `  Tokens       from your identity issuer ${config.auth.scaikeyUrl} (iss ${config.auth.issuer}, aud ${config.auth.audience}),`,
      `               with the claim tenant_id=${tenantId} (and roles ["tenant_admin"] for the admin endpoints)`,
    ];
  }
  const token = await devIssuer.sign({ tenantId, subject: 'dev-admin', email: 'admin@dev.local', name: 'Dev Admin', roles: ['tenant_admin'] });
  return [`  Admin token  ${token}`, `  More tokens: npx scaidrive dev-token --tenant ${tenantId} --user alice`];
}

async function dev(): Promise<void> {
  // Without SCAIDRIVE_WEAVIATE_URL, dev runs a local Weaviate next to Temporal (or uses the one already there).
  const config = loadConfig(process.env, devDefaults());
  await mkdir(config.dataDir, { recursive: true });
  let weaviateServer: ChildProcess | undefined;
  if (config.weaviateUrl === devWeaviateUrl && !(await isPortOpen('127.0.0.1', 8080))) {
    weaviateServer = await startWeaviate({ binary: path.join(config.toolsDir, 'weaviate-server'), dataDir: path.join(config.dataDir, 'weaviate'), host: '127.0.0.1', port: 8080, grpcPort: config.weaviateGrpcPort });
  }
  const [host, portText] = config.temporal.address.split(':') as [string, string];
  let temporalServer: ChildProcess | undefined;
  if (!(await isPortOpen(host, Number(portText)))) {
    const uiPort = Number(new URL(config.temporal.uiUrl).port || 8233);
    temporalServer = await startTemporalDevServer({ binary: path.join(config.toolsDir, 'temporal'), dataDir: config.dataDir, host, port: Number(portText), uiPort });
  }
  await ensureDatabase(config.database.url);
  const services = await createServices(config, 'dev');
  await waitForTemporal(services.temporal);
  await migrateToLatest(services.db);
  await services.storage.ensureReady();
  const tenantId = await ensureDevTenant(services);
  // Imported here, not at the top: the worker SDK (native bridge, bundler) has no business in an API process.
  const { createWorkers } = await import('../workers/worker-runtime');
  const workers = await createWorkers(config, services, taskQueueKinds);
  const running = workers.run();
  await ensureSchedules(services.temporal, config);
  const closeApi = await serve(services);
  process.stdout.write(
    [
      '',
      'ScaiDrive is running:',
      `  API          ${config.publicUrl}/api/v1   (ready: ${config.publicUrl}/api/v1/health/ready)`,
      `  Swagger UI   ${config.publicUrl}/api/docs`,
      `  Temporal UI  ${config.temporal.uiUrl}`,
      `  Weaviate     ${config.weaviateUrl} (gRPC ${config.weaviateGrpcPort})`,
      `  Dev tenant   ${tenantId}`,
      ...(await tokenLines(services, tenantId)),
      '',
    ].join('\n') + '\n',
  );
  // Once: on a signal, or when the workers end by themselves. The workers' end also ends `running`, so the main
  // path waits for the whole shutdown too — the child servers must never outlive this process.
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const step = async (name: string, run: () => Promise<unknown>) => {
        try {
          await run();
        } catch (error) {
          services.logger.warn({ err: error }, `dev: stopping ${name} failed`);
        }
      };
      await step('the API', closeApi);
      await step('the workers', () => workers.shutdown());
      await step('the services', () => services.close());
      temporalServer?.kill('SIGTERM');
      weaviateServer?.kill('SIGTERM');
    })());
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  try {
    await running;
  } finally {
    await stop();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: {
      down: { type: 'boolean' },
      queue: { type: 'string', multiple: true },
      name: { type: 'string' },
      partner: { type: 'string' },
      tenant: { type: 'string' },
      user: { type: 'string' },
      email: { type: 'string' },
      admin: { type: 'boolean' },
      'expires-in': { type: 'string' },
    },
  });

  switch (command) {
    case 'dev':
      await dev();
      return 0;
    case 'api': {
      const services = await createServices(loadConfig());
      await services.storage.ensureReady();
      const closeApi = await serve(services);
      // SIGTERM/SIGINT drain: sockets closed with 1001, requests in flight get up to 10 s, then the process exits.
      return new Promise<number>((resolve) => {
        const stop = () => {
          services.logger.info('api shutting down');
          closeApi()
            .then(() => services.close())
            .then(() => resolve(0), () => resolve(1));
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    }
    case 'worker': {
      const kinds = (values.queue ?? [...taskQueueKinds]) as TaskQueueKind[];
      const unknown = kinds.filter((k) => !taskQueueKinds.includes(k));
      if (unknown.length) throw new ConfigError(`Unknown task queue ${unknown.join(', ')} (known: ${taskQueueKinds.join(', ')})`);
      const { runWorkerProcess } = await import('../workers/run-worker-process');
      await runWorkerProcess(kinds);
      return 0;
    }
    case 'migrate': {
      const config = loadConfig(process.env, devDefaults(), { serverSecrets: false });
      await ensureDatabase(config.database.url);
      return withDatabase(async (db) => {
        const applied = values.down ? await migrateDown(db) : await migrateToLatest(db);
        process.stdout.write(applied.length ? `${applied.join('\n')}\n` : 'Database is up to date\n');
        return 0;
      });
    }
    case 'doctor':
      return withServices(loadConfig(process.env, devDefaults()), async (services) => {
        const rows = await runDoctor(services);
        process.stdout.write(`${formatDoctorTable(rows)}\n`);
        const failed = rows.filter((r) => r.status === 'fail');
        process.stdout.write(failed.length ? `\n${failed.length} check(s) failed\n` : '\nAll checks passed\n');
        return failed.length ? 1 : 0;
      });
    case 'create-tenant': {
      if (!values.name) throw new ConfigError('create-tenant needs --name');
      return withDatabase(async (db) => {
        let partnerId: string | null = null;
        if (values.partner) {
          const existing = await db.selectFrom('partners').select('id').where('id', '=', values.partner).executeTakeFirst();
          partnerId = existing?.id ?? (await createPartner(db, values.partner)).id;
        }
        const tenant = await createTenant(db, { name: values.name!, partnerId });
        process.stdout.write(`${JSON.stringify({ id: tenant.id, name: tenant.name, partner_id: tenant.partner_id, settings: tenant.settings })}\n`);
        return 0;
      });
    }
    case 'dev-token': {
      const config = loadConfig(process.env, devDefaults());
      if (!config.auth.devIssuer) throw new ConfigError('dev-token needs the dev issuer (SCAIDRIVE_ENV=development and no SCAIDRIVE_SCAIKEY_URL)');
      if (!values.tenant || !values.user) throw new ConfigError('dev-token needs --tenant and --user');
      const expiresIn = values['expires-in'] === undefined ? undefined : Number(values['expires-in']);
      if (expiresIn !== undefined && !(Number.isInteger(expiresIn) && expiresIn > 0)) throw new ConfigError('dev-token --expires-in needs a whole number of seconds');
      let issuer: DevIssuer;
      try {
        // The running dev stack's key (same data dir): a fresh key would mint tokens nobody accepts.
        issuer = await loadDevIssuer(config.dataDir, config.publicUrl, config.auth.audience, { create: false });
      } catch (error) {
        if (!(error instanceof DevIssuerKeyMissing)) throw error;
        throw new ConfigError(`${error.message}: start \`scaidrive dev\` first, or point SCAIDRIVE_DATA_DIR at its data dir`);
      }
      const tenantId = values.tenant;
      const tenant = await withDatabase((db) => db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst());
      if (!tenant) throw new ConfigError(`Tenant ${tenantId} does not exist in ${redactUrl(config.database.url)} (create it with \`scaidrive create-tenant\`)`);
      const token = await issuer.sign({
        tenantId,
        subject: values.user,
        email: values.email,
        name: values.name,
        roles: values.admin ? ['tenant_admin'] : [],
        expiresInSeconds: expiresIn,
      });
      process.stdout.write(`${token}\n`);
      return 0;
    }
    default:
      process.stdout.write(usage);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`scaidrive: ${(error as Error).message}\n`);
      process.exit(2);
    }
    process.stderr.write(`scaidrive: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
