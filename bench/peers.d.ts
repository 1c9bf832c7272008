// Types for the untyped peer packages the benches and compatibility tests compare against.

declare module 'hashring' {
  type Servers = string | string[] | Record<string, number | { weight?: number; vnodes?: number }>;
  interface HashRingOptions {
    'vnode count'?: number;
    'max cache size'?: number;
    compatibility?: 'hash_ring' | 'ketama';
    replicas?: number;
  }
  class HashRing {
    constructor(servers?: Servers, algorithm?: string, options?: HashRingOptions);
    get(key: string): string;
    range(key: string, size?: number, unique?: boolean): string[];
    add(servers: Servers): this;
    remove(server: string): this;
    has(server: string): boolean;
    reset(): this;
    end(): this;
    ring: { value: number; server: string }[];
  }
  export default HashRing;
}

declare module 'consistent-hash' {
  interface ConsistentHashOptions {
    range?: number;
    weight?: number;
    distribution?: 'random' | 'uniform';
    orderNodes?: (nodes: string[]) => string[];
    controlPoints?: number;
  }
  class ConsistentHash {
    constructor(options?: ConsistentHashOptions);
    add(node: string, weight?: number, points?: number[]): this;
    remove(node: string): this;
    get(name: string, count?: number): string | null;
    getPoints(node: string): number[];
  }
  export default ConsistentHash;
}
