// Liveness and readiness probes (spec §12).
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { serviceUnavailable } from '../../errors';
import { readiness } from '../../services/readiness.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';

const check = z.object({
  status: z.enum(['ok', 'error', 'not_configured']),
  latency_ms: z.number().optional(),
  code: z.string().optional(),
  error: z.string().optional(),
});

export function registerHealthRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);
  route(
    {
      method: 'get',
      path: '/health',
      summary: 'Liveness: the process is up',
      tag: 'operations',
      access: 'public',
      responses: { 200: { description: 'Alive', schema: z.object({ status: z.literal('ok') }) } },
    },
    async (ctx) => {
      ctx.body = { status: 'ok' };
    },
  );

  route(
    {
      method: 'get',
      path: '/health/ready',
      summary: 'Readiness: database, Temporal and storage answer; Weaviate reported',
      tag: 'operations',
      access: 'public',
      responses: { 200: { description: 'Every required dependency is green', schema: z.object({ status: z.literal('ready'), checks: z.record(z.string(), check) }) } },
      errors: [503],
    },
    async (ctx) => {
      const result = await readiness(ctx.deps);
      if (!result.ready) {
        const first = result.checks[result.failing[0]!];
        throw serviceUnavailable(`Not ready: ${result.failing.join(', ')} unavailable (${first.error})`, {
          failing: result.failing,
          failing_codes: result.failing.map((name) => result.checks[name].code),
          checks: result.checks,
        });
      }
      ctx.body = { status: 'ready', checks: result.checks };
    },
  );
}
