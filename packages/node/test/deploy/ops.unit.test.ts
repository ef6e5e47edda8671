/** Configuration checks, loggable config, readiness caching and metric sources, without I/O. */
import { clusterConfigFromEnv, loggableClusterConfig } from '../../src/cluster/cluster-config';
import { loggableConfig, maskUrlPassword, nodeConfigFromEnv } from '../../src/config';
import { NodeMetrics } from '../../src/metrics';
import { Readiness } from '../../src/readiness';
import { parsePromText, total } from './prom-text';

const base = { DATABASE_URL: 'postgres://chat:pw-123@db:5432/chat' };

describe('configuration checks', () => {
  it('takes postgres URLs (also over a Unix socket) and names anything else', () => {
    expect(
      nodeConfigFromEnv({ DATABASE_URL: 'postgresql:///chat?host=/run/pg' }).config.databaseUrl,
    ).toBe('postgresql:///chat?host=/run/pg');
    expect(() => nodeConfigFromEnv({ DATABASE_URL: 'db:5432/chat' })).toThrow(
      /^DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL, got a db:\/\/ URL$/,
    );
    expect(() => nodeConfigFromEnv({ DATABASE_URL: 'not a url' })).toThrow(
      'DATABASE_URL must be a postgres:// or postgresql:// URL, got something that is not a URL',
    );
  });

  it('checks the public URL and the listen retry', () => {
    expect(() => nodeConfigFromEnv({ ...base, CHAT_PUBLIC_URL: 'http://x/ws' })).toThrow(
      /^CHAT_PUBLIC_URL must be a ws:\/\/ or wss:\/\/ URL/,
    );
    expect(nodeConfigFromEnv({ ...base, CHAT_LISTEN_RETRY_MS: '0' }).config.listenRetryMs).toBe(0);
  });

  it('checks etcd endpoints and the RPC address', () => {
    const env = { CHAT_ETCD_ENDPOINTS: 'http://a:2379, https://b:2379' };
    expect(clusterConfigFromEnv(env, '127.0.0.1')?.config.etcdEndpoints).toEqual([
      'http://a:2379',
      'https://b:2379',
    ]);
    expect(() => clusterConfigFromEnv({ CHAT_ETCD_ENDPOINTS: 'a:2379' }, 'h')).toThrow(
      'CHAT_ETCD_ENDPOINTS must be comma-separated http:// or https:// URLs, got "a:2379"',
    );
    expect(() => clusterConfigFromEnv({ ...env, CHAT_RPC_ADVERTISE: 'node-1' }, 'h')).toThrow(
      /^CHAT_RPC_ADVERTISE must be host:port/,
    );
    expect(
      clusterConfigFromEnv({ ...env, CHAT_RPC_ADVERTISE: 'node-1.chat.svc:7001' }, 'h')?.config
        .rpcAdvertise,
    ).toBe('node-1.chat.svc:7001');
  });

  it('logs configuration without secrets', () => {
    const { config } = nodeConfigFromEnv({ ...base, CHAT_AUTH_SECRET: 'auth-s3cret' });
    const cluster = clusterConfigFromEnv(
      { CHAT_ETCD_ENDPOINTS: 'http://e:2379', CHAT_CLUSTER_SECRET: 'cluster-s3cret' },
      'h',
    )!.config;
    const logged = JSON.stringify([loggableConfig(config), loggableClusterConfig(cluster)]);
    for (const secret of ['auth-s3cret', 'cluster-s3cret', 'pw-123'])
      expect(logged).not.toContain(secret);
    expect(logged).toContain('postgres://chat:***@db:5432/chat');
    expect(maskUrlPassword('postgres://u@h/db?password=x&sslmode=require')).toBe(
      'postgres://u@h/db?password=***&sslmode=require',
    );
  });
});

describe('Readiness', () => {
  function setup(cluster?: () => string | undefined): {
    readiness: Readiness;
    clock: { t: number; now(): number };
    calls: () => number;
    fail: (message: string | undefined) => void;
  } {
    const clock = { t: 1000, now: () => clock.t };
    let count = 0;
    let failure: string | undefined;
    const readiness = new Readiness({
      clock,
      cacheMs: 2000,
      checkDatabase: async () => {
        count++;
        if (failure !== undefined) throw new Error(failure);
      },
      ...(cluster ? { cluster } : {}),
    });
    return { readiness, clock, calls: () => count, fail: (m) => (failure = m) };
  }

  it('caches the database check for a short while', async () => {
    const { readiness, clock, calls, fail } = setup();
    expect(await readiness.check()).toEqual({ ready: true, checks: { postgres: 'ok' } });
    fail('connection refused');
    await readiness.check();
    expect(calls()).toBe(1);
    clock.t += 2000;
    expect(await readiness.check()).toEqual({
      ready: false,
      checks: { postgres: 'connection refused' },
    });
    expect(calls()).toBe(2);
  });

  it('shares one check between concurrent probes, and reports cluster and shutdown', async () => {
    let reason: string | undefined = 'not registered in etcd';
    const { readiness, calls } = setup(() => reason);
    const [a, b] = await Promise.all([readiness.check(), readiness.check()]);
    expect(calls()).toBe(1);
    expect(a).toEqual(b);
    expect(a.ready).toBe(false);
    expect(a.checks.cluster).toBe('not registered in etcd');
    reason = undefined;
    expect((await readiness.check()).ready).toBe(true);
    readiness.markStopping();
    expect(await readiness.check()).toEqual({
      ready: false,
      checks: { node: 'shutting down', cluster: 'ok', postgres: 'ok' },
    });
  });

  it('counts a database that does not answer in time as down', async () => {
    const readiness = new Readiness({
      clock: { now: () => 0 },
      timeoutMs: 10,
      checkDatabase: () => new Promise(() => undefined),
    });
    expect((await readiness.check()).checks.postgres).toBe('no answer within 10 ms');
  });
});

describe('NodeMetrics', () => {
  it('turns cumulative per-peer figures into counters that never go down', async () => {
    const metrics = new NodeMetrics({ nodeId: 'node-1', defaultMetrics: false });
    let errors = 5;
    metrics.bind({
      local: () => ({ connections: 3, users: 2 }),
      peers: () => ({
        'node-2': { connected: true, queued: 7, inflight: 1, errors, connects: 1 },
      }),
    });
    let text = parsePromText(await metrics.scrape());
    expect(text.get('chat_rpc_errors_total{peer="node-2",node="node-1"}')).toBe(5);
    expect(text.get('chat_rpc_queue_depth{peer="node-2",node="node-1"}')).toBe(7);
    expect(total(text, 'chat_connected_devices')).toBe(3);
    expect(total(text, 'chat_drain_done')).toBe(1);
    errors = 2; // the peer's client was replaced: its count restarted
    text = parsePromText(await metrics.scrape());
    expect(total(text, 'chat_rpc_errors_total')).toBe(7);
    metrics.observeBatch({ kind: 'send', size: 12, durationMs: 3, committed: true });
    text = parsePromText(await metrics.scrape());
    expect(total(text, 'chat_pg_batch_size_sum')).toBe(12);
    expect(total(text, 'chat_pg_batch_seconds_count', 'result="committed"')).toBe(1);
  });
});
