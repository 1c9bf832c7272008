/**
 * Builds the strategy a balancer's options name.
 */

import { LeastConnectionsStrategy } from './LeastConnections.js';
import { MaglevStrategy, type ResolvedMaglevStrategyOptions } from './Maglev.js';
import type { ResolvedEwmaOptions } from './PeakEwma.js';
import { PeakEwmaStrategy } from './PeakEwma.js';
import { PowerOfTwoChoicesStrategy } from './PowerOfTwoChoices.js';
import { RandomStrategy } from './Random.js';
import { type ResolvedRingHashOptions, RingHashStrategy } from './RingHash.js';
import { RoundRobinStrategy } from './RoundRobin.js';
import type { Strategy, StrategyName } from './Strategy.js';
import { WeightedRandomStrategy } from './WeightedRandom.js';
import { WeightedRoundRobinStrategy } from './WeightedRoundRobin.js';

/** What a strategy may need from the balancer's options. */
export interface StrategySettings {
  readonly strategy: StrategyName;
  readonly ewma: ResolvedEwmaOptions;
  readonly ringHash: ResolvedRingHashOptions;
  readonly maglev: ResolvedMaglevStrategyOptions;
  readonly random: () => number;
  readonly now: () => number;
}

/** A new, empty strategy of the named kind. */
export function createStrategy(settings: StrategySettings): Strategy {
  const { random } = settings;
  switch (settings.strategy) {
    case 'round-robin':
      return new RoundRobinStrategy();
    case 'weighted-round-robin':
      return new WeightedRoundRobinStrategy();
    case 'random':
      return new RandomStrategy(random);
    case 'weighted-random':
      return new WeightedRandomStrategy(random);
    case 'least-connections':
      return new LeastConnectionsStrategy();
    case 'p2c':
      return new PowerOfTwoChoicesStrategy(random);
    case 'ewma':
      return new PeakEwmaStrategy(settings.ewma, random, settings.now);
    case 'ring-hash':
      return new RingHashStrategy(settings.ringHash, random);
    case 'maglev':
      return new MaglevStrategy(settings.maglev, random);
  }
}
