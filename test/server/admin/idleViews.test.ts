// GET /v1/services/<any name> through the admin API used to leave a cached view per distinct
// name in the registry for good; now the unwatched ones are bounded (maxIdleViews) and the
// services the gateway routes to (watched) stay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminServer } from '../../../server/admin/AdminServer.js';
import type { Gateway } from '../../../server/gateway.js';
import { ServiceRegistry } from '../../../src/registry/ServiceRegistry.js';
import { memoryStore } from '../../../src/store/memory/MemoryStore.js';
import { bearer, createAdminGateway } from './helpers.js';

const TOKEN = 'idle-views-token-0123456789abcdef';
const store = memoryStore();
const registry = new ServiceRegistry({ store, maxIdleViews: 5 });
let gateway: Gateway;
let admin: AdminServer;

beforeAll(async () => {
  ({ gateway, admin } = await createAdminGateway({ routes: [{ match: { prefix: '/' }, service: 'routed' }] }, TOKEN, {
    store,
    registry,
  }));
});

afterAll(async () => {
  await gateway.close();
  await registry.close();
  await store.close();
});

describe('registry views asked for through the admin API', () => {
  it('stay bounded whatever names clients ask for, and the routed service stays watched', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await admin.app.inject({
        url: `/v1/services/nobody-${i}`,
        headers: bearer(TOKEN),
      });
      expect(r.statusCode).toBe(404);
    }
    const services = registry.health().services;
    expect(services.length).toBeLessThanOrEqual(6);
    expect(services.find((s) => s.service === 'routed')?.watchers).toBeGreaterThan(0);
    expect(services.map((s) => s.service)).toContain('nobody-99');
  });
});
