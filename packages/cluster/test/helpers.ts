/** Shared bits of the cluster integration tests. */
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../src';
import type { ClusterLogger, NodeInfo } from '../src';

export { startEtcd, startEtcdProxy, waitFor } from '@chat/testkit';
export type { EtcdHandle } from '@chat/testkit';

/** A client with a short call deadline, closed by the returned list's owner. */
export function client(endpoint: string, opened: Etcd3[]): Etcd3 {
  const etcd = createEtcdClient({ endpoints: endpoint, callTimeoutMs: 2_000 });
  opened.push(etcd);
  return etcd;
}

export function nodeInfo(nodeId: string, weight = 1): NodeInfo {
  return {
    nodeId,
    wsUrl: `ws://127.0.0.1:1/${nodeId}`,
    rpcAddress: '127.0.0.1:1',
    weight,
    startedAt: 1_700_000_000_000,
  };
}

/** A logger that remembers messages, so tests can wait for "the watch was cancelled". */
export class RecordingLogger implements ClusterLogger {
  readonly lines: { level: string; msg: string; obj: object }[] = [];
  debug(obj: object, msg = ''): void {
    this.lines.push({ level: 'debug', msg, obj });
  }
  info(obj: object, msg = ''): void {
    this.lines.push({ level: 'info', msg, obj });
  }
  warn(obj: object, msg = ''): void {
    this.lines.push({ level: 'warn', msg, obj });
  }
  error(obj: object, msg = ''): void {
    this.lines.push({ level: 'error', msg, obj });
  }
  has(fragment: string): boolean {
    return this.lines.some((line) => line.msg.includes(fragment));
  }
}
