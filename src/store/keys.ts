/**
 * Key names for the Redis backend. Every key of one entity (a lock's lease, fencing counter
 * and queue; a service's instances and index; a config key's versions and history) carries
 * the same Redis Cluster hash tag, so a Lua script that touches several of them runs on one
 * slot and never fails with CROSSSLOT (Redis Cluster specification, "Hash tags").
 *
 * Layout: `<prefix><concept>:{<tag>}:<part>`. The tag is the entity name itself when it has
 * no brace and does not start with `#`; otherwise `#` + SHA-1 of the name (a brace would
 * end the tag early). Distinct names therefore give distinct keys.
 */
import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';

/** The hash-tag body for `name` (see the module comment). */
export function hashTag(name: string): string {
  if (name.includes('{') || name.includes('}') || name.startsWith('#')) {
    return `#${createHash('sha1').update(name).digest('hex')}`;
  }
  return name;
}

/**
 * The key `<prefix><concept>:{<tag>}:<part>`; `part` '' gives `<prefix><concept>:{<tag>}`.
 * @example entityKey('ringway:', 'lock', 'invoice:7', 'fence') // 'ringway:lock:{invoice:7}:fence'
 */
export function entityKey(prefix: string, concept: string, name: string, part = ''): string {
  const base = `${prefix}${concept}:{${hashTag(name)}}`;
  return part === '' ? base : `${base}:${part}`;
}

/**
 * Checks a key prefix: any string without braces (a brace would take over the hash tag).
 * @throws {InvalidOptionError} naming `field`.
 */
export function checkPrefix(field: string, prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length > 256 || prefix.includes('{') || prefix.includes('}')) {
    throw new InvalidOptionError(field, prefix, 'must be a string of at most 256 characters without { or }');
  }
  return prefix;
}
