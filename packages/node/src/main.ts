/**
 * Entry point of a chat node process: configuration from the environment, migrations, store,
 * cluster membership (when CHAT_ETCD_ENDPOINTS is set), WebSocket server. SIGTERM and SIGINT
 * shut it down cleanly: leave the ring, close connections with 1001, write acks, close pools.
 */
// First: an unsupported Node.js stops here, before uWebSockets.js loads.
import './runtime-guard';
import pino from 'pino';
import {
  DEFAULT_ORPHAN_WINDOW_MS,
  MOVING_FRESH_MS,
  PgChatStore,
  PgGroupStore,
  PgPresenceStore,
  PgPrivacyStore,
  PgPushStore,
  PgReceiptStore,
  PgRetentionStore,
  SINGLE_SHARD_SETTINGS,
  userShardCount,
  createDatabase,
  databaseTime,
  migrate,
  readStoreEpoch,
} from '@chat/store';
import { createPushProviders, describePushConfig, parsePushConfig } from '@chat/push';
import type { PushConfig } from '@chat/push';
import { ChatNode } from './chat-node';
import { scheduleCpuProfile } from './cpu-profile';
import { FanoutSweeper } from './fanout-sweeper';
import type { Clock } from './clock';
import { clockFromEnv } from './clock';
import { clusterConfigFromEnv, loggableClusterConfig } from './cluster/cluster-config';
import type { LoadedClusterConfig } from './cluster/cluster-config';
import { ClusterRuntime } from './cluster/cluster-runtime';
import type { LoadedConfig } from './config';
import { loggableConfig, nodeConfigFromEnv } from './config';
import { ConfigError } from '@chat/cluster';
import { startMedia } from './media';
import type { MediaConfig } from './media-config';
import { mediaConfigFromEnv } from './media-config';
import { NodeMetrics } from './metrics';
import type { QueueConfig } from './queue-config';
import { queueConfigFromEnv } from './queue-config';
import { Readiness } from './readiness';
import { RetentionJob, runWhileLeader } from './retention';
import type { RetentionConfig } from './retention-config';
import { retentionConfigFromEnv, retentionDays } from './retention-config';
import { internalListenerFromEnv, internalUrlOf } from './internal-config';
import type { InternalListenerConfig } from './internal-config';
import { startInternalServer } from './internal-server';
import { ListenError, startServer } from './server';
import { StoreEpochWatch } from './store-epoch';
import type { PushOutboxConfig } from './push/push-config';
import { pushOutboxConfigFromEnv } from './push/push-config';

function loadConfig(): {
  node: LoadedConfig;
  cluster: LoadedClusterConfig | undefined;
  media: MediaConfig | undefined;
  retention: RetentionConfig;
  internal: InternalListenerConfig;
  queues: QueueConfig;
  push: { outbox: PushOutboxConfig; providers: PushConfig };
  clock: Clock;
} {
  try {
    const node = nodeConfigFromEnv(process.env);
    return {
      node,
      cluster: clusterConfigFromEnv(process.env, node.config.host),
      media: mediaConfigFromEnv(process.env),
      retention: retentionConfigFromEnv(process.env),
      internal: internalListenerFromEnv(process.env),
      queues: queueConfigFromEnv(process.env),
      push: {
        outbox: pushOutboxConfigFromEnv(process.env),
        providers: parsePushConfig(process.env),
      },
      clock: clockFromEnv(process.env),
    };
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const loaded = loadConfig();
  const { config } = loaded.node;
  const { clock } = loaded;
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
  log.info(
    {
      config: loggableConfig(config),
      cluster: loaded.cluster ? loggableClusterConfig(loaded.cluster.config) : undefined,
      retention: loaded.retention,
      internal: loaded.internal,
      queues: loaded.queues,
      push: { outbox: loaded.push.outbox, providers: describePushConfig(loaded.push.providers) },
    },
    'starting',
  );
  if (loaded.node.usingDevSecret) {
    log.warn(
      'CHAT_AUTH_SECRET is not set: using the INSECURE development secret "dev-secret". Never do this in production.',
    );
  }
  if (loaded.cluster?.usingDevSecret) {
    log.warn(
      'CHAT_CLUSTER_SECRET is not set: using the INSECURE development cluster secret. Never do this in production.',
    );
  }

  // Read at start, on every new connection and every CHAT_EPOCH_CHECK_MS: a restored or failed
  // over database sends every device to resync (store-epoch.ts).
  const storeEpoch = new StoreEpochWatch({
    read: () => readStoreEpoch(db),
    intervalMs: config.epochCheckMs,
    log: log.child({ component: 'store-epoch' }),
  });
  const db = createDatabase(config.databaseUrl, {
    maxConnections: config.pgPoolMax,
    queryTimeoutMillis: config.pgQueryTimeoutMs,
    connectionTimeoutMillis: config.pgConnectTimeoutMs,
    // On Citus every statement of the node stays on one shard, or fails (issue 15).
    sessionSettings: SINGLE_SHARD_SETTINGS,
    logger: log.child({ component: 'pg' }),
    checkConnection: storeEpoch.checkConnection,
    storeEpoch: () => storeEpoch.current,
  });
  await migrate(db);
  log.info({ storeEpoch: await storeEpoch.start() }, 'store epoch');
  const metrics = new NodeMetrics({ nodeId: config.nodeId });
  // On Citus a cursor write becomes one statement per user shard: 32 devices for each.
  const userShards = await userShardCount(db);
  const store = new PgChatStore(db, {
    maxMembersPerChat: config.limits.maxMembersPerChat,
    nodeId: config.nodeId,
    maxBatchSize: config.batchMaxSize,
    maxQueuedSends: loaded.queues.maxQueuedSends,
    maxQueuedConnects: loaded.queues.maxQueuedConnects,
    markIntervalMs: config.fanoutMarkMs,
    // A moving device read instead of registered keeps its last_active: well inside retention.
    movingFreshMs: Math.min(MOVING_FRESH_MS, loaded.retention.retentionMs / 4),
    now: () => clock.now(),
    logger: log.child({ component: 'store' }),
    onBatch: (batch) => metrics.observeBatch(batch),
  });
  if (config.fanoutStaleMs <= DEFAULT_ORPHAN_WINDOW_MS) {
    // A dead node's last statements may still commit within that window; a sweep that ran
    // before them, and acks deleting what it appended, could let a device get an event twice.
    log.warn(
      { fanoutStaleMs: config.fanoutStaleMs, orphanWindowMs: DEFAULT_ORPHAN_WINDOW_MS },
      'CHAT_FANOUT_STALE_MS is not above the orphan window: a device may get an event twice after a node dies',
    );
  }
  const media = loaded.media
    ? await startMedia(
        loaded.media,
        db,
        log.child({ component: 'media' }),
        retentionDays(loaded.retention),
        () => clock.now(),
      )
    : undefined;
  if (media === undefined) log.info('CHAT_S3_ENDPOINT is not set: media attachments are off');
  const cluster = loaded.cluster
    ? await ClusterRuntime.connect(loaded.cluster.config, config.nodeId, clock, log)
    : undefined;
  const pushProviders = createPushProviders(loaded.push.providers);
  if (pushProviders.kinds.length === 0)
    log.info(
      'no push provider is configured (CHAT_PUSH_*): push targets are kept, nothing is sent',
    );
  const node = new ChatNode({
    config,
    store,
    push: {
      store: new PgPushStore(db),
      providers: pushProviders,
      config: loaded.push.outbox,
      events: {
        sent: (provider) => metrics.pushSent.inc({ provider }),
        failed: (provider, reason) => metrics.pushFailed.inc({ provider, reason }),
      },
    },
    ...(userShards === null ? {} : { ackDevicesPerStatement: 32 * userShards }),
    clock,
    log: log.child({ component: 'node' }),
    metrics,
    ...(media ? { media } : {}),
    social: {
      groups: new PgGroupStore(db, { maxMembersPerChat: config.limits.maxMembersPerChat }, store),
      presence: new PgPresenceStore(db),
      receipts: new PgReceiptStore(db),
      privacy: new PgPrivacyStore(db),
    },
    ...(cluster
      ? { ownership: cluster.ownership, fabric: cluster.fabric, presence: cluster.presence }
      : {}),
    storeEpoch: () => storeEpoch.current,
  });
  storeEpoch.onChange(() => {
    const closed = node.storeEpochChanged();
    log.warn({ closed }, 'closed every connection for the new store epoch');
  });
  node.start();
  // Finishes what a previous run of this node owed, then writes its fan-out mark.
  await store.start();
  metrics.bind({
    local: () => node.stats(),
    push: () => node.pushFigures(),
    ...cluster?.metricSources(),
  });
  const readiness = new Readiness({
    clock,
    checkDatabase: () => store.ping(),
    ...(cluster ? { cluster: () => cluster.notReadyReason() } : {}),
  });
  const server = await startServer(
    node,
    {
      host: config.host,
      port: config.port,
      maxFrameBytes: config.limits.maxFrameBytes,
      maxBufferedBytes: config.maxBufferedBytes,
      listenRetryMs: config.listenRetryMs,
    },
    log,
    { readiness },
  );
  const internal = await startInternalServer(
    node,
    { ...loaded.internal, listenRetryMs: config.listenRetryMs },
    log,
    { metrics },
  );
  const internalUrl = internalUrlOf(loaded.internal, internal.port);
  const url = config.publicUrl ?? `ws://${config.host}:${server.port}/ws`;
  await cluster?.start(node, url, internalUrl);
  // Retention cleanup: on the elected node of a cluster, always on a single node.
  const retention = new RetentionJob({
    store: new PgRetentionStore(db),
    ...(media ? { objects: media } : {}),
    config: loaded.retention,
    clock,
    // The database's clock decides what expired, not the clock of whichever node leads.
    passTime: () => databaseTime(db),
    log: log.child({ component: 'retention' }),
    onPass: (report, durationMs) => metrics.observeRetention({ ...report }, durationMs),
    onActive: (active) => metrics.retentionActive.set(active ? 1 : 0),
  });
  // Finishes the fan-out of nodes that stopped owing it: on the same elected node, or here alone.
  const sweeper = new FanoutSweeper({
    store,
    clock,
    log: log.child({ component: 'fanout-sweeper' }),
    intervalMs: config.fanoutSweepMs,
    staleMs: config.fanoutStaleMs,
  });
  // One election for both single-runner jobs: every campaign is etcd traffic, and after a
  // leader dies each failed campaign counts towards the etcd client's circuit breaker.
  let stopJobs: () => Promise<void>;
  if (cluster) {
    stopJobs = runWhileLeader(cluster.elect('retention-cleanup'), [retention, sweeper]);
  } else {
    retention.start();
    sweeper.start();
    stopJobs = async () => {
      await Promise.all([retention.stop(), sweeper.stop()]);
    };
  }
  log.info(
    {
      port: server.port,
      url,
      internalPort: internal.port,
      internalUrl,
      rpcAddress: cluster?.rpcAddress,
    },
    'listening',
  );
  scheduleCpuProfile(process.env['CHAT_CPU_PROFILE'], config.nodeId, log);

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    readiness.markStopping();
    log.info({ signal }, 'shutting down');
    // Leave the ring first and move our users to their new owners, then stop.
    await stopJobs();
    storeEpoch.stop();
    await cluster?.drainAndLeave();
    server.close();
    internal.close();
    await node.stop();
    await pushProviders.close();
    await cluster?.close();
    await store.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  // What an operator can fix (a busy port, an unreachable dependency) is one line; anything
  // else keeps its stack.
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof ListenError || (err instanceof Error && typeof code === 'string')) {
    console.error(`chat node failed to start: ${err.message}`);
  } else {
    console.error('chat node failed to start:', err);
  }
  process.exit(1);
});
