import { describe, expect, it } from 'vitest';
import { resolveGatewayConfig } from '../../../server/config/GatewayConfig.js';
import { hostName, RouteTable, underPrefix } from '../../../server/routes/RouteTable.js';

function table(routes: unknown[]): RouteTable {
  return new RouteTable(resolveGatewayConfig({ routes }).routes);
}

describe('RouteTable', () => {
  it('matches prefixes on whole segments', () => {
    expect(underPrefix('/api', '/api')).toBe(true);
    expect(underPrefix('/api/', '/api')).toBe(true);
    expect(underPrefix('/api/x', '/api')).toBe(true);
    expect(underPrefix('/apix', '/api')).toBe(false);
    expect(underPrefix('/ap', '/api')).toBe(false);
    expect(underPrefix('/anything', '/')).toBe(true);
  });

  it('takes the first matching route in configuration order', () => {
    const t = table([
      { name: 'users', match: { prefix: '/api/users' }, service: 'u' },
      { name: 'api', match: { prefix: '/api' }, service: 'a' },
      { name: 'all', match: { prefix: '/' }, service: 'r' },
    ]);
    expect(t.match('GET', '/api/users/7', {})?.name).toBe('users');
    expect(t.match('GET', '/api/usersx', {})?.name).toBe('api');
    expect(t.match('GET', '/other', {})?.name).toBe('all');
  });

  it('normalizes route prefixes as request paths are: escapes decoded or upper-cased; tricks refused', () => {
    const t = table([
      { name: 'api', match: { prefix: '/%61pi' }, service: 'a' },
      { name: 'cafe', match: { prefix: '/caf%c3%a9' }, service: 'c' },
    ]);
    expect(t.match('GET', '/api/x', {})?.name).toBe('api');
    expect(t.match('GET', '/caf%C3%A9', {})?.name).toBe('cafe');
    expect(() => table([{ match: { prefix: '/api/../admin' }, service: 'a' }])).toThrow(
      /routes\[0\]\.match\.prefix.*dot segment/s,
    );
  });

  it('matches methods, hosts (exact and wildcard, without port) and headers', () => {
    const t = table([
      { name: 'post', match: { prefix: '/', methods: ['POST'] }, service: 's' },
      { name: 'host', match: { prefix: '/', host: ['api.example.com', '*.internal'] }, service: 's' },
      { name: 'canary', match: { prefix: '/', headers: { 'x-canary': '1' } }, service: 's' },
    ]);
    expect(t.match('POST', '/', {})?.name).toBe('post');
    expect(t.match('GET', '/', { host: 'API.example.com:8080' })?.name).toBe('host');
    expect(t.match('GET', '/', { host: 'a.b.internal' })?.name).toBe('host');
    expect(t.match('GET', '/', { host: 'internal' })).toBeUndefined();
    expect(t.match('GET', '/', { host: 'example.com', 'x-canary': '1' })?.name).toBe('canary');
    expect(t.match('GET', '/', { host: 'example.com', 'x-canary': '2' })).toBeUndefined();
    expect(t.match('GET', '/', {})).toBeUndefined();
  });

  it('reads host names with ports and IPv6 literals', () => {
    expect(hostName('Example.COM:80')).toBe('example.com');
    expect(hostName('[::1]:8080')).toBe('[::1]');
    expect(hostName(undefined)).toBe('');
  });
});
