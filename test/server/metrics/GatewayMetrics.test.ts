// The upstream-labelled counters drop the series of instances that left, also when the
// count comes in after the instance left (a request in flight when it was deregistered,
// an ejection event of an endpoint just removed): the scrape prunes them, as it does for
// requests_total, so a gateway whose instances are renamed on every deploy does not grow
// its series for ever.
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../server/metrics/GatewayMetrics.js';

async function scrape(m: GatewayMetrics): Promise<string> {
  return m.registry.metrics();
}

describe('GatewayMetrics upstream series', () => {
  it('a failure or an ejection counted after the instance left is gone at the next scrape', async () => {
    const m = new GatewayMetrics();
    let live = new Set(['a', 'b']);
    m.trackUpstreams(() => live);
    m.upstreamFailures.labels('r', 'a', 'timeout').inc();
    m.upstreamFailures.labels('r', 'b', 'reset').inc();
    m.ejections.labels('svc', 'b').inc();
    let text = await scrape(m);
    expect(text).toMatch(/^ringway_gateway_upstream_failures_total\{route="r",upstream="b",reason="reset"\} 1$/m);
    expect(text).toMatch(/^ringway_gateway_ejections_total\{service="svc",upstream="b"\} 1$/m);

    // b leaves; the cleanup on that change runs; then a late failure and ejection of b arrive.
    live = new Set(['a']);
    await m.forgetUpstreams(live);
    m.upstreamFailures.labels('r', 'b', 'timeout').inc();
    m.ejections.labels('svc', 'b').inc();
    text = await scrape(m);
    expect(text).not.toMatch(/upstream="b"/);
    expect(text).toMatch(/^ringway_gateway_upstream_failures_total\{route="r",upstream="a",reason="timeout"\} 1$/m);

    // b comes back: its series start again from zero.
    live = new Set(['a', 'b']);
    m.upstreamFailures.labels('r', 'b', 'timeout').inc();
    text = await scrape(m);
    expect(text).toMatch(/^ringway_gateway_upstream_failures_total\{route="r",upstream="b",reason="timeout"\} 1$/m);
  });

  it('without a live-upstream source nothing is pruned at the scrape', async () => {
    const m = new GatewayMetrics();
    m.upstreamFailures.labels('r', 'x', 'status').inc();
    expect(await scrape(m)).toMatch(
      /^ringway_gateway_upstream_failures_total\{route="r",upstream="x",reason="status"\} 1$/m,
    );
  });
});
