// Shares, members, invitations and the audit trail (spec §8).
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

export function registerShareRoutes(_router: Router, _registry: OpenAPIRegistry): void {}
