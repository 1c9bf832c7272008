import { describe, expect, it } from 'vitest';
import { newRequestId, requestIdFor } from '../../../server/proxy/requestId.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('makes unique ids with the UUID version 4 layout', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const id = newRequestId();
      expect(UUID_V4.test(id)).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBe(100_000);
  });

  it('keeps a well-formed incoming id and replaces anything else', () => {
    expect(requestIdFor('abc-123.x:y')).toBe('abc-123.x:y');
    expect(UUID_V4.test(requestIdFor(undefined))).toBe(true);
    expect(UUID_V4.test(requestIdFor(''))).toBe(true);
    expect(UUID_V4.test(requestIdFor('a'.repeat(129)))).toBe(true);
    expect(UUID_V4.test(requestIdFor('new\nline'))).toBe(true);
    expect(UUID_V4.test(requestIdFor(['a', 'b']))).toBe(true);
  });
});
