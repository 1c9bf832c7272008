// The gateway's error catalogue: every code has a 4xx/5xx status, answers carry the JSON body
// and the request id, and the README's table (once merged) lists exactly these codes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorBody, GATEWAY_ERRORS } from '../../server/errors.js';

describe('gateway error catalogue', () => {
  it('gives every code an error status and a JSON body with the request id', () => {
    for (const [code, { status, meaning }] of Object.entries(GATEWAY_ERRORS)) {
      expect(code).toMatch(/^ERR_[A-Z_]+$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(meaning.length).toBeGreaterThan(10);
      const body = JSON.parse(errorBody(code as keyof typeof GATEWAY_ERRORS, 'm', 'id-1')) as unknown;
      expect(body).toEqual({ error: { code, message: 'm', requestId: 'id-1' } });
    }
  });

  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('<!-- gateway-errors:start -->');
  it('the README lists every gateway code with its status, and nothing else', () => {
    expect(start, 'README has the gateway-errors table').toBeGreaterThan(-1);
    const section = readme.slice(start, readme.indexOf('<!-- gateway-errors:end -->'));
    const rows = [...section.matchAll(/^\| `(ERR_[A-Z_]+)`\s*\| (\d{3})\s*\|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(GATEWAY_ERRORS).map(([code, e]) => [code, e.status])),
    );
  });
});
