// The README's table of error codes and the code's catalogue must not drift apart.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { ERROR_CODES, InvalidOptionError, RingwayError } from '../src/index.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('<!-- error-codes:start -->'), readme.indexOf('<!-- error-codes:end -->'));
const rows = [...section.matchAll(/^\| `(ERR_[A-Z_]+)`\s*\| `(\w+)`\s*\|/gm)].map((m) => ({ code: m[1], cls: m[2] }));

describe('error catalogue', () => {
  it('lists every code in the README, and nothing else', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('names an exported class for each code, which carries that code', () => {
    for (const { code, cls } of rows) {
      const Ctor = (api as Record<string, unknown>)[cls as string];
      expect(typeof Ctor, `${cls} is exported`).toBe('function');
      expect(Object.getPrototypeOf((Ctor as { prototype: object }).prototype)).toBeDefined();
      const source = Ctor as new (...args: never[]) => RingwayError;
      const instance =
        cls === 'InvalidOptionError'
          ? new InvalidOptionError('x', 1, 'must be y')
          : new source(...(['m', undefined, 0] as never[]));
      expect(instance.code).toBe(code);
      expect(instance).toBeInstanceOf(RingwayError);
      expect(instance).toBeInstanceOf(Error);
    }
  });

  it('recognises errors from another copy of the package by brand', () => {
    const foreign = new InvalidOptionError('vnodes', 0, 'must be positive');
    Object.setPrototypeOf(foreign, Error.prototype);
    expect(foreign).toBeInstanceOf(RingwayError);
    expect(foreign).toBeInstanceOf(InvalidOptionError);
    expect(new Error('plain')).not.toBeInstanceOf(RingwayError);
    expect(null).not.toBeInstanceOf(RingwayError);
  });
});
