/**
 * Reads a gateway configuration file (YAML, or JSON, which is YAML too) and resolves it,
 * with every error naming the field and its line and column in the file.
 */
import { open } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from './ConfigError.js';
import { type Locate, type ResolvedGatewayConfig, resolveGatewayConfig } from './GatewayConfig.js';

/** Alias uses (`*name`, counted as the yaml library expands them) a document may have. */
const MAX_ALIAS_COUNT = 100;

/** Largest configuration file read: 16 MiB. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/**
 * Parses and resolves configuration text. `source` names it in errors (a file name).
 * @throws {ConfigError} for a syntax error (with its line) or any invalid field.
 */
export function parseGatewayConfig(text: string, source?: string): ResolvedGatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.slice(0, 10).map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { field: '', message: e.message.split('\n')[0] ?? e.message, line: pos.line, column: pos.col };
    });
    throw new ConfigError(issues, source);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml library throws a ReferenceError past maxAliasCount (and may throw on other
    // documents it cannot turn into values); it knows no position, so line 1.
    const reason =
      err instanceof ReferenceError
        ? `uses aliases (*name) too often (the limit is ${MAX_ALIAS_COUNT} uses, counted as expanded)`
        : (err as Error).message;
    throw new ConfigError([{ field: '', message: `cannot be read: ${reason}`, line: 1, column: 1 }], source);
  }
  if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) {
    throw new ConfigError(
      [{ field: '', message: 'must be a mapping (routes:, services:, ...)', line: 1, column: 1 }],
      source,
    );
  }
  const locate: Locate = (segments, atKey) => {
    let node: unknown = doc.contents;
    let best: Node | undefined = node as Node | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (pair === undefined) break;
        if (i === segments.length - 1 && atKey && isScalar(pair.key)) {
          best = pair.key;
          break;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else {
        break;
      }
      if (node !== null && typeof node === 'object' && 'range' in node) best = node as Node;
      else break;
    }
    const offset = best?.range?.[0];
    if (offset === undefined) return undefined;
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  return resolveGatewayConfig(value ?? {}, locate, source);
}

/**
 * Reads and resolves the configuration file at `path`.
 * @throws {ConfigError} when the file cannot be read, is too large, or is invalid.
 */
export async function loadGatewayConfig(path: string): Promise<ResolvedGatewayConfig> {
  let text: string;
  try {
    text = (await readAtMost(path, MAX_CONFIG_BYTES)).toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new ConfigError([{ field: '', message: `cannot be read: ${reason}` }], path);
  }
  return parseGatewayConfig(text, path);
}

/**
 * Reads the file at `path`, refusing it past `max` bytes: by its size first, then by what is
 * read (at most `max` + 1 bytes; a pipe or a device has no size, a file may grow).
 * @throws {ConfigError} when it is larger than `max`.
 */
async function readAtMost(path: string, max: number): Promise<Buffer> {
  const tooLarge = (): ConfigError => new ConfigError([{ field: '', message: `is larger than ${max} bytes` }], path);
  const file = await open(path, 'r');
  try {
    const stat = await file.stat();
    if (stat.isFile() && stat.size > max) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) throw tooLarge();
    }
    return Buffer.concat(chunks, total);
  } finally {
    await file.close();
  }
}
