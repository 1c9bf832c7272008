import { describe, expect, it } from 'vitest';
import { cookieValue, hashKeyOf } from '../../../server/proxy/hashKey.js';

describe('hash keys', () => {
  it('reads cookies', () => {
    expect(cookieValue('a=1; sid=abc; b=2', 'sid')).toBe('abc');
    expect(cookieValue('sid="q"', 'sid')).toBe('q');
    expect(cookieValue('xsid=1', 'sid')).toBeUndefined();
    expect(cookieValue(undefined, 'sid')).toBeUndefined();
  });

  it('falls back to the client address when the header or cookie is missing', () => {
    expect(hashKeyOf({ type: 'path' }, '/a', '1.1.1.1', {})).toBe('/a');
    expect(hashKeyOf({ type: 'ip' }, '/a', '1.1.1.1', {})).toBe('1.1.1.1');
    expect(hashKeyOf({ type: 'header', name: 'x-user' }, '/a', '1.1.1.1', { 'x-user': 'u7' })).toBe('u7');
    expect(hashKeyOf({ type: 'header', name: 'x-user' }, '/a', '1.1.1.1', {})).toBe('1.1.1.1');
    expect(hashKeyOf({ type: 'cookie', name: 'sid' }, '/a', '1.1.1.1', { cookie: 'sid=s1' })).toBe('s1');
    expect(hashKeyOf({ type: 'cookie', name: 'sid' }, '/a', '1.1.1.1', {})).toBe('1.1.1.1');
  });
});
