/** The admin API's error answers, in the gateway's JSON shape (see `../errors.ts`). */
import type { FastifyReply } from 'fastify';
import { GATEWAY_ERRORS, type GatewayErrorCode } from '../errors.js';

/**
 * Sends `{ "error": { "code", "message", "requestId", "field"? } }` with the code's status.
 */
export function fail(reply: FastifyReply, code: GatewayErrorCode, message: string, field?: string): FastifyReply {
  return reply
    .code(GATEWAY_ERRORS[code].status)
    .header('cache-control', 'no-store')
    .send({ error: { code, message, requestId: reply.request.id, ...(field === undefined ? {} : { field }) } });
}
