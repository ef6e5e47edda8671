/**
 * The edge sync process for deployments: runs next to nginx, follows cluster membership in etcd
 * and rewrites nginx's include file (CHAT_EDGE_CONF) and reloads nginx (CHAT_EDGE_RELOAD) when
 * nodes come and go. nginx itself terminates TLS; this process never sees client traffic.
 */
import { execFile } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createEtcdClient, etcdSecurityFromEnv, watchCluster } from '@chat/cluster';
import pino from 'pino';
import { edgeConfigFromEnv } from './config';
import { EdgeSync } from './edge-sync';

const run = promisify(execFile);

async function main(): Promise<void> {
  const config = edgeConfigFromEnv(process.env);
  const log = pino({ level: config.logLevel, base: { component: 'edge' } });
  log.info({ config }, 'starting');
  const etcd = createEtcdClient({
    endpoints: config.etcdEndpoints,
    security: etcdSecurityFromEnv(process.env, config.etcdEndpoints),
  });
  const view = watchCluster({ etcd, prefix: config.prefix, logger: log.child({ c: 'view' }) });
  await view.ready();
  const sync = new EdgeSync({
    view,
    site: config.site,
    // Written aside and renamed, so that nginx never reads half a file.
    write: async (text) => {
      await writeFile(`${config.confFile}.tmp`, text);
      await rename(`${config.confFile}.tmp`, config.confFile);
    },
    reload: async () => {
      await run('sh', ['-c', config.reloadCommand]);
    },
    log,
  });
  await sync.refresh();
  const stop = sync.follow();
  const shutdown = async (): Promise<void> => {
    stop();
    await view.close();
    etcd.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((err: unknown) => {
  console.error('edge sync failed to start:', err);
  process.exit(1);
});
