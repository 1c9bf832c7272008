/**
 * Detects restarts of the Redis servers a store talks to: after every (re)connection it
 * reads the server's `run_id` (INFO server), which Redis draws at random on each start. A
 * different run id on the same connection means the server restarted (or, behind Sentinel,
 * a replica was promoted) and may have lost recent writes: with no persistence, all of them.
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

  constructor(client: Redis | Cluster, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    if (isCluster(client)) {
      for (const node of client.nodes('all')) this.#watch(node, nodeLabel(node));
      const onNode = (node: Redis) => this.#watch(node, nodeLabel(node));
      client.on('+node', onNode);
      this.#detach.push(() => client.off('+node', onNode));
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
        const runId = /run_id:([0-9a-f]+)/.exec(info)?.[1];
        if (runId === undefined) return;
        const previous = this.#runIds.get(label);
        this.#runIds.set(label, runId);
        if (previous === undefined || previous === runId) return;
        const event: RestartEvent = { previousRunId: previous, runId, server: label };
        for (const listener of this.#listeners) listener(event);
      },
      // The next 'ready' checks again; a server that does not answer INFO now is handled by
      // the commands that fail meanwhile.
      () => {},
    );
  }
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
