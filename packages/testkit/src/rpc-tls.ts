/** RPC TLS of local runs and tests: a node certificate from the local CA, for the loopback names. */
import type { LocalTls } from './local-tls';
import type { RpcTlsFiles } from './node-process';

/**
 * Issues `nodeId`'s RPC certificate from the local CA (one per node, so a test can tell them
 * apart in a handshake) and returns the files a node process takes.
 *
 * @example
 * await startNodeProcess({ databaseUrl, nodeId, rpcTls: await issueRpcTls(tls, nodeId) });
 */
export async function issueRpcTls(tls: LocalTls, nodeId: string): Promise<RpcTlsFiles> {
  const files = await tls.issueFiles(`rpc-${nodeId}`);
  return { ca: tls.caFile, cert: files.cert, key: files.key };
}
