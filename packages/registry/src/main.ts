/**
 * Entry point of a registry process. Reads CHAT_ETCD_ENDPOINTS, CHAT_ETCD_PREFIX,
 * CHAT_REGISTRY_HOST, CHAT_REGISTRY_PORT, CHAT_REGISTRY_INTERNAL_HOST and CHAT_REGISTRY_INTERNAL_PORT
 * (`/metrics`), CHAT_OPERATOR_TOKEN and CHAT_DASHBOARD_STREAMS_PER_ADDRESS (the dashboard),
 * CHAT_DEV_TOKENS (1 to enable the dev token endpoint,
 * signed with CHAT_AUTH_SECRET or the dev secret), CHAT_REGISTRY_WEB (1 to serve the web chat
 * client at /chat/ and the cluster dashboard at /dashboard/), CHAT_PUSH_WEBPUSH_VAPID_PUBLIC_KEY
 * (the nodes' Web Push key, handed to the chat page), CHAT_LOG_LEVEL.
 */
import { hostname } from 'node:os';
import {
  ConfigError,
  createEtcdClient,
  describeEtcdSecurity,
  parseTrustedProxies,
  watchCluster,
} from '@chat/cluster';
import pino from 'pino';
import { registryConfigFromEnv } from './config';
import { RegistryMetrics } from './metrics';
import { startRegistry } from './server';

async function main(): Promise<void> {
  let config;
  try {
    config = registryConfigFromEnv(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`configuration error: ${err.message}`);
    process.exit(2);
  }
  const instance = process.env.HOSTNAME || hostname();
  const log = pino({ level: config.logLevel, base: { component: 'registry', instance } });
  log.info(
    {
      config: {
        ...config,
        devTokenSecret: config.devTokenSecret === undefined ? undefined : '[redacted]',
        operatorToken: config.operatorToken === undefined ? undefined : '[redacted]',
        etcdSecurity: describeEtcdSecurity(config.etcdSecurity),
      },
    },
    'starting',
  );
  if (config.devTokenSecret !== undefined) {
    log.warn(
      'CHAT_DEV_TOKENS is on: anyone who can reach the registry can mint device tokens. Local runs only.',
    );
  }
  const etcd = createEtcdClient({
    endpoints: config.etcdEndpoints,
    security: config.etcdSecurity,
  });
  const view = watchCluster({
    etcd,
    prefix: config.prefix,
    logger: log.child({ component: 'cluster-view' }),
  });
  await view.ready();
  // Loaded only when on. The pages prebuilt in the image (npm run build:web) are served as they
  // are; without them, or after an edit to their sources, they are bundled now (esbuild).
  const web = config.web ? await (await import('@chat/web')).webAssets() : undefined;
  if (web !== undefined) log.info({ pages: web.source, assets: web.assets.size }, 'web pages');
  const registry = await startRegistry({
    view,
    host: config.host,
    port: config.port,
    log,
    metrics: new RegistryMetrics(),
    internalHost: config.internalHost,
    internalPort: config.internalPort,
    dashboardStreamsPerAddress: config.dashboardStreamsPerAddress,
    trustedProxies: parseTrustedProxies('CHAT_TRUSTED_PROXIES', config.trustedProxies),
    ...(config.operatorToken !== undefined ? { operatorToken: config.operatorToken } : {}),
    ...(web !== undefined ? { web: web.assets } : {}),
    ...(config.devTokenSecret ? { devTokenSecret: config.devTokenSecret } : {}),
    ...(config.edgeOrigin !== undefined ? { edgeOrigin: config.edgeOrigin } : {}),
    ...(config.webPushPublicKey !== undefined ? { webPushPublicKey: config.webPushPublicKey } : {}),
  });
  if (config.web && config.operatorToken === undefined) {
    log.warn(
      'CHAT_OPERATOR_TOKEN is unset: the dashboard is open to anyone who reaches the registry',
    );
  }
  log.info(
    { port: registry.port, url: registry.url, internalUrl: registry.internalUrl },
    'listening',
  );
  const shutdown = async (): Promise<void> => {
    registry.markStopping();
    await registry.close();
    await view.close();
    etcd.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

main().catch((err: unknown) => {
  console.error('registry failed to start:', err);
  process.exit(1);
});
