// POST /webhooks/scaikey: HMAC-signed identity events, applied by the identity-event workflow (idempotent by event id).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { AppError, unauthorized } from '../../errors';
import { identityEventWorkflow } from '../../workflows/identity-event.workflow';
import { workflowIds } from '../../temporal/workflow-ids';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import { resultWithin, startOrAttach } from '../workflow-starter';

/** How far the signed timestamp may be from our clock; older deliveries are refused as replays. */
const signatureToleranceSeconds = 300;

export function signScaikeyWebhook(secret: string, timestamp: number, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

function verifySignature(ctx: AppContext, rawBody: string): void {
  const secret = ctx.deps.config.auth.webhookSecret;
  if (!secret) throw new AppError(503, 'SERVICE_UNAVAILABLE', 'Webhook secret not configured (SCAIDRIVE_SCAIKEY_WEBHOOK_SECRET)');
  const timestamp = Number(ctx.get('x-scaikey-timestamp'));
  const signature = ctx.get('x-scaikey-signature');
  if (!Number.isInteger(timestamp) || !signature) throw unauthorized('Missing X-ScaiKey-Timestamp or X-ScaiKey-Signature', 'WEBHOOK_SIGNATURE_INVALID');
  if (Math.abs(Date.now() / 1000 - timestamp) > signatureToleranceSeconds) throw unauthorized('Webhook timestamp outside the allowed window', 'WEBHOOK_SIGNATURE_INVALID');
  const expected = Buffer.from(signScaikeyWebhook(secret, timestamp, rawBody));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw unauthorized('Webhook signature does not match', 'WEBHOOK_SIGNATURE_INVALID');
}

const eventSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.enum(['user.deactivated', 'user.activated', 'user.deleted']),
  tenant_id: z.string().min(1).max(64),
  subject: z.string().min(1).max(255),
});

export function registerWebhookRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);
  route(
    {
      method: 'post',
      path: '/webhooks/scaikey',
      summary: 'Identity events from ScaiKey (signed: X-ScaiKey-Timestamp, X-ScaiKey-Signature = sha256=HMAC(secret, "{timestamp}.{body}"))',
      tag: 'identity',
      access: 'public',
      body: eventSchema,
      verifyRawBody: verifySignature,
      responses: {
        200: { description: 'Applied, or a redelivery of an event already handled', schema: z.object({ event_id: z.string(), status: z.enum(['applied', 'duplicate']), workflow_id: z.string() }) },
        202: { description: 'Accepted; still being applied', schema: z.object({ event_id: z.string(), status: z.literal('accepted'), workflow_id: z.string() }) },
      },
      errors: [401, 503],
    },
    async (ctx, { body }) => {
      const workflowId = workflowIds.identityEvent(body.id);
      const { handle, alreadyStarted } = await startOrAttach(ctx, identityEventWorkflow, {
        workflowId,
        taskQueue: ctx.deps.taskQueues.identity,
        args: [{ id: body.id, type: body.type, tenantId: body.tenant_id, subject: body.subject }],
        attributes: { tenantId: body.tenant_id },
      });
      const result = await resultWithin(ctx, handle, ctx.deps.config.workflowWaitSeconds);
      ctx.status = result === undefined ? 202 : 200;
      ctx.body = { event_id: body.id, status: result === undefined ? 'accepted' : alreadyStarted ? 'duplicate' : 'applied', workflow_id: workflowId };
    },
  );
}
