/**
 * The TLS edge of a secure local run and of the TLS tests: Debian's nginx (installed by
 * `scripts/ensure-nginx.sh`) on a free loopback port, with a certificate from the local CA,
 * configured and reloaded from cluster membership by @chat/edge's EdgeSync. Clients reach the
 * registry at `https://127.0.0.1:<port>/` and node N at `wss://127.0.0.1:<port>/n/N/ws`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { createEtcdClient, watchCluster } from '@chat/cluster';
import type { EtcdSecurity } from '@chat/cluster';
import { EdgeSync, renderStandaloneNginx } from '@chat/edge';
import { freePort } from './free-port';
import type { LocalTls } from './local-tls';
import { waitFor } from './wait';

export interface EdgeOptions {
  readonly tls: LocalTls;
  /** The registry's plaintext base URL, for everything that is not a node route. */
  readonly registryUrl: string;
  /** Where membership is read from: one etcd client URL, or every member's. */
  readonly etcdEndpoint: string | readonly string[];
  /** etcd credentials and TLS, when the cluster's etcd wants them (ClusterOptions.secureEtcd). */
  readonly etcdSecurity?: EtcdSecurity;
  readonly prefix: string;
  /** The https port (default: a free one). */
  readonly port?: number;
}

export interface EdgeHandle {
  /** `https://127.0.0.1:<port>`: the value of CHAT_EDGE_URL. */
  readonly url: string;
  readonly port: number;
  /** The edge's certificate (PEM file), issued by the local CA for 127.0.0.1 and localhost. */
  readonly certFile: string;
  /** nginx's error log (startup, reloads, refused upstreams). */
  readonly logFile: string;
  /** Node ids the configuration nginx runs routes. */
  routedNodes(): readonly string[];
  close(): Promise<void>;
}

/** The nginx binary: NGINX_PATH, else on PATH, else Debian's /usr/sbin/nginx. */
export function nginxPath(): string {
  const candidates = [
    process.env.NGINX_PATH,
    ...(process.env.PATH ?? '').split(':').map((dir) => path.join(dir, 'nginx')),
    '/usr/sbin/nginx',
  ];
  const found = candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
  if (found === undefined)
    throw new Error('no nginx found: run scripts/ensure-nginx.sh (npm start -- --secure does)');
  return found;
}

/** Resolves once something accepts a TLS handshake on the port (trusting the local CA). */
function tlsHandshake(port: number, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

/** Starts nginx and the sync; the caller closes the handle. */
export async function startEdge(options: EdgeOptions): Promise<EdgeHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chat-edge-'));
  // nginx started as root runs its workers as nobody: they must be able to reach their temp dirs.
  await chmod(dir, 0o755);
  const siteFile = path.join(dir, 'site.conf');
  const confFile = path.join(dir, 'nginx.conf');
  const logFile = path.join(dir, 'error.log');
  const port = options.port ?? (await freePort());
  const cert = await options.tls.issueFiles('edge');
  const etcd = createEtcdClient({
    endpoints: options.etcdEndpoint,
    ...(options.etcdSecurity !== undefined ? { security: options.etcdSecurity } : {}),
  });
  const view = watchCluster({ etcd, prefix: options.prefix });
  let nginx: ChildProcess | undefined;
  let stopFollowing = (): void => undefined;

  const close = async (): Promise<void> => {
    stopFollowing();
    await view.close();
    etcd.close();
    if (nginx !== undefined && nginx.exitCode === null && nginx.signalCode === null) {
      const exited = new Promise((resolve) => nginx!.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await view.ready();
    const sync = new EdgeSync({
      view,
      site: {
        listen: `127.0.0.1:${port}`,
        certFile: cert.cert,
        keyFile: cert.key,
        registryUrl: options.registryUrl,
      },
      write: (text) => writeFile(siteFile, text),
      // SIGHUP: the master re-reads the configuration and replaces its workers gracefully.
      reload: async () => void nginx?.kill('SIGHUP'),
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    await sync.refresh(); // the site file nginx starts with
    await writeFile(confFile, renderStandaloneNginx(siteFile, dir));
    const started = spawn(nginxPath(), ['-p', dir, '-c', confFile, '-e', logFile], {
      stdio: 'ignore',
    });
    nginx = started;
    const ca = options.tls.ca.cert;
    await waitFor(async () => {
      if (started.exitCode !== null)
        throw new Error(`nginx exited (${started.exitCode}): ${await readFile(logFile, 'utf8')}`);
      await tlsHandshake(port, ca);
    }, 15_000);
    stopFollowing = sync.follow();
    return {
      url: `https://127.0.0.1:${port}`,
      port,
      certFile: cert.cert,
      logFile,
      routedNodes: () => sync.routedNodes,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
