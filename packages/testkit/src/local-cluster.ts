/**
 * `npm start`: the whole system on this machine on embedded defaults (etcd, Postgres, an
 * S3-compatible object store, the registry and N chat nodes) on free loopback ports. Prints the
 * READY line (README "Quick start") when everything is up. Ctrl-C (or SIGTERM) stops everything
 * it started, in order and quietly, and exits 0: the nodes (they drain), the registry, etcd,
 * Postgres, the object storage. The launcher runs in a process group of its own so that the
 * terminal's Ctrl-C reaches it alone (local-supervisor.ts).
 *
 * `--citus`: the storage is a Citus coordinator and two workers (PostgreSQL 15 with the citus
 * extension; scripts/start.sh builds it when missing) instead of the embedded PostgreSQL.
 *
 * `--secure`: TLS on every hop. One throwaway CA (see local-tls.ts) is made first and handed to
 * every piece that needs a certificate; clients reach the registry, the web pages and the nodes
 * through the nginx edge (scripts/start.sh installs nginx), so every URL printed is https/wss.
 */
import { randomBytes } from 'node:crypto';
import { startCitus, topologyOf } from './citus';
import type { CitusTopology } from './citus';
import { DEV_SECRET_NOTICE, LocalArgsError, parseLocalArgs } from './local-args';
import type { LocalArgs } from './local-args';
import { TestCluster } from './cluster';
import { createLocalPush } from './local-push';
import { isSupervised, onStopRequest, superviseThisScript } from './local-supervisor';
import { LOOPBACK_NAMES, createLocalTls } from './local-tls';
import type { LocalTls } from './local-tls';
import { startPostgres } from './postgres';
import { startS3 } from './s3';
import { testToken } from './raw-client';

const DEV_SECRET = 'dev-secret';

/** Where the cluster's database is made, and how to stop it. */
interface LocalStorage {
  readonly where: { readonly adminUrl: string } | { readonly citus: CitusTopology };
  readonly description: string;
  close(): Promise<void>;
}

async function startStorage(citus: boolean, tls: LocalTls | undefined): Promise<LocalStorage> {
  if (!citus) {
    console.log('starting Postgres (embedded)...');
    if (tls === undefined) {
      const pg = await startPostgres();
      return {
        where: { adminUrl: pg.url },
        description: 'embedded PostgreSQL',
        close: () => pg.close(),
      };
    }
    // Every connection (nodes, migrations, the launcher's own) verifies the server's
    // certificate and name against the local CA.
    const pg = await startPostgres({ tls: await tls.ca.issue('postgres', LOOPBACK_NAMES) });
    return {
      where: { adminUrl: `${pg.url}?sslmode=verify-full&sslrootcert=${tls.caFile}` },
      description: 'embedded PostgreSQL, TLS verified against the local CA',
      close: () => pg.close(),
    };
  }
  console.log('starting Citus: a coordinator and two workers (PostgreSQL 15)...');
  const cluster = await startCitus({ workers: 2 });
  const topology = topologyOf(cluster);
  return {
    where: { citus: topology },
    description: `Citus coordinator; workers on ports ${topology.workerPorts.join(', ')}`,
    close: () => cluster.close(),
  };
}

/** What the launcher started, stopped in the reverse order, each step quietly. */
class StartedPieces {
  private readonly pieces: { readonly name: string; readonly close: () => Promise<void> }[] = [];

  add(name: string, close: () => Promise<void>): void {
    this.pieces.push({ name, close });
  }

  /** Stops every piece, the last started first; false when one failed (said in one line). */
  async closeAll(): Promise<boolean> {
    let ok = true;
    for (const piece of this.pieces.splice(0).reverse()) {
      try {
        await piece.close();
      } catch (err) {
        ok = false;
        console.error(`stopping ${piece.name} failed: ${(err as Error).message}`);
      }
    }
    return ok;
  }
}

async function main(): Promise<void> {
  const args = parseLocalArgs(process.argv.slice(2));
  const started = new StartedPieces();
  let ready = false;
  let stopRequested = false;
  const stop = async (): Promise<never> => {
    console.log('\nstopping: nodes (drain), registry, etcd, Postgres, object storage...');
    const ok = await started.closeAll();
    console.log(ok ? 'stopped' : 'stopped, with the failures above');
    process.exit(ok ? 0 : 1);
  };
  // A stop asked for while starting waits for the step under way, then stops what started.
  onStopRequest(() => {
    stopRequested = true;
    if (ready) void stop();
  });
  const checkpoint = async (): Promise<void> => {
    if (stopRequested) await stop();
  };
  try {
    await run(args, started, checkpoint);
  } catch (err) {
    if (stopRequested) await stop();
    await started.closeAll();
    throw err;
  }
  ready = true;
  await checkpoint();
}

async function run(
  args: LocalArgs,
  started: StartedPieces,
  checkpoint: () => Promise<void>,
): Promise<void> {
  const tls = args.secure ? await createLocalTls() : undefined;
  if (tls !== undefined) {
    started.add('the local CA', () => tls.close());
    console.log(`--secure: local CA ${tls.caFile}`);
  }
  await checkpoint();
  console.log('starting object storage (s3rver, embedded)...');
  const s3 = await startS3();
  started.add('object storage', () => s3.close());
  await checkpoint();
  const pg = await startStorage(args.citus, tls);
  started.add('Postgres', () => pg.close());
  await checkpoint();
  console.log(
    `starting etcd, the registry and ${args.nodes} node(s), ${args.members} of them ring members...`,
  );
  const operatorToken = randomBytes(24).toString('base64url');
  // Web Push is on in local runs, with a VAPID key pair made for this run.
  const push = await createLocalPush();
  started.add('the Web Push keys', () => push.close());
  const cluster = await TestCluster.start({
    nodeEnv: push.nodeEnv,
    nodes: args.nodes,
    members: args.members,
    ...pg.where,
    leaseTtlSec: 10,
    // Empty: nodes fall back to the dev secret and warn about it; the registry mints dev tokens.
    authSecret: '',
    devTokens: true,
    web: true,
    // A fresh one per run, printed below in the dashboard's URL: the dashboard is for operators.
    operatorToken,
    s3,
    // --secure: etcd too wants TLS client certificates and a password (secure-etcd.ts).
    ...(tls !== undefined ? { tls, edge: true, secureEtcd: true } : {}),
  });
  // Nodes first (they drain), then the registry, etcd and the cluster's database.
  let stopping = false;
  started.add('the cluster', () => {
    stopping = true;
    return cluster.close();
  });
  await checkpoint();
  for (const node of cluster.nodes.values()) {
    node.exited.then(
      (code) => {
        if (!stopping) console.error(`${node.nodeId} exited (${code}); its log: ${node.logFile}`);
      },
      () => undefined,
    );
  }

  const alice = testToken('alice', 'laptop', 24 * 3600, DEV_SECRET);
  const aliceNode = await cluster.route('alice');
  console.log(DEV_SECRET_NOTICE);
  console.log(
    `registry: ${cluster.publicUrl}   (GET /v1/route?user=alice, /v1/ring, /v1/dev/token?user=&device=)`,
  );
  if (tls !== undefined && cluster.edge !== undefined) {
    console.log(
      `tls:      edge ${cluster.edge.url} (nginx, log ${cluster.edge.logFile}) routes /n/<node>/ws to each node; CA ${tls.caFile}`,
    );
    console.log(
      `          trust it: NODE_EXTRA_CA_CERTS=${tls.caFile} for Node, or import it in the browser`,
    );
  }
  for (const node of cluster.nodes.values())
    console.log(`${node.nodeId}:   ${node.url}   (log: ${node.logFile})`);
  console.log(`postgres: ${cluster.db.url}   (${pg.description})`);
  console.log(
    `s3:       ${s3.endpoint}   (bucket chat-media, access key ${s3.accessKey}, data in ${s3.directory})`,
  );
  console.log(
    `operator: export ${etcdExports(cluster.etcdAccess.env)} CHAT_ETCD_PREFIX=${cluster.prefix}`,
  );
  const wscatCa = tls !== undefined ? `--ca ${tls.caFile} ` : '';
  console.log(`try it:   npx wscat ${wscatCa}-s chat.v1.json -c '${aliceNode.url}?token=${alice}'`);
  console.log(`          then send {"t":"createChat","id":1,"members":["bob"]}`);
  console.log('');
  console.log(`web chat:  ${cluster.publicUrl}/chat/   (two windows: sign in as alice and as bob)`);
  console.log(
    `dashboard: ${cluster.publicUrl}/dashboard/?token=${operatorToken}   (ring, nodes, drains, live; the token is CHAT_OPERATOR_TOKEN)`,
  );
  console.log(`metrics:  ${cluster.registryInternalUrl}/metrics   (internal listener, loopback)`);
  console.log(`push:     Web Push on, VAPID public key ${push.vapidPublicKey} (made for this run)`);
  console.log(
    `          "Notify me" on the chat page subscribes at the browser's push service (on the internet)`,
  );
  console.log(
    `READY registry=${cluster.publicUrl} etcd=${cluster.etcd.endpoint} prefix=${cluster.prefix}`,
  );
}

if (isSupervised()) {
  main().catch((err: unknown) => {
    if (err instanceof LocalArgsError) {
      console.error(`npm start: ${err.message}`);
      process.exit(err.exitCode);
    }
    console.error('local cluster failed to start:', err);
    process.exit(1);
  });
} else {
  superviseThisScript();
}

/** `NAME=value ...` of the CHAT_ETCD_* settings chatctl needs (credentials too, with --secure). */
function etcdExports(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}
