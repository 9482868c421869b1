// External links (spec §8): owner side (create/list/enable/disable/revoke) and the recipient side under /public/links.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerLinkRoutes(_router: Router, _registry: OpenAPIRegistry): void {
  // filled in by the links work
}
