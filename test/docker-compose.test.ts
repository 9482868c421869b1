// Static checks of docker-compose.yml (no Docker engine exists here, so nothing is started): the stack is
// complete, has healthchecks and start-up ordering, and its SCAIDRIVE_* environment is one src/config.ts accepts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { configVariableNames, loadConfig } from '../src/config';
import { scaiSearchAttributeNames } from '../src/temporal/search-attributes';

const composePath = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
const composeText = readFileSync(composePath, 'utf8');

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: Healthcheck;
  restart?: string;
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// Compose resolves `<<:` merge keys (YAML 1.1); the yaml package does so only when asked.
const compose = parse(composeText, { merge: true }) as Compose;

function service(name: string): Service {
  const found = compose.services[name];
  assert.ok(found, `docker-compose.yml has no service "${name}"`);
  return found;
}

/** A service's environment as a map (compose accepts a map or a list of KEY=VALUE). */
function environmentOf(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  const entries: [string, string][] = Array.isArray(env)
    ? env.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries);
}

function dependencies(name: string): Record<string, string | undefined> {
  const deps = service(name).depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v.condition]));
}

function commandText(s: Service): string {
  const parts = [s.entrypoint, s.command].flatMap((p) => (p === undefined ? [] : Array.isArray(p) ? p : [p]));
  return parts.join(' ');
}

class MissingVariable extends Error {}

/**
 * Docker Compose interpolation as `docker compose up` does it with `shell` as the caller's environment:
 * `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `$VAR`, `$$` (a literal $).
 */
function interpolate(value: string, shell: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced?: string, op?: string, arg?: string, bare?: string) => {
    if (match === '$$') return '$';
    const name = (braced ?? bare)!;
    const current = shell[name];
    const unset = current === undefined || (op?.startsWith(':') === true && current === '');
    if (op === ':-' || op === '-') return unset ? (arg ?? '') : current!;
    if (op === ':?' || op === '?') {
      if (unset) throw new MissingVariable(`required variable ${name} is missing a value: ${arg ?? ''}`);
      return current!;
    }
    return current ?? '';
  });
}

/** Every `${NAME:?...}` the file requires from the caller's shell. */
const requiredNames = [...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}/g)].map((m) => m[1]!);

/** What an operator would export: a URL for ...URL variables, a 40-character secret otherwise. */
function placeholderShell(): Record<string, string> {
  return Object.fromEntries(requiredNames.map((name) => [name, name.endsWith('_URL') ? 'http://scaikey.example' : 'x'.repeat(40)]));
}

function interpolatedEnvironment(name: string, shell: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(environmentOf(name)).map(([k, v]) => [k, interpolate(v, shell)]));
}

const coreServices = ['postgres', 'temporal', 'temporal-ui', 'minio', 'weaviate', 'api', 'worker'];
const appServices = ['api', 'worker', 'migrate'];
const requiredSecrets = ['SCAIDRIVE_SCAIKEY_URL', 'SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET', 'SCAIDRIVE_SECRET_KEY'];

/** One-shot services: those another service waits for with service_completed_successfully. */
function oneShotServices(): Set<string> {
  const names = new Set<string>();
  for (const name of Object.keys(compose.services)) {
    for (const [dep, condition] of Object.entries(dependencies(name))) if (condition === 'service_completed_successfully') names.add(dep);
  }
  return names;
}

describe('docker-compose.yml', () => {
  test('parses into a compose file with services and named volumes', () => {
    assert.equal(typeof compose, 'object');
    assert.equal(typeof compose.services, 'object');
    assert.ok(compose.volumes && Object.keys(compose.volumes).length > 0, 'expected named volumes for data');
    assert.ok(environmentOf('postgres').POSTGRES_PASSWORD, 'postgres needs a password');
    assert.ok(service('postgres').volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data')), 'postgres data on a volume');
  });

  test('says at the top that it cannot run on the dev/CI machine and points at npm run dev', () => {
    const header = composeText.split('\n').filter((line) => line.startsWith('#')).slice(0, 10).join('\n');
    assert.match(header, /cannot run/i);
    assert.match(header, /npm run dev/);
  });

  test('has the whole stack, and every long-running service has a healthcheck', () => {
    for (const name of coreServices) service(name);
    const oneShots = oneShotServices();
    assert.ok(oneShots.has('migrate') && oneShots.has('temporal-search-attributes'), `one-shots: ${[...oneShots].join(', ')}`);
    for (const [name, s] of Object.entries(compose.services)) {
      if (oneShots.has(name)) {
        assert.equal(s.restart ?? 'no', 'no', `${name} is one-shot and must not restart`);
        continue;
      }
      const check = s.healthcheck;
      assert.ok(check && !check.disable && check.test && check.test.length > 0, `${name} has no healthcheck`);
      assert.notEqual(Array.isArray(check.test) ? check.test[0] : check.test, 'NONE', `${name} healthcheck is disabled`);
    }
  });

  test('infrastructure images and healthchecks are the agreed ones', () => {
    assert.match(service('postgres').image ?? '', /^postgres:16\b/);
    assert.match(JSON.stringify(service('postgres').healthcheck?.test), /pg_isready/);
    assert.match(service('temporal').image ?? '', /^temporalio\/auto-setup:/);
    const temporalEnv = environmentOf('temporal');
    assert.equal(temporalEnv.DB, 'postgres12');
    assert.equal(temporalEnv.POSTGRES_SEEDS, 'postgres');
    assert.ok(temporalEnv.DB_PORT && temporalEnv.POSTGRES_USER && temporalEnv.POSTGRES_PWD);
    assert.equal(dependencies('temporal').postgres, 'service_healthy');
    assert.match(JSON.stringify(service('temporal').healthcheck?.test), /cluster health/);
    assert.match(service('temporal-ui').image ?? '', /^temporalio\/ui:/);
    assert.equal(environmentOf('temporal-ui').TEMPORAL_ADDRESS, 'temporal:7233');
    assert.match(service('minio').image ?? '', /^minio\/minio:/);
    assert.match(commandText(service('minio')), /server \/data --console-address :9001/);
    assert.match(JSON.stringify(service('minio').healthcheck?.test), /minio\/health\/live|mc.*ready.*local/);
    assert.match(service('weaviate').image ?? '', /^cr\.weaviate\.io\/semitechnologies\/weaviate:/);
    const weaviateEnv = environmentOf('weaviate');
    assert.equal(weaviateEnv.DEFAULT_VECTORIZER_MODULE, 'none');
    assert.equal(weaviateEnv.AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED, 'true');
    assert.ok(weaviateEnv.PERSISTENCE_DATA_PATH);
    assert.match(JSON.stringify(service('weaviate').healthcheck?.test), /\/v1\/\.well-known\/ready/);
  });

  test('api, worker and migrate run the scaidrive CLI from the bind-mounted sources, without a Dockerfile', () => {
    for (const [name, command] of [['api', /scaidrive\.mjs api$/], ['worker', /scaidrive\.mjs worker$/], ['migrate', /npm ci\b.*&& node bin\/scaidrive\.mjs migrate$/]] as const) {
      const s = service(name);
      assert.equal(s.image, 'node:20-bookworm', name);
      assert.equal(s.build, undefined, `${name} must not build an image`);
      assert.ok(s.volumes?.includes('.:/app'), `${name} mounts the sources`);
      assert.match(commandText(s), command, name);
    }
    assert.match(JSON.stringify(service('api').healthcheck?.test), /http:\/\/localhost:8000\/api\/v1\/health\/ready/);
  });

  test('every SCAIDRIVE_* key in any service environment is a variable src/config.ts knows', () => {
    const known = new Set<string>(configVariableNames);
    let seen = 0;
    for (const name of Object.keys(compose.services)) {
      for (const key of Object.keys(environmentOf(name))) {
        if (!key.startsWith('SCAIDRIVE_')) continue;
        seen += 1;
        assert.ok(known.has(key), `service ${name} sets ${key}, which src/config.ts does not know`);
      }
    }
    assert.ok(seen >= 20, `expected the shared SCAIDRIVE_* environment, saw ${seen} keys`);
    for (const name of appServices) assert.ok(Object.keys(environmentOf(name)).length > 0, `${name} has no environment`);
  });

  test('api, worker and migrate share one environment (the x-scaidrive-env anchor)', () => {
    assert.match(composeText, /^x-scaidrive-env: &scaidrive-env$/m);
    const api = environmentOf('api');
    assert.deepEqual(environmentOf('worker'), api);
    assert.deepEqual(environmentOf('migrate'), api);
    assert.equal(api.SCAIDRIVE_ENV, 'production');
    assert.equal(api.SCAIDRIVE_TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(api.SCAIDRIVE_S3_ENDPOINT, 'http://minio:9000');
    assert.equal(api.SCAIDRIVE_WEAVIATE_URL, 'http://weaviate:8080');
    assert.equal(api.SCAIDRIVE_REDIS_URL, 'redis://redis:6379');
  });

  test('with the required variables exported, loadConfig accepts the api and worker environment (production, S3)', () => {
    const shell = placeholderShell();
    for (const name of ['api', 'worker']) {
      const env = interpolatedEnvironment(name, shell);
      assert.ok(!Object.values(env).some((v) => v.includes('${')), `${name}: uninterpolated value left`);
      const config = loadConfig(env);
      assert.equal(config.env, 'production', name);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.port, 8000);
      assert.equal(config.auth.devIssuer, false);
      assert.equal(config.auth.scaikeyUrl, 'http://scaikey.example');
      assert.equal(config.secretKey, 'x'.repeat(40));
      assert.match(config.database.url, /@postgres:5432\//);
      assert.equal(config.temporal.address, 'temporal:7233');
      assert.equal(config.storage.driver, 's3', `${name} must use the S3 driver against MinIO`);
      if (config.storage.driver === 's3') {
        assert.equal(config.storage.endpoint, 'http://minio:9000');
        assert.equal(config.storage.forcePathStyle, true);
        assert.ok(config.storage.accessKeyId && config.storage.secretAccessKey, 'S3 credentials');
        // The keys api/worker use are MinIO's root credentials, and the one-shot creates this very bucket.
        const shellFree = (v: string | undefined) => interpolate(v ?? '', {});
        assert.equal(config.storage.accessKeyId, shellFree(environmentOf('minio').MINIO_ROOT_USER));
        assert.equal(config.storage.secretAccessKey, shellFree(environmentOf('minio').MINIO_ROOT_PASSWORD));
        assert.equal(shellFree(environmentOf('minio-bucket').BUCKET), config.storage.bucket);
      }
      assert.equal(config.weaviateUrl, 'http://weaviate:8080');
      assert.equal(config.redisUrl, 'redis://redis:6379');
    }
  });

  test('the required secrets use :? so compose fails fast when they are missing', () => {
    const api = environmentOf('api');
    for (const key of requiredSecrets) {
      assert.match(api[key] ?? '', new RegExp(`^\\$\\{${key}:\\?.+\\}$`), `${key} must be \${${key}:?message}`);
      const shell = placeholderShell();
      delete shell[key];
      assert.throws(() => interpolatedEnvironment('api', shell), (error: unknown) => error instanceof MissingVariable && error.message.includes(key));
    }
    assert.throws(() => interpolatedEnvironment('worker', {}), MissingVariable);
    // A secret the shell sets to the empty string is missing too (`:?`, not `?`).
    assert.throws(() => interpolatedEnvironment('api', { ...placeholderShell(), SCAIDRIVE_SECRET_KEY: '' }), MissingVariable);
  });

  test('the search-attribute one-shot registers all four Scai* Keyword attributes on the default namespace', () => {
    const s = service('temporal-search-attributes');
    assert.match(s.image ?? '', /^temporalio\/admin-tools:/);
    assert.equal(dependencies('temporal-search-attributes').temporal, 'service_healthy');
    const script = commandText(s);
    assert.match(script, /temporal operator search-attribute create --namespace default --name "?\$\$name"? --type Keyword/);
    const loop = /for name in ([^;\n]+)/.exec(script);
    assert.ok(loop, 'expected a `for name in ...` loop over the attribute names');
    assert.deepEqual(loop[1]!.trim().split(/\s+/).sort(), [...scaiSearchAttributeNames].sort());
    for (const name of scaiSearchAttributeNames) assert.ok(script.includes(name), `${name} is not registered`);
  });

  test('api and worker wait for their dependencies, migrations and search attributes', () => {
    for (const name of ['api', 'worker']) {
      const deps = dependencies(name);
      assert.equal(deps.postgres, 'service_healthy', `${name} -> postgres`);
      assert.equal(deps.temporal, 'service_healthy', `${name} -> temporal`);
      assert.equal(deps.minio, 'service_healthy', `${name} -> minio`);
      assert.equal(deps.migrate, 'service_completed_successfully', `${name} -> migrate`);
      assert.equal(deps['temporal-search-attributes'], 'service_completed_successfully', `${name} -> temporal-search-attributes`);
    }
    assert.equal(dependencies('migrate').postgres, 'service_healthy');
    assert.equal(dependencies('temporal-ui').temporal, 'service_healthy');
    // Every dependency names a service that exists.
    for (const name of Object.keys(compose.services)) {
      for (const dep of Object.keys(dependencies(name))) assert.ok(compose.services[dep], `${name} depends on unknown service ${dep}`);
    }
  });
});
