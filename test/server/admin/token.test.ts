// The admin token: operator-chosen tokens are checked, generated ones are long and random,
// and the comparison accepts exactly `Bearer <token>`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkToken, generateToken, TokenCheck } from '../../../server/admin/token.js';
import { InvalidOptionError } from '../../../src/errors.js';

describe('admin token', () => {
  it('generates distinct 43-character base64url tokens that pass the check', () => {
    const a = generateToken();
    const b = generateToken();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(checkToken('t', a)).toBe(a);
  });

  it('refuses short, long, spaced, non-ASCII and non-string tokens, naming the field', () => {
    for (const bad of ['short', 'x'.repeat(1025), 'with a space in it!!', 'ünïcödé-token-1234567', 42, undefined]) {
      expect(() => checkToken('adminToken', bad)).toThrow(InvalidOptionError);
      expect(() => checkToken('adminToken', bad)).toThrow(/adminToken/);
    }
  });

  it('matches only Bearer <the token>', () => {
    const token = 'abcdefghijklmnop-0123';
    const check = new TokenCheck(token);
    expect(check.matches(`Bearer ${token}`)).toBe(true);
    expect(check.matches(`bearer  ${token}`)).toBe(true);
    for (const bad of [undefined, '', token, `Bearer ${token} x`, `Bearer ${token}1`, `Basic ${token}`, 'Bearer ']) {
      expect(check.matches(bad)).toBe(false);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (s) => {
        expect(check.matches(`Bearer ${s}`)).toBe(s === token);
      }),
    );
  });
});
