/** A chat node as a real child process; see service-process.ts. */
import type { ServiceProcess } from './service-process';
import { startServiceProcess } from './service-process';

export { REPO_ROOT } from './service-process';
export const TEST_SECRET = 'test-secret';

/** PEM files of a node's RPC mutual TLS (CHAT_RPC_TLS_CA / _CERT / _KEY). */
export interface RpcTlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface NodeProcessOptions {
  readonly databaseUrl: string;
  readonly nodeId?: string;
  /** Fixed port; 0 picks a free one. */
  readonly port?: number;
  /** Extra CHAT_* variables (heartbeats, limits, cluster settings, ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** RPC between nodes over mutual TLS with these files; absent: plain TCP. */
  readonly rpcTls?: RpcTlsFiles;
  readonly startTimeoutMs?: number;
}

export interface NodeProcess extends ServiceProcess {
  readonly nodeId: string;
  /** ws://127.0.0.1:<port>/ws */
  readonly url: string;
  /** The public port over HTTP: `/healthz`, `/readyz`. */
  readonly httpUrl: string;
  /** The internal listener (loopback): `/metrics`, `/v1/stats`, `/v1/owners`. */
  readonly internalUrl: string;
}

/**
 * Every test client connects from 127.0.0.1, thousands a second in the storm tests: the
 * per-address admission limit (a production default for one real client address) is off under
 * jest unless a test sets CHAT_ADMIT_PER_ADDRESS_RATE itself. The node and per-user limits stay.
 */
const ONE_ADDRESS: Readonly<Record<string, string>> = { CHAT_ADMIT_PER_ADDRESS_RATE: '0' };

/**
 * Under jest, nodes write device cursors and fan-out marks often, so that tests which check
 * what acks delete do not wait the production interval (5 s) each time; a test that wants the
 * default passes its own CHAT_ACK_FLUSH_MS. Benchmarks and `npm start` run the defaults.
 */
const TEST_CADENCE: Readonly<Record<string, string>> =
  process.env['JEST_WORKER_ID'] === undefined
    ? {}
    : { CHAT_ACK_FLUSH_MS: '250', CHAT_FANOUT_MARK_MS: '200', ...ONE_ADDRESS };

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const nodeId = options.nodeId ?? 'node-1';
  const service = await startServiceProcess({
    name: nodeId,
    script: 'packages/node/src/main.ts',
    env: {
      DATABASE_URL: options.databaseUrl,
      CHAT_NODE_ID: nodeId,
      CHAT_HOST: '127.0.0.1',
      CHAT_PORT: String(options.port ?? 0),
      CHAT_AUTH_SECRET: TEST_SECRET,
      CHAT_LOG_LEVEL: 'info',
      ...TEST_CADENCE,
      ...(options.rpcTls === undefined
        ? {}
        : {
            CHAT_RPC_TLS_CA: options.rpcTls.ca,
            CHAT_RPC_TLS_CERT: options.rpcTls.cert,
            CHAT_RPC_TLS_KEY: options.rpcTls.key,
          }),
      ...options.env,
    },
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
  });
  return {
    ...service,
    nodeId,
    url: `ws://127.0.0.1:${service.port}/ws`,
    httpUrl: `http://127.0.0.1:${service.port}`,
    internalUrl: internalUrlOf(service),
  };
}

/** The internal listener's URL from the node's `listening` line. */
function internalUrlOf(service: ServiceProcess): string {
  const url = service.listening['internalUrl'];
  if (typeof url !== 'string') throw new Error(`${service.logFile}: no internalUrl when listening`);
  return url;
}
