/**
 * The gateway's log: JSON lines on stdout with pino's field names and level numbers
 * (`{"level":30,"time":…,"pid":…,"hostname":…,"msg":…}`), so the usual pino tooling reads it.
 *
 * It is the gateway's own rather than Fastify's logger on purpose: a Fastify instance with a
 * logger attaches response listeners and a child logger to every request, which costs the
 * proxy path more than the logging it never does per request.
 */
import { hostname } from 'node:os';

/** Level names, lowest first, and `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** A level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const NUMBERS: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/** Fields of one line besides level, time and message. */
export type LogFields = Record<string, unknown>;

/** Writes one log line; replaceable in tests. */
export type LogSink = (line: string) => void;

/** A leveled JSON-lines logger. */
export class Logger {
  readonly level: LogLevel;
  readonly #min: number;
  readonly #sink: LogSink;
  readonly #base: string;

  /**
   * @param level lowest level written. @default 'info'
   * @param sink where lines go. @default process.stdout
   */
  constructor(level: LogLevel = 'info', sink: LogSink = (line) => process.stdout.write(line)) {
    this.level = level;
    this.#min = NUMBERS[level];
    this.#sink = sink;
    this.#base = `"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`;
  }

  /** Whether lines of `level` are written. */
  isEnabled(level: LogLevel): boolean {
    return NUMBERS[level] >= this.#min;
  }

  #write(level: LogLevel, fields: LogFields | undefined, msg: string): void {
    const n = NUMBERS[level];
    if (n < this.#min) return;
    let extra = '';
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) {
        const value =
          v instanceof Error
            ? { type: v.name, message: v.message, stack: v.stack, code: (v as { code?: unknown }).code }
            : v;
        const json = JSON.stringify(value);
        if (json !== undefined) extra += `,${JSON.stringify(k)}:${json}`;
      }
    }
    this.#sink(`{"level":${n},"time":${Date.now()},${this.#base}${extra},"msg":${JSON.stringify(msg)}}\n`);
  }

  trace(fields: LogFields | undefined, msg: string): void {
    this.#write('trace', fields, msg);
  }
  debug(fields: LogFields | undefined, msg: string): void {
    this.#write('debug', fields, msg);
  }
  info(fields: LogFields | undefined, msg: string): void {
    this.#write('info', fields, msg);
  }
  warn(fields: LogFields | undefined, msg: string): void {
    this.#write('warn', fields, msg);
  }
  error(fields: LogFields | undefined, msg: string): void {
    this.#write('error', fields, msg);
  }
  fatal(fields: LogFields | undefined, msg: string): void {
    this.#write('fatal', fields, msg);
  }
}
