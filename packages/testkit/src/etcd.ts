/**
 * Starts a private etcd (the real `etcd` binary, Debian's `etcd-server` package) on free
 * loopback ports, a single member or a cluster of several (`startEtcdCluster`), and controls
 * each member for fault injection: stop and start it again on the same ports and data, pause it
 * with SIGSTOP, close it for good.
 *
 * @example
 * const etcd = await startEtcd();
 * const client = new Etcd3({ hosts: etcd.endpoint });
 * await etcd.stop();   // calls now fail (kill() does the same with SIGKILL)
 * await etcd.start();  // same data, same endpoint
 * await etcd.pause();  // connections stay open but nothing answers
 * await etcd.resume();
 * await etcd.close();  // kills it and deletes its data
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdHandle {
  /** Client URL, e.g. `http://127.0.0.1:23791` (`https://` with the `tls` option). */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** Temporary directory holding `data/` and `etcd.log`. */
  readonly dir: string;
  readonly logFile: string;
  /** Stops etcd (SIGTERM, then SIGKILL after the deadline), keeping its data. */
  stop(): Promise<void>;
  /** Kills etcd with SIGKILL (a crash: no goodbye to its peers), keeping its data. */
  kill(): Promise<void>;
  /** Starts a stopped etcd again on the same ports and data, and waits until it is healthy. */
  start(): Promise<void>;
  /** Freezes the process with SIGSTOP: connections stay open, nothing is answered. */
  pause(): Promise<void>;
  /** Undoes pause() with SIGCONT. */
  resume(): Promise<void>;
  /** Kills etcd and deletes its directory. Safe to call more than once. */
  close(): Promise<void>;
}

export interface EtcdOptions {
  /** Path of the etcd binary (default `etcd`, from PATH). */
  readonly binary?: string;
  /** Deadline for a start to become healthy, ms (default 30 000). */
  readonly startTimeoutMs?: number;
  /** Extra command-line flags, e.g. `['--auto-compaction-retention=1']`. */
  readonly extraArgs?: readonly string[];
  /**
   * Serve clients over TLS with this certificate, and accept only clients whose certificate
   * the CA signed (`--client-cert-auth`). The certificate must also be valid for client auth:
   * the harness checks health with it.
   */
  readonly tls?: EtcdTlsFiles;
}

/** PEM files of an etcd served over TLS. */
export interface EtcdTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

const LOG_TAIL_CHARS = 4_000;
const STOP_TIMEOUT_MS = 10_000;

/** Starts a fresh etcd on free loopback ports; resolves once it answers `/health`. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdHandle> {
  const [clientPort = 0, peerPort = 0] = await freePorts(2);
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  return launchMember(options, {
    name: 't',
    clientPort,
    peerPort,
    initialCluster: `t=${peerUrl}`,
    // A single member elects itself after one election timeout: keep it short for fast starts.
    timing: ['--heartbeat-interval=20', '--election-timeout=200'],
  });
}

/** A multi-member etcd: every member is an {@link EtcdHandle} that can be stopped on its own. */
export interface EtcdCluster {
  /** Client URLs of every member, in member order. */
  readonly endpoints: readonly string[];
  /** The same joined with commas, as CHAT_ETCD_ENDPOINTS takes them. */
  readonly endpoint: string;
  readonly members: readonly EtcdHandle[];
  /** Kills every member and deletes their data. Safe to call more than once. */
  close(): Promise<void>;
}

export interface EtcdClusterOptions extends Omit<EtcdOptions, 'tls'> {
  /** How many members (default 3: a majority of 2 survives one loss). */
  readonly members?: number;
}

/**
 * Starts an etcd cluster of `members` processes on free loopback ports, each with its own
 * temporary data directory; resolves once every member answers `/health` (there is a leader).
 *
 * @example
 * const etcd = await startEtcdCluster({ members: 3 });
 * await etcd.members[0]!.stop(); // one lost: the other two still have quorum
 * await etcd.members[1]!.stop(); // quorum lost: writes and linearizable reads fail
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 3;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`members must be a whole number >= 1, got ${count}`);
  }
  const ports = await freePorts(2 * count);
  const specs = Array.from({ length: count }, (_, i) => ({
    name: `m${i + 1}`,
    clientPort: ports[2 * i] ?? 0,
    peerPort: ports[2 * i + 1] ?? 0,
  }));
  const initialCluster = specs.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  // Members must start together: none is healthy before a majority of them can elect a leader.
  // Longer timeouts than a single member's, so a busy machine does not cause needless elections.
  const started = await Promise.allSettled(
    specs.map((spec) =>
      launchMember(options, {
        ...spec,
        initialCluster,
        timing: ['--heartbeat-interval=50', '--election-timeout=500'],
      }),
    ),
  );
  const members = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const close = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.close()));
  };
  if (failed !== undefined) {
    await close();
    throw failed.reason;
  }
  const endpoints = Object.freeze(members.map((m) => m.endpoint));
  return { endpoints, endpoint: endpoints.join(','), members, close };
}

/** A single etcd seen as a cluster of one, for code that handles both. */
export function clusterOfOne(member: EtcdHandle): EtcdCluster {
  return {
    endpoints: Object.freeze([member.endpoint]),
    endpoint: member.endpoint,
    members: Object.freeze([member]),
    close: () => member.close(),
  };
}

/** Where one member listens and which cluster it starts in. */
interface MemberSpec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `--initial-cluster`: `name=peerUrl` of every member. */
  readonly initialCluster: string;
  /** Raft heartbeat and election timeout flags. */
  readonly timing: readonly string[];
}

async function launchMember(options: EtcdOptions, member: MemberSpec): Promise<EtcdHandle> {
  const binary = options.binary ?? 'etcd';
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const { clientPort, peerPort } = member;
  const dir = mkdtempSync(join(tmpdir(), 'chat-etcd-'));
  const logFile = join(dir, 'etcd.log');
  const tls = options.tls;
  const endpoint = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    `--name=${member.name}`,
    `--data-dir=${join(dir, 'data')}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${member.initialCluster}`,
    '--initial-cluster-state=new',
    ...member.timing,
    '--logger=zap',
    '--log-outputs=stderr',
    '--log-level=warn',
    ...(tls === undefined
      ? []
      : [
          `--cert-file=${tls.certFile}`,
          `--key-file=${tls.keyFile}`,
          `--trusted-ca-file=${tls.caFile}`,
          '--client-cert-auth',
        ]),
    ...(options.extraArgs ?? []),
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let closed = false;
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const logTail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-LOG_TAIL_CHARS);
    } catch {
      return '';
    }
  };

  const spawnEtcd = async (): Promise<void> => {
    if (closed) throw new Error('etcd: already closed');
    if (child) throw new Error('etcd: already running');
    const log = openSync(logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(binary, args, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    child = proc;
    let exitError: Error | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('error', (err) => {
        exitError = err;
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once('exit', (code, signal) => {
        exitError ??= new Error(`etcd exited (code ${code}, signal ${signal})`);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (exitError) {
        throw new Error(
          `etcd failed to start: ${exitError.message}\n--- etcd log ---\n${logTail()}`,
        );
      }
      if (await (tls === undefined ? healthy(endpoint) : healthyOverTls(endpoint, tls))) return;
      if (Date.now() >= deadline) {
        proc.kill('SIGKILL');
        throw new Error(
          `etcd not healthy within ${startTimeoutMs} ms\n--- etcd log ---\n${logTail()}`,
        );
      }
      await delay(50);
    }
  };

  const stopEtcd = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGCONT'); // a paused process would never act on SIGTERM
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const signal = async (name: NodeJS.Signals): Promise<void> => {
    if (!child) throw new Error(`etcd: not running, cannot send ${name}`);
    child.kill(name);
  };

  try {
    await spawnEtcd();
  } catch (err) {
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    endpoint,
    clientPort,
    peerPort,
    dir,
    logFile,
    stop: () => stopEtcd('SIGTERM'),
    kill: () => stopEtcd('SIGKILL'),
    start: spawnEtcd,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    close: async () => {
      if (closed) return;
      closed = true;
      await stopEtcd('SIGKILL');
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = (await res.json()) as { health?: unknown };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

/** `/health` over TLS, presenting the given certificate as the client's. */
function healthyOverTls(endpoint: string, tls: EtcdTlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet(
      `${endpoint}/health`,
      {
        ca: readFileSync(tls.caFile),
        cert: readFileSync(tls.certFile),
        key: readFileSync(tls.keyFile),
        // The certificate names 127.0.0.1 and localhost; an IP as SNI is not allowed.
        servername: 'localhost',
        timeout: 1_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Distinct free loopback ports, found by binding port 0 (held together so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(
    servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
  return ports;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
