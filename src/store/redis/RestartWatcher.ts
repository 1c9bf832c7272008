/**
 * Detects restarts of the Redis servers a store talks to: after every (re)connection it
 * reads the server's `run_id` (INFO server), which Redis draws at random on each start. A
 * different run id on the same connection means the server restarted (or, behind Sentinel,
 * a replica was promoted) and may have lost recent writes: with no persistence, all of them.
 *
 * On a Cluster a promoted replica keeps its own run id and has its own address, so the
 * connection check cannot see a failover: there the watcher also compares each slot's master
 * after every slots refresh (see `#checkSlots`).
 */
import type { Cluster, Redis } from 'ioredis';
import type { RestartEvent } from '../Store.js';
import { timeBound } from './RedisContext.js';

/** Watches one client (and, for a Cluster, each of its nodes) for restarts. */
export class RestartWatcher {
  readonly #listeners = new Set<(event: RestartEvent) => void>();
  /** Server label -> run id last seen there. */
  readonly #runIds = new Map<string, string>();
  readonly #timeoutMs: number;
  readonly #detach: (() => void)[] = [];
  /** Cluster: slot -> label of the node that served it at the last slots refresh. */
  #slotMasters: (string | undefined)[] = [];

  constructor(client: Redis | Cluster, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    if (isCluster(client)) {
      for (const node of client.nodes('all')) this.#watch(node, nodeLabel(node));
      const onNode = (node: Redis) => this.#watch(node, nodeLabel(node));
      client.on('+node', onNode);
      this.#detach.push(() => client.off('+node', onNode));
      this.#slotMasters = slotMasters(client);
      const onRefresh = () => this.#checkSlots(client);
      client.on('refresh', onRefresh);
      this.#detach.push(() => client.off('refresh', onRefresh));
    } else {
      this.#watch(client, serverLabel(client));
    }
  }

  /** Adds a listener; returns its remover. */
  on(listener: (event: RestartEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The run id last seen for each server label. */
  runIds(): ReadonlyMap<string, string> {
    return this.#runIds;
  }

  /** Stops watching. */
  close(): void {
    for (const detach of this.#detach.splice(0)) detach();
    this.#listeners.clear();
  }

  #watch(connection: Redis, label: string): void {
    const onReady = () => this.#check(connection, label);
    connection.on('ready', onReady);
    this.#detach.push(() => connection.off('ready', onReady));
    if (connection.status === 'ready') onReady();
  }

  #check(connection: Redis, label: string): void {
    timeBound(connection.info('server'), this.#timeoutMs).then(
      (info) => {
        const runId = parseRunId(info);
        if (runId === undefined) return;
        const previous = this.#runIds.get(label);
        this.#runIds.set(label, runId);
        if (previous === undefined || previous === runId) return;
        this.#emit({ previousRunId: previous, runId, server: label });
      },
      // The next 'ready' checks again; a server that does not answer INFO now is handled by
      // the commands that fail meanwhile.
      () => {},
    );
  }

  /**
   * Cluster, after a slots refresh: slots that moved to another node while their old master
   * serves no slot any more moved as a whole shard, which is a failover (or every slot of a
   * node migrated away: a needless but harmless re-check). The new master may lack the last
   * writes the old one acknowledged (replication is asynchronous), as after a restart.
   */
  #checkSlots(cluster: Cluster): void {
    const now = slotMasters(cluster);
    const serving = new Set(now);
    /** New master -> old master. */
    const promoted = new Map<string, string>();
    for (let slot = 0; slot < now.length; slot++) {
      const before = this.#slotMasters[slot];
      const after = now[slot];
      if (before !== undefined && after !== undefined && before !== after && !serving.has(before)) {
        promoted.set(after, before);
      }
    }
    this.#slotMasters = now;
    for (const [label, old] of promoted) {
      const previousRunId = this.#runIds.get(old) ?? '';
      const node = cluster.nodes('all').find((n) => nodeLabel(n) === label);
      // Told even when the new master's run id cannot be read now: the loss is what matters.
      const told = (runId: string) => {
        if (runId !== '') this.#runIds.set(label, runId);
        this.#emit({ previousRunId, runId, server: label });
      };
      if (node === undefined) {
        told(this.#runIds.get(label) ?? '');
        continue;
      }
      timeBound(node.info('server'), this.#timeoutMs).then(
        (info) => told(parseRunId(info) ?? ''),
        () => told(this.#runIds.get(label) ?? ''),
      );
    }
  }

  #emit(event: RestartEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function parseRunId(info: string): string | undefined {
  return /run_id:([0-9a-f]+)/.exec(info)?.[1];
}

/** Slot -> label of its master, from the client's slots cache (keys are already NAT-mapped). */
function slotMasters(cluster: Cluster): (string | undefined)[] {
  const masters: (string | undefined)[] = [];
  const slots = cluster.slots;
  for (let slot = 0; slot < slots.length; slot++) masters.push(slots[slot]?.[0]);
  return masters;
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

function nodeLabel(node: Redis): string {
  return `${node.options.host ?? 'localhost'}:${node.options.port ?? 6379}`;
}

function serverLabel(client: Redis): string {
  const { sentinels, name, host, port } = client.options;
  if (Array.isArray(sentinels) && sentinels.length > 0) return `sentinel:${name ?? 'mymaster'}`;
  return `${host ?? 'localhost'}:${port ?? 6379}`;
}
