import { describe, expect, it } from 'vitest';
import { Logger } from '../../server/log.js';

describe('Logger', () => {
  it('writes pino-shaped JSON lines at or above its level, errors serialised', () => {
    const lines: string[] = [];
    const log = new Logger('info', (l) => lines.push(l));
    log.debug({ a: 1 }, 'hidden');
    log.info({ service: 'users', n: 2 }, 'shown');
    log.error({ err: new Error('boom') }, 'failed');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 30, pid: process.pid, service: 'users', n: 2, msg: 'shown' });
    expect(typeof first.time).toBe('number');
    const second = JSON.parse(lines[1] as string) as { level: number; err: { message: string; type: string } };
    expect(second.level).toBe(50);
    expect(second.err).toMatchObject({ type: 'Error', message: 'boom' });
    expect(log.isEnabled('debug')).toBe(false);
    expect(new Logger('silent', () => {}).isEnabled('fatal')).toBe(false);
  });
});
