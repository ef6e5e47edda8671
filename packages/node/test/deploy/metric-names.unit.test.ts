/**
 * Metric names by Prometheus' conventions, read off the `# TYPE` lines of what a node and the
 * registry serve: counters end in `_total`, gauges do not, no `instance` label of our own, and
 * `chat_build_info{version,node_version,protocol}` is 1 on both.
 */
import { RouteTable, buildInfo } from '@chat/cluster';
import { RegistryMetrics } from '@chat/registry';
import { NodeMetrics } from '../../src/metrics';
import { conventionProblems, parsePromText } from './prom-text';

function nodeMetrics(): NodeMetrics {
  const metrics = new NodeMetrics({ nodeId: 'node-1' });
  // Every scrape-time source bound, so that every metric has its series.
  metrics.bind({
    local: () => ({ connections: 3, users: 2 }),
    peers: () => ({
      'node-2': { connected: true, queued: 1, inflight: 0, errors: 0, connects: 1 },
    }),
    drain: () => ({ epoch: 3, total: 10, moved: 4, remaining: 6, ratePerSec: 5, done: false }),
    ring: () => ({ epoch: 3, members: 2, live: 2 }),
  });
  metrics.messagesIn.inc();
  metrics.pushFailed.inc({ provider: 'webpush', reason: 'retry' });
  return metrics;
}

describe('metric names', () => {
  const expectedBuild = (): string => {
    const info = buildInfo();
    return `version="${info.version}",node_version="${info.node_version}",protocol="${info.protocol}"`;
  };

  it('on a node: counters end in _total, gauges do not, no instance label, build info', async () => {
    const text = await nodeMetrics().scrape();
    expect(text).toMatch(/^# TYPE chat_messages_in_total counter$/m);
    expect(text).toMatch(/^# TYPE chat_drain_users gauge$/m);
    expect(conventionProblems(text)).toEqual([]);
    expect(text).toMatch(/^# TYPE chat_build_info gauge$/m);
    expect(parsePromText(text).get(`chat_build_info{${expectedBuild()},node="node-1"}`)).toBe(1);
  });

  it('on the registry: the same, and no instance label on any series', async () => {
    const metrics = new RegistryMetrics();
    metrics.bind(() => RouteTable.empty());
    metrics.countRequest('/v1/route', 200);
    const text = await metrics.scrape();
    expect(text).toMatch(/^# TYPE chat_registry_requests_total counter$/m);
    expect(conventionProblems(text)).toEqual([]);
    expect(parsePromText(text).get(`chat_build_info{${expectedBuild()}}`)).toBe(1);
  });

  it('says what breaks them', () => {
    const bad = [
      '# TYPE chat_moves counter',
      'chat_moves 1',
      '# TYPE chat_drain_total gauge',
      'chat_drain_total{instance="host-1"} 2',
    ].join('\n');
    expect(conventionProblems(bad)).toEqual([
      'counter chat_moves does not end in _total',
      'gauge chat_drain_total ends in _total',
      'series with an instance label: chat_drain_total{instance="host-1"} 2',
    ]);
  });
});
