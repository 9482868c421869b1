// Non-/api/v1 endpoints: OpenAPI document, Swagger UI, Prometheus metrics, the dev issuer's discovery + JWKS.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { generateOpenApiDocument } from '../openapi';
import type { AppContext, AppDeps } from '../context';
import { queueDepths } from '../../services/search-queue.service';

const swaggerUiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const swaggerAssets = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'application/javascript; charset=utf-8'],
  ['swagger-ui-standalone-preset.js', 'application/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
]);

const swaggerPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ScaiDrive API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"><link rel="icon" href="/api/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui', deepLinking: true });</script>
</body></html>`;

export function createDocsRouter(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const router = new Router();
  let document: unknown;

  router.get('/api/openapi.json', (ctx) => {
    document ??= generateOpenApiDocument(registry, deps.config.publicUrl);
    ctx.body = document;
  });
  router.get('/api/docs', (ctx) => {
    ctx.type = 'html';
    ctx.body = swaggerPage;
  });
  router.get('/api/docs/:asset', async (ctx) => {
    const type = swaggerAssets.get(ctx.params.asset!);
    if (!type) return;
    ctx.type = type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = await readFile(path.join(swaggerUiDir, ctx.params.asset!));
  });
  router.get('/metrics', async (ctx) => {
    // The vectorization queue's depth is read from the database at scrape time (every process sees the same).
    const depths = await queueDepths(deps.db).catch(() => undefined);
    if (depths) for (const [queue, { depth }] of Object.entries(depths)) deps.metrics.queueDepth.set({ queue }, depth);
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  const devIssuer = deps.devIssuer;
  if (devIssuer) {
    router.get('/.well-known/openid-configuration', (ctx) => {
      ctx.body = { issuer: devIssuer.issuer, jwks_uri: `${deps.config.publicUrl}/.well-known/jwks.json`, id_token_signing_alg_values_supported: ['ES256'] };
    });
    router.get('/.well-known/jwks.json', (ctx: unknown) => {
      (ctx as AppContext).body = devIssuer.jwks;
    });
  }
  return router;
}
