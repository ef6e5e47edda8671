/**
 * Entry point of a chat node process: configuration from the environment, migrations, store,
 * WebSocket server. SIGTERM and SIGINT shut it down cleanly (connections closed with 1001,
 * acks written, pool closed).
 */
import pino from 'pino';
import { PgChatStore, createDatabase, migrate } from '@chat/store';
import { ChatNode } from './chat-node';
import { systemClock } from './clock';
import { nodeConfigFromEnv } from './config';
import { ConfigError } from './env';
import { startServer } from './server';

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = nodeConfigFromEnv(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const { config } = loaded;
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
  if (loaded.usingDevSecret) {
    log.warn(
      'CHAT_AUTH_SECRET is not set: using the INSECURE development secret "dev-secret". Never do this in production.',
    );
  }

  const db = createDatabase(config.databaseUrl, {
    maxConnections: config.pgPoolMax,
    logger: log.child({ component: 'pg' }),
  });
  await migrate(db);
  const store = new PgChatStore(db, {
    maxMembersPerChat: config.limits.maxMembersPerChat,
    maxBatchSize: config.batchMaxSize,
    logger: log.child({ component: 'store' }),
  });
  const node = new ChatNode({
    config,
    store,
    clock: systemClock,
    log: log.child({ component: 'node' }),
  });
  node.start();
  const server = await startServer(
    node,
    {
      host: config.host,
      port: config.port,
      maxFrameBytes: config.limits.maxFrameBytes,
      maxBufferedBytes: config.maxBufferedBytes,
      listenRetryMs: 60_000,
    },
    log,
  );
  const url = config.publicUrl ?? `ws://${config.host}:${server.port}/ws`;
  log.info({ port: server.port, url }, 'listening');

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close();
    await node.stop();
    await store.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error('chat node failed to start:', err);
  process.exit(1);
});
