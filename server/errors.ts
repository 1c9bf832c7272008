/**
 * The gateway's HTTP error catalogue: every error the proxy and the admin API answer with has a stable `code`,
 * one HTTP status and a JSON body `{ "error": { "code", "message", "requestId" } }`, plus the
 * request id in `X-Request-Id`. Answers are written straight to Node's `ServerResponse`
 * (the proxy path never builds a Fastify reply), in this one place.
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { requestIdFor } from './proxy/requestId.js';

/** Every code the gateway answers with, its HTTP status and what it means. */
export const GATEWAY_ERRORS = {
  ERR_BAD_REQUEST: {
    status: 400,
    meaning: 'The request is malformed: bad path (dot segments, encoded slashes), bad framing or header bytes.',
  },
  ERR_INVALID: {
    status: 400,
    meaning: 'Admin API: a body, parameter or query field fails its schema or is unknown; the message names the field.',
  },
  ERR_UNAUTHORIZED: {
    status: 401,
    meaning: 'Admin API: the `Authorization: Bearer <token>` header is missing or holds another token.',
  },
  ERR_NO_ROUTE: { status: 404, meaning: 'No route matches the request (path prefix, host, method and headers).' },
  ERR_NOT_FOUND: {
    status: 404,
    meaning:
      'Admin API: no such endpoint, service or instance; a config key with no live value, history or schema, a version not in its history, or a namespace the gateway does not have.',
  },
  ERR_REQUEST_TIMEOUT: { status: 408, meaning: 'The client did not send the whole request in time.' },
  ERR_LOCK_TIMEOUT: {
    status: 409,
    meaning: 'Admin API: the lock stayed held by another holder for the whole `waitMs` of the acquire.',
  },
  ERR_LOCK_NOT_HELD: {
    status: 409,
    meaning:
      'Admin API: the token no longer holds the lock (its lease ended, it was released, or a later token holds it).',
  },
  ERR_BODY_TOO_LARGE: {
    status: 413,
    meaning: "The request body is larger than the route's `bodyLimit` (1 MiB by default).",
  },
  ERR_PRECONDITION_FAILED: {
    status: 412,
    meaning:
      'Admin API: `If-Match` names another version than the live one of the config key or schema (compare-and-set failed), `If-Match: *` finds none, or `If-None-Match: *` finds one.',
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    meaning: 'Admin API: the request body is not `application/json`.',
  },
  ERR_RATE_LIMITED: {
    status: 429,
    meaning: "The route's rate limit for this client is used up; `Retry-After` says when to come back.",
  },
  ERR_HEADERS_TOO_LARGE: { status: 431, meaning: 'The request headers are larger than the server accepts.' },
  ERR_INTERNAL: { status: 500, meaning: 'The gateway failed in a way it did not expect; the log has the details.' },
  ERR_UPSTREAM_FAILURE: {
    status: 502,
    meaning: 'The upstream refused the connection, reset it or sent an invalid response, and no retry could help.',
  },
  ERR_NO_ENDPOINT: {
    status: 503,
    meaning: 'No healthy instance of the service can take the request (answered at once, not after a wait).',
  },
  ERR_UNAVAILABLE: {
    status: 503,
    meaning: 'Admin API: the store cannot be reached (and nothing cached can answer), or the gateway is not ready.',
  },
  ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    meaning: "The upstream did not answer within the route's `timeoutMs` (or `retries.perTryTimeoutMs`).",
  },
} as const;

/** A code of {@link GATEWAY_ERRORS}. */
export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

/** The JSON body of every gateway error. */
export interface GatewayErrorBody {
  error: { code: GatewayErrorCode; message: string; requestId: string };
}

/** The body of an error answer, as JSON text. */
export function errorBody(code: GatewayErrorCode, message: string, requestId: string): string {
  const body: GatewayErrorBody = { error: { code, message, requestId } };
  return JSON.stringify(body);
}

/**
 * Answers `res` with the error `code`, unless the response has already started (then the
 * connection is cut, since a status can no longer be sent). `headers` are added as they are
 * (e.g. `retry-after`). With `close`, the connection is closed after the answer (used when
 * the request body was not read).
 */
export function sendError(
  res: ServerResponse,
  code: GatewayErrorCode,
  message: string,
  requestId: string,
  headers?: readonly string[],
  close = false,
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = errorBody(code, message, requestId);
  const out: string[] = [
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
    'x-request-id',
    requestId,
    'cache-control',
    'no-store',
  ];
  if (headers !== undefined) for (const h of headers) out.push(h);
  if (close) {
    out.push('connection', 'close');
    res.shouldKeepAlive = false;
  }
  res.writeHead(GATEWAY_ERRORS[code].status, out);
  res.end(body);
}

/**
 * Answers what Node's HTTP parser refused on a connection (bad framing or bytes, an oversize
 * head, a request that took too long) in the usual JSON shape, and closes it; a connection
 * already gone or mid-answer is just closed. Returns the code answered, if any. The proxy
 * port and the admin API both use it as their `clientErrorHandler`.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): GatewayErrorCode | undefined {
  const code = err.code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || socket.destroyed) {
    socket.destroy();
    return undefined;
  }
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (!socket.writable || inProgress?.headersSent === true) {
    socket.destroy();
    return undefined;
  }
  const gatewayCode: GatewayErrorCode =
    code === 'HPE_HEADER_OVERFLOW'
      ? 'ERR_HEADERS_TOO_LARGE'
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'ERR_REQUEST_TIMEOUT'
        : 'ERR_BAD_REQUEST';
  const status = GATEWAY_ERRORS[gatewayCode].status;
  const requestId = requestIdFor(undefined);
  const reason = code === undefined ? 'malformed request' : `malformed request (${code})`;
  const body = errorBody(
    gatewayCode,
    gatewayCode === 'ERR_BAD_REQUEST' ? reason : GATEWAY_ERRORS[gatewayCode].meaning,
    requestId,
  );
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
  return gatewayCode;
}
