// The OpenAPI 3.1 registry: routes register their schemas here, and the document is generated from it.
import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);

export { z };

export function createOpenApiRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'A JWT from the identity issuer (ScaiKey, or the dev issuer via `scaidrive dev-token`), or a tenant API key (`sdk_…`).',
  });
  return registry;
}

export function generateOpenApiDocument(registry: OpenAPIRegistry, serverUrl: string) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'ScaiDrive API',
      version: '0.1.0',
      description: 'Multi-tenant file storage, sync and sharing. Errors: `{detail, code, request_id, details?}`; 422 carries `detail` as an array of `{loc, msg, type}`.',
    },
    servers: [{ url: serverUrl }],
  });
}

/** The error body every non-2xx response uses (spec §3). */
export const errorSchema = z
  .object({
    detail: z.union([z.string(), z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() }))]),
    code: z.string(),
    request_id: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('Error');
