/**
 * Request ids: a client's `X-Request-Id` is kept when it looks like an id (so a trace that
 * started upstream of the gateway goes on), otherwise the gateway makes one. Ids go to the
 * upstream, back to the client, and into every error body and log line.
 *
 * Made ids have the UUID layout (RFC 9562: version 4 and variant bits set) and are unique
 * without drawing randomness per request (which cost more than any other step of making the
 * request's headers): 74 random bits drawn once per process, then a 48-bit counter that
 * starts at a random value. Ids of two processes can only collide if their prefixes do (the
 * birthday bound: about n^2 / 2^75 for n processes); one process repeats after 2^48 ids.
 */
import { randomBytes } from 'node:crypto';

/** What an incoming id may look like: 1 to 128 of letters, digits and `._:+/=-`. */
const SAFE_ID = /^[\w.:+/=-]{1,128}$/;

/** `xxxxxxxx-xxxx-4xxx-Vxxx-` from 10 random bytes, version 4 and the RFC variant set. */
function randomPrefix(): string {
  const b = randomBytes(10);
  b[6] = ((b[6] as number) & 0x0f) | 0x40; // version 4
  b[8] = ((b[8] as number) & 0x3f) | 0x80; // variant 10xx
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-`;
}

const PREFIX = randomPrefix();
const COUNTER_SPAN = 2 ** 48;
let counter = Math.floor(Math.random() * 2 ** 32);

/** A new id: the process prefix and the next counter value, as 12 hex digits. */
export function newRequestId(): string {
  counter = (counter + 1) % COUNTER_SPAN;
  return PREFIX + counter.toString(16).padStart(12, '0');
}

/** The request id for a request whose id header holds `incoming`. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && SAFE_ID.test(incoming)) return incoming;
  return newRequestId();
}
