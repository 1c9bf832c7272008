/**
 * The error a bad gateway configuration gives: every problem found, each naming the field
 * (`routes[0].retries.on[2]`) and, when the configuration came from a file, its line and column.
 */
import { ValidationError } from '../../src/errors.js';

/** One problem in a configuration. */
export interface ConfigIssue {
  /** The field, as `routes[0].retries.on[2]` ('' for the whole document). */
  readonly field: string;
  /** What is wrong, e.g. `must be one of 'ip', { header }, got "user"`. */
  readonly message: string;
  /** 1-based line in the source file, when known. */
  readonly line?: number | undefined;
  /** 1-based column in the source file, when known. */
  readonly column?: number | undefined;
}

/** Renders one issue as `file:line:col: field message`. */
export function formatIssue(issue: ConfigIssue, source?: string): string {
  const where =
    issue.line === undefined
      ? source === undefined
        ? ''
        : `${source}: `
      : `${source ?? ''}${source === undefined ? '' : ':'}${issue.line}:${issue.column ?? 1}: `;
  const field = issue.field === '' ? '' : `${issue.field} `;
  return `${where}${field}${issue.message}`;
}

/**
 * A configuration failed validation (`ERR_VALIDATION`). `issues` lists every problem found;
 * the message shows them one per line.
 */
export class ConfigError extends ValidationError {
  /** Every problem, in document order where known. */
  readonly issues: readonly ConfigIssue[];
  /** The file (or other source) the configuration came from, if any. */
  readonly source: string | undefined;

  constructor(issues: readonly ConfigIssue[], source?: string) {
    const lines = issues.map((i) => `  ${formatIssue(i, source)}`);
    const head = `invalid gateway configuration${source === undefined ? '' : ` in ${source}`}`;
    super(`${head}:\n${lines.join('\n')}`, issues[0] === undefined ? '' : toPointer(issues[0].field));
    this.issues = Object.freeze(issues.slice());
    this.source = source;
  }
}

/** `routes[0].match.prefix` -> `/routes/0/match/prefix` (JSON pointer, RFC 6901). */
export function toPointer(field: string): string {
  if (field === '') return '';
  return `/${splitField(field)
    .map((s) => String(s).replaceAll('~', '~0').replaceAll('/', '~1'))
    .join('/')}`;
}

/**
 * Splits a field name into its segments: `routes[0].match.prefix` -> ['routes', 0, 'match', 'prefix'].
 * Names holding dots (service names may) are written in brackets: `services["a.b"]`.
 */
export function splitField(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g;
  for (const m of field.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(JSON.parse(`"${m[3]}"`) as string);
  }
  return out;
}

/** Joins segments into a field name: ['routes', 0, 'match'] -> `routes[0].match`. */
export function joinField(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}
