/**
 * Request ids: a client's `X-Request-Id` is kept when it looks like an id (so a trace that
 * started upstream of the gateway goes on), otherwise a random UUID (RFC 9562 version 4)
 * is made. Ids go to the upstream, back to the client, and into every error body and log line.
 */
import { randomUUID } from 'node:crypto';

/** What an incoming id may look like: 1 to 128 of letters, digits and `._:+/=-`. */
const SAFE_ID = /^[\w.:+/=-]{1,128}$/;

/** The request id for a request whose id header holds `incoming`. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && SAFE_ID.test(incoming)) return incoming;
  return randomUUID();
}
