/**
 * A loopback TCP proxy in front of etcd (or anything TCP) for fault injection on one client only:
 * `cut()` drops every connection and refuses new ones until `restore()`, while etcd itself and
 * its other clients carry on.
 *
 * @example
 * const proxy = await startEtcdProxy(etcd.endpoint);
 * const view = new Etcd3({ hosts: proxy.endpoint });
 * proxy.cut();     // this client is disconnected
 * proxy.restore(); // and can reconnect
 * await proxy.close();
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

export interface EtcdProxy {
  /** `http://127.0.0.1:<port>`, usable as an etcd endpoint. */
  readonly endpoint: string;
  /** Destroys all proxied connections and refuses new ones. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /** Whether the proxy is currently cut. */
  readonly isCut: boolean;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `target` (`http://host:port`). */
export async function startEtcdProxy(target: string): Promise<EtcdProxy> {
  const url = new URL(target);
  const targetHost = url.hostname;
  const targetPort = Number(url.port);
  const sockets = new Set<Socket>();
  let cut = false;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const server = createServer((downstream) => {
    track(downstream);
    downstream.on('error', () => undefined);
    if (cut) {
      downstream.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    upstream.on('error', () => downstream.destroy());
    downstream.on('error', () => upstream.destroy());
    upstream.once('close', () => downstream.destroy());
    downstream.once('close', () => upstream.destroy());
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    cut: () => {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore: () => {
      cut = false;
    },
    get isCut() {
      return cut;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
