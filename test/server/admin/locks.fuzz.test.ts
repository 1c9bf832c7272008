// Property tests of the lock endpoints: random JSON, names and tokens are answered with a 2xx
// or a 4xx in the JSON error shape, never a 5xx; and random sequences of acquire / extend /
// release / inspect behave as a reference model of one lock (one holder at a time, tokens
// strictly increasing, extend and release only by the current token, releasing twice harmless).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminServer } from '../../../server/admin/AdminServer.js';
import type { Gateway } from '../../../server/gateway.js';
import { NO_UPSTREAM } from '../helpers.js';
import { createAdminGateway } from './helpers.js';

const TOKEN = 'lock-fuzz-token-0123456789abcdef';
const authorization = `Bearer ${TOKEN}`;
let gateway: Gateway;
let admin: AdminServer;
let unique = 0;

beforeAll(async () => {
  ({ gateway, admin } = await createAdminGateway(NO_UPSTREAM, TOKEN));
});

afterAll(async () => {
  await gateway.close();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: string): Promise<Answer> {
  const r = await admin.app.inject({
    method,
    url,
    headers: { authorization, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { payload }),
  });
  return { status: r.statusCode, body: r.body === '' ? {} : (JSON.parse(r.body) as Record<string, unknown>) };
}

function checkAnswer({ status, body }: Answer, what: string): void {
  expect(status, what).toBeLessThan(500);
  if (status >= 400) {
    const e = body.error as { code: string; message: string; requestId: string };
    expect(e.code, what).toMatch(/^ERR_[A-Z_]+$/);
    expect(e.message.length, what).toBeGreaterThan(0);
    expect(e.requestId.length, what).toBeGreaterThan(0);
  }
}

const lockPath = (name: string, token?: string) =>
  `/v1/locks/${encodeURIComponent(name)}${token === undefined ? '' : `/${token}`}`;

describe('lock endpoints under random input', () => {
  it('answer random JSON bodies with a 2xx or a 4xx JSON error', async () => {
    const body = fc.oneof(
      fc.json(),
      fc.string(),
      fc
        .record(
          {
            ttlMs: fc.oneof(fc.integer({ min: -10, max: 4_000_000 }), fc.double(), fc.string(), fc.constant(null)),
            waitMs: fc.oneof(fc.integer({ min: -10, max: 700_000 }), fc.boolean(), fc.constant(null)),
            fair: fc.oneof(fc.boolean(), fc.integer(), fc.string()),
            extra: fc.jsonValue(),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('POST', 'PUT', 'DELETE', 'GET'), body, async (method, payload) => {
        // A fresh name each time: a random valid body can never wait behind an earlier one.
        const name = `fz-${++unique}`;
        const url = method === 'PUT' || method === 'DELETE' ? lockPath(name, '1') : lockPath(name);
        const answer = await call(method, url, method === 'GET' ? undefined : payload);
        checkAnswer(answer, `${method} ${url} ${payload.slice(0, 80)}`);
        if (method === 'POST' && answer.status === 200) {
          expect(answer.body).toMatchObject({ name });
          await call('DELETE', lockPath(name, String(answer.body.token)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answer random names and tokens with a 2xx or a 4xx JSON error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('POST', 'PUT', 'DELETE', 'GET'),
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.oneof(fc.string({ maxLength: 20 }), fc.bigInt({ min: -10n, max: 10n ** 17n }).map(String)),
        fc.boolean(),
        async (method, name, token, raw) => {
          // Lone surrogates cannot be sent as UTF-8 at all.
          fc.pre(/^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/.test(name));
          // Raw: printable ASCII put in the path as it is (the client forgot to encode it).
          const encoded = raw ? name.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c)) : encodeURIComponent(name);
          const withToken = method === 'PUT' || method === 'DELETE';
          const url = `/v1/locks/${encoded}${withToken ? `/${encodeURIComponent(token)}` : ''}`;
          const payload = method === 'POST' || method === 'PUT' ? JSON.stringify({ ttlMs: 60_000 }) : undefined;
          const answer = await call(method, url, payload);
          checkAnswer(answer, `${method} ${url}`);
          if (method === 'POST' && answer.status === 200) {
            await call('DELETE', `/v1/locks/${encoded}/${String(answer.body.token)}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

type Which = 'current' | 'stale' | 'next';
type Command =
  | { op: 'acquire'; lock: number }
  | { op: 'extend' | 'release'; lock: number; which: Which }
  | { op: 'inspect'; lock: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ op: fc.constant('acquire' as const), lock: fc.nat(1) }),
  fc.record({
    op: fc.constantFrom('extend' as const, 'release' as const),
    lock: fc.nat(1),
    which: fc.constantFrom<Which>('current', 'stale', 'next'),
  }),
  fc.record({ op: fc.constant('inspect' as const), lock: fc.nat(1) }),
);

/** The model of one lock: its holder's token (0: free) and the tokens granted so far. */
interface ModelLock {
  held: number;
  granted: number[];
}

describe('lock endpoints against a model', () => {
  it('keep one holder at a time, increasing tokens, and act only for the current token', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 30 }), async (commands) => {
        const run = ++unique;
        const names = [`model-${run}-a`, `model-${run}/b c`];
        const model: ModelLock[] = [
          { held: 0, granted: [] },
          { held: 0, granted: [] },
        ];
        for (const c of commands) {
          const name = names[c.lock] as string;
          const m = model[c.lock] as ModelLock;
          const last = m.granted.at(-1) ?? 0;
          if (c.op === 'acquire') {
            const r = await call('POST', lockPath(name), JSON.stringify({ ttlMs: 600_000 }));
            if (m.held === 0) {
              expect(r.status).toBe(200);
              const token = r.body.token as number;
              expect(token).toBeGreaterThan(last);
              m.held = token;
              m.granted.push(token);
            } else {
              expect(r.status).toBe(409);
              expect((r.body.error as { code: string }).code).toBe('ERR_LOCK_TIMEOUT');
            }
          } else if (c.op === 'inspect') {
            const r = await call('GET', lockPath(name));
            if (m.held === 0) expect(r.status).toBe(404);
            else expect(r.body).toMatchObject({ name, token: m.held, waiting: 0 });
          } else {
            const token =
              c.which === 'current' ? m.held || last + 1 : c.which === 'stale' ? (m.granted[0] ?? 1) : last + 1;
            const holds = m.held !== 0 && token === m.held;
            if (c.op === 'extend') {
              const r = await call('PUT', lockPath(name, String(token)), JSON.stringify({ ttlMs: 600_000 }));
              if (holds) expect(r.body).toMatchObject({ name, token, ttlMs: 600_000 });
              else {
                expect(r.status).toBe(409);
                expect((r.body.error as { code: string }).code).toBe('ERR_LOCK_NOT_HELD');
              }
            } else {
              const r = await call('DELETE', lockPath(name, String(token)));
              expect(r.status).toBe(200);
              expect(r.body).toEqual({ name, token, released: holds });
              if (holds) m.held = 0;
            }
          }
        }
        // Leave nothing held.
        for (const [i, m] of model.entries()) {
          if (m.held !== 0) await call('DELETE', lockPath(names[i] as string, String(m.held)));
        }
      }),
      { numRuns: 60 },
    );
  });
});
