/**
 * Gateways with an admin API for the admin tests: one listening on loopback (requests over
 * real sockets to its admin port) and one that is only created (requests by `app.inject`).
 */
import type { AddressInfo } from 'node:net';
import type { AdminOptions, AdminServer } from '../../../server/admin/AdminServer.js';
import type { Gateway, GatewayOptions } from '../../../server/gateway.js';
import { createTestGateway, startGateway, type TestGateway } from '../helpers.js';

/** The header that carries `token`. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Gateway options with an admin API; `admin` adds to (or overrides) the port, host and token. */
export type AdminGatewayOptions = Omit<Partial<GatewayOptions>, 'admin'> & { admin?: AdminOptions };

function withAdmin(token: string, options: AdminGatewayOptions): Partial<GatewayOptions> {
  return { ...options, admin: { port: 0, host: '127.0.0.1', token, ...options.admin } };
}

/** A listening gateway and the port of its admin API. */
export interface AdminGateway {
  readonly gw: TestGateway;
  readonly admin: number;
}

/**
 * Starts a gateway from `config` on loopback with its admin API on a free port behind `token`
 * (`options.store`, `options.admin.config` and the rest go to the gateway as they are).
 */
export async function startAdminGateway(
  config: unknown,
  token: string,
  options: AdminGatewayOptions = {},
): Promise<AdminGateway> {
  const gw = await startGateway(config, withAdmin(token, options));
  const server = gw.gateway.admin?.app.server;
  if (server === undefined) throw new Error('no admin server');
  return { gw, admin: (server.address() as AddressInfo).port };
}

/** A gateway that does not listen, and its admin API, ready for `admin.app.inject`. */
export interface InjectableAdmin {
  readonly gateway: Gateway;
  readonly admin: AdminServer;
}

/** Creates a gateway from `config` with an admin API behind `token`, and readies the admin app. */
export async function createAdminGateway(
  config: unknown,
  token: string,
  options: AdminGatewayOptions = {},
): Promise<InjectableAdmin> {
  const gateway = await createTestGateway(config, withAdmin(token, options));
  const admin = gateway.admin;
  if (admin === undefined) throw new Error('no admin server');
  await admin.app.ready();
  return { gateway, admin };
}
