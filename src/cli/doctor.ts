// `scaidrive doctor`: checks config, database and migrations, Temporal (namespace, search attributes, worker
// pollers), storage read/write, Weaviate, the embedding provider and the JWKS; prints a table and fails when anything is red.
import type { Services } from '../bootstrap';
import { checkDatabase, checkEmbedding, checkStorage, checkTemporal, checkWeaviate, timed, type CheckResult } from '../services/readiness.service';
import { scaiSearchAttributeNames } from '../temporal/search-attributes';
import { taskQueueKinds } from '../temporal/task-queues';

export interface DoctorRow {
  check: string;
  status: 'ok' | 'fail' | 'skip';
  detail: string;
}

function row(check: string, result: CheckResult, okDetail: string): DoctorRow {
  if (result.status === 'not_configured') return { check, status: 'skip', detail: 'not configured' };
  if (result.status === 'ok') return { check, status: 'ok', detail: okDetail };
  return { check, status: 'fail', detail: `${result.code}: ${result.error}` };
}

export async function runDoctor(services: Services): Promise<DoctorRow[]> {
  const { config, temporal } = services;
  const rows: DoctorRow[] = [{ check: 'config', status: 'ok', detail: `env=${config.env}, storage=${config.storage.driver}` }];
  rows.push(row('database + migrations', await checkDatabase(services), `${config.database.url.replace(/\/\/[^@]*@/, '//')} up to date`));

  const temporalResult = await checkTemporal(services);
  rows.push(row('temporal namespace', temporalResult, `${config.temporal.address} namespace "${config.temporal.namespace}"`));
  if (temporalResult.status === 'ok') {
    const attributes = await timed('TEMPORAL_SEARCH_ATTRIBUTES', 5000, async () => {
      const response = await temporal.connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      const missing = scaiSearchAttributeNames.filter((name) => !(name in (response.customAttributes ?? {})));
      if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}`);
    });
    rows.push(row('temporal search attributes', attributes, scaiSearchAttributeNames.join(', ')));
    for (const kind of taskQueueKinds) {
      const queue = services.taskQueues[kind];
      const pollers = await timed('TEMPORAL_NO_WORKER', 5000, async () => {
        const response = await temporal.workflowService.describeTaskQueue({ namespace: config.temporal.namespace, taskQueue: { name: queue }, taskQueueType: 1 });
        const count = response.pollers?.length ?? 0;
        if (count === 0) throw new Error(`no worker polls ${queue}`);
        return { count };
      });
      rows.push(row(`worker pollers: ${queue}`, pollers, `${String(pollers.info?.count ?? 0)} poller(s)`));
    }
  } else {
    rows.push({ check: 'temporal search attributes', status: 'fail', detail: 'Temporal unreachable' });
  }

  rows.push(row('storage read/write', await checkStorage(services), `${config.storage.driver} driver`));
  rows.push(row('weaviate', await checkWeaviate(services), config.weaviateUrl ?? ''));
  rows.push(row('embedding provider', await checkEmbedding(services), services.search.embeddings.space));
  const jwks = await timed('JWKS_UNAVAILABLE', 6000, async () => ({ keys: await services.tokenVerifier.checkJwks() }));
  rows.push(row('identity JWKS', jwks, `${config.auth.devIssuer ? 'dev issuer' : config.auth.scaikeyUrl} (${String(jwks.info?.keys ?? 0)} keys)`));
  return rows;
}

export function formatDoctorTable(rows: DoctorRow[]): string {
  const widths = [Math.max(5, ...rows.map((r) => r.check.length)), 6];
  const line = (a: string, b: string, c: string) => `${a.padEnd(widths[0]!)}  ${b.padEnd(widths[1]!)}  ${c}`;
  return [line('CHECK', 'STATUS', 'DETAIL'), line('-'.repeat(widths[0]!), '------', '------'), ...rows.map((r) => line(r.check, r.status.toUpperCase(), r.detail))].join('\n');
}
