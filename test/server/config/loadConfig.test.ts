import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../server/config/ConfigError.js';
import { DEFAULT_GATEWAY_CONFIG, resolveGatewayConfig } from '../../../server/config/GatewayConfig.js';
import { loadGatewayConfig, MAX_CONFIG_BYTES, parseGatewayConfig } from '../../../server/config/loadConfig.js';

const GOOD = `
routes:
  - match: { prefix: /api/users, methods: [GET, POST] }
    service: users
    strategy: p2c
    stripPrefix: true
    timeoutMs: 5000
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504], budgetPercent: 20 }
    rateLimit: { rps: 100, burst: 200, key: ip }
  - name: sticky
    match: { prefix: /cart/, host: ['*.example.com', Shop.Example.com], headers: { X-Canary: "1" } }
    service: carts
    strategy: maglev
    hashKey: { cookie: sid }
services:
  users: { static: [http://127.0.0.1:3001, { address: "http://127.0.0.1:3002/", weight: 2 }], healthCheck: { path: /healthz } }
`;

function issuesOf(fn: () => unknown): { field: string; message: string; line?: number | undefined }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_VALIDATION');
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

describe('gateway configuration', () => {
  it('resolves the design example with defaults filled in', () => {
    const c = parseGatewayConfig(GOOD, 'gateway.yaml');
    expect(c.listen).toEqual({ port: 8080, host: '0.0.0.0' });
    const [users, sticky] = c.routes;
    expect(users?.name).toBe('0:/api/users');
    expect(users?.rewritePrefix).toBe('/');
    expect(users?.retries.onStatus).toEqual(new Set([502, 503, 504]));
    expect(users?.retries.perTryTimeoutMs).toBe(5000);
    expect(users?.retries.idempotentOnly).toBe(true);
    expect(users?.rateLimit).toEqual({ rps: 100, burst: 200, header: undefined });
    expect(users?.bodyLimit).toBe(DEFAULT_GATEWAY_CONFIG.bodyLimit);
    expect(sticky?.prefix).toBe('/cart');
    expect(sticky?.hosts).toEqual(['*.example.com', 'shop.example.com']);
    expect(sticky?.headers).toEqual([['x-canary', '1']]);
    expect(sticky?.hashKey).toEqual({ type: 'cookie', name: 'sid' });
    expect(sticky?.retries.attempts).toBe(1);
    expect(sticky?.retries.on).toEqual(['connect-failure', 'reset']);
    // A route's undeclared service comes from the registry, with default settings.
    expect(c.services.get('carts')?.static).toBeUndefined();
    expect(c.services.get('users')?.static).toEqual([
      { id: 'http://127.0.0.1:3001', address: 'http://127.0.0.1:3001', weight: 1 },
      { id: 'http://127.0.0.1:3002', address: 'http://127.0.0.1:3002', weight: 2 },
    ]);
  });

  it('accepts JSON as well as YAML, and an empty document', () => {
    const json = JSON.stringify({ routes: [{ match: { prefix: '/' }, service: 'a' }] });
    expect(parseGatewayConfig(json).routes).toHaveLength(1);
    expect(parseGatewayConfig('').routes).toEqual([]);
  });

  it('names the field, line and column of each problem', () => {
    const text = [
      'routes:', // 1
      '  - match: { prefix: api }', // 2
      '    service: users', // 3
      '    retries: { attempts: 2, on: [reset, 5xx] }', // 4
      '    rateLimit: { rps: 10, key: user }', // 5
      '    colour: blue', // 6
      'services:', // 7
      '  users: { healthCheck: { timeoutMs: 0 } }', // 8
    ].join('\n');
    const issues = issuesOf(() => parseGatewayConfig(text, 'g.yaml'));
    const by = new Map(issues.map((i) => [i.field, i]));
    expect(by.get('routes[0].match.prefix')?.line).toBe(2);
    expect(by.get('routes[0].retries.on[1]')).toMatchObject({ line: 4, message: expect.stringContaining('"5xx"') });
    expect(by.get('routes[0].rateLimit.key')?.line).toBe(5);
    expect(by.get('routes[0].colour')).toMatchObject({ line: 6, message: 'is not a known field' });
    expect(by.get('services.users.healthCheck.timeoutMs')?.line).toBe(8);
    try {
      parseGatewayConfig(text, 'g.yaml');
    } catch (err) {
      expect((err as Error).message).toContain('g.yaml:6:5: routes[0].colour is not a known field');
    }
  });

  it('reports checks the schema cannot express, at their line', () => {
    const text = [
      'routes:',
      '  - match: { prefix: /a }',
      '    service: s',
      '    hashKey: path',
      '    stripPrefix: true',
      '    rewritePrefix: /b',
      '    timeoutMs: 100',
      '    retries: { perTryTimeoutMs: 200 }',
      '  - name: dup',
      '    match: { prefix: /x }',
      '    service: s',
      '  - name: dup',
      '    match: { prefix: /y }',
      '    service: s',
      'services:',
      '  s:',
      '    static: [http://127.0.0.1:1, http://127.0.0.1:1]',
      '    outlierDetection: { baseEjectionMs: 1000, maxEjectionMs: 10 }',
    ].join('\n');
    const issues = issuesOf(() => parseGatewayConfig(text));
    const by = new Map(issues.map((i) => [i.field, i]));
    expect(by.get('routes[0].hashKey')).toMatchObject({
      line: 4,
      message: expect.stringContaining("not 'round-robin'"),
    });
    expect(by.get('routes[0].rewritePrefix')?.line).toBe(6);
    expect(by.get('routes[0].retries.perTryTimeoutMs')?.line).toBe(8);
    expect(by.get('routes[2].name')?.line).toBe(12);
    expect(by.get('services.s.static[1]')?.line).toBe(17);
    // The balancer's own range check, mapped back to its field and line.
    expect(by.get('services.s.outlierDetection.maxEjectionMs')).toMatchObject({
      line: 18,
      message: expect.stringContaining('baseEjectionMs'),
    });
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    const syntax = issuesOf(() => parseGatewayConfig('routes:\n  - match: { prefix: /a\n', 'g.yaml'));
    expect(syntax[0]?.line).toBeGreaterThanOrEqual(2);
    const dup = issuesOf(() => parseGatewayConfig('routes: []\nroutes: []\n'));
    expect(dup[0]?.line).toBe(2);
    expect(issuesOf(() => parseGatewayConfig('- a\n- b\n'))[0]?.message).toContain('mapping');
  });

  it('refuses wrong types and values everywhere (bad input, not only good)', () => {
    const bad: unknown[] = [
      { routes: {} },
      { routes: [{ match: { prefix: '/' } }] },
      { routes: [{ match: { prefix: '/', methods: ['get'] }, service: 'a' }] },
      { routes: [{ match: { prefix: '/' }, service: 'a', strategy: 'fastest' }] },
      { routes: [{ match: { prefix: '/' }, service: 'a', timeoutMs: 0 }] },
      { routes: [{ match: { prefix: '/' }, service: 'a', bodyLimit: -1 }] },
      { routes: [{ match: { prefix: '/' }, service: 'a', rateLimit: { rps: 0 } }] },
      { routes: [{ match: { prefix: '/ spaces' }, service: 'a' }] },
      { routes: [{ match: { prefix: '/', headers: { 'bad header': 'x' } }, service: 'a' }] },
      { services: { a: { static: ['ftp://x'] } } },
      { services: { 'a b': {} } },
      { listen: { port: 70000 } },
      { proxy: { xForwardedFor: 'drop' } },
      { demo: { instances: 3 } },
      'routes',
      42,
    ];
    for (const value of bad) {
      expect(() => resolveGatewayConfig(value), JSON.stringify(value)).toThrow(ConfigError);
    }
  });

  it('refuses a document with too many alias uses as a ConfigError naming the source, at line 1', () => {
    const flat = `x: &a 1\nroutes: [${Array.from({ length: 101 }, () => '*a').join(', ')}]\n`;
    const nested =
      'a: &a [x, y]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n' +
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    for (const text of [flat, nested]) {
      let error: unknown;
      try {
        parseGatewayConfig(text, 'g.yaml');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const issues = (error as ConfigError).issues;
      expect(issues).toEqual([{ field: '', message: expect.stringMatching(/alias/), line: 1, column: 1 }]);
      expect((error as ConfigError).message).toContain('g.yaml:1:1: ');
    }
    // 99 uses are fine.
    const ok = `routes: [{ match: { prefix: &a / }, service: s }, ${Array.from({ length: 99 }, () => '{ match: { prefix: *a }, service: s }').join(', ')}]\n`;
    expect(parseGatewayConfig(ok).routes).toHaveLength(100);
  });

  it('loads files and names a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringway-config-'));
    const file = join(dir, 'g.json');
    writeFileSync(file, JSON.stringify({ routes: [{ match: { prefix: '/' }, service: 'a' }] }));
    expect((await loadGatewayConfig(file)).routes).toHaveLength(1);
    await expect(loadGatewayConfig(join(dir, 'missing.yaml'))).rejects.toThrow(
      /missing.yaml: cannot be read: does not exist/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a file larger than the limit is refused after reading at most the limit + 1 byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringway-config-'));
    try {
      // A regular file: refused by its size.
      const big = join(dir, 'big.yaml');
      writeFileSync(big, '');
      truncateSync(big, MAX_CONFIG_BYTES + 1);
      await expect(loadGatewayConfig(big)).rejects.toThrow(/big.yaml: is larger than 16777216 bytes/);
      // A pipe has no size: what is read is bounded. The writer offers 4x the limit.
      const fifo = join(dir, 'pipe.yaml');
      execFileSync('mkfifo', [fifo]);
      const offered = 4 * MAX_CONFIG_BYTES;
      const writer = createWriteStream(fifo);
      let accepted = 0;
      const written = new Promise<void>((resolve) => {
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        const pump = (): void => {
          while (accepted < offered) {
            accepted += chunk.length;
            if (!writer.write(chunk)) {
              writer.once('drain', pump);
              return;
            }
          }
          writer.end(resolve);
        };
        writer.on('error', () => resolve()); // EPIPE: the reader stopped
        writer.on('open', pump);
      });
      await expect(loadGatewayConfig(fifo)).rejects.toThrow(/pipe.yaml: is larger than 16777216 bytes/);
      await written;
      expect(accepted).toBeLessThan(2 * MAX_CONFIG_BYTES);
      writer.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('the example configuration is valid', async () => {
    const c = await loadGatewayConfig(new URL('../../../examples/gateway.yaml', import.meta.url).pathname);
    expect(c.demo).toMatchObject({ service: 'demo', instances: 3 });
    expect(c.routes[0]?.service).toBe('demo');
  });
});
