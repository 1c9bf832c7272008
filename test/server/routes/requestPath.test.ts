import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRequestTarget } from '../../../server/routes/requestPath.js';

/** Full percent-decoding, as a lenient upstream might do before resolving dot segments. */
function decodeAll(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

describe('checkRequestTarget', () => {
  it('splits path and query, and leaves ordinary paths alone', () => {
    expect(checkRequestTarget('/')).toEqual({ path: '/', query: '' });
    expect(checkRequestTarget('/api/users?id=7&x=%2F')).toEqual({ path: '/api/users', query: '?id=7&x=%2F' });
    expect(checkRequestTarget('/a/b.c/..d/.e/')).toEqual({ path: '/a/b.c/..d/.e/', query: '' });
    expect(checkRequestTarget('/caf%C3%A9')).toEqual({ path: '/caf%C3%A9', query: '' });
  });

  it('decodes percent-encoded unreserved characters (RFC 3986 section 6.2.2.2)', () => {
    expect(checkRequestTarget('/%61pi/%7Euser')).toEqual({ path: '/api/~user', query: '' });
  });

  it('upper-cases the hex digits of the escapes it keeps (RFC 3986 section 6.2.2.1)', () => {
    // Found in review: `/caf%c3%a9` did not match a route for `/caf%C3%A9`.
    expect(checkRequestTarget('/caf%c3%a9?q=%c3')).toEqual({ path: '/caf%C3%A9', query: '?q=%c3' });
    expect(checkRequestTarget('/a%2cb%3A')).toEqual({ path: '/a%2Cb%3A', query: '' });
  });

  it.each([
    ['/api/../admin'],
    ['/api/./admin'],
    ['/api/..'],
    ['/..'],
    ['/api/%2e%2e/admin'],
    ['/api/%2E%2e/admin'],
    ['/api/.%2e/admin'],
    ['/api/%2e/admin'],
    ['/api/%2fadmin'],
    ['/api/%2Fadmin'],
    ['/api/%5cadmin'],
    ['/api\\..\\admin'],
    ['/api/%00'],
    ['/api/%zz'],
    ['/api/%2'],
    ['http://evil.example/api'],
    ['*'],
    ['api'],
    ['/api#frag'],
  ])('refuses %s', (url) => {
    expect(checkRequestTarget(url)).toHaveProperty('error');
  });

  it('never lets a path through that a decoding upstream would resolve differently', () => {
    const segment = fc.oneof(
      fc.constantFrom('.', '..', '%2e', '%2E', '.%2e', '%2e.', 'api', 'admin', '%2f', '%5c', '%41', '', 'a.b'),
      fc.string({ maxLength: 4 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const url = `/${segments.join('/')}`;
        const r = checkRequestTarget(url);
        if ('error' in r) return;
        const decoded = decodeAll(r.path);
        const parts = decoded.split('/');
        expect(parts.includes('.') || parts.includes('..')).toBe(false);
        expect(decoded.includes('\\')).toBe(false);
        // The checked path is what gets routed and forwarded: decoding it adds no separators.
        expect(decoded.split('/').length).toBe(r.path.split('/').length);
      }),
      { numRuns: 2000 },
    );
  });
});
