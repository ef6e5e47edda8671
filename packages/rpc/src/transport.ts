/**
 * The byte stream under the RPC frames: plain TCP, or mutual TLS with the cluster CA.
 *
 * Under TLS both sides present a certificate issued by the cluster CA and verify the other's:
 * the listener requests and requires the dialer's certificate, the dialer checks the
 * listener's against the address it dialed (an IP address or DNS name in its SAN). TLS 1.3
 * only: the handshake binds its proofs to the session's exported keying material.
 */
import { createServer as createTcpServer, connect as connectTcp } from 'node:net';
import type { Server, Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer, connect as connectTls } from 'node:tls';

/** PEM material of a node's mutual TLS: the cluster CA, and this node's certificate and key. */
export interface RpcTls {
  /** The cluster CA (PEM); peers' certificates must chain to it. */
  readonly ca: string | Buffer;
  /** This node's certificate (PEM), used both to serve and to dial. */
  readonly cert: string | Buffer;
  /** The private key of `cert` (PEM). */
  readonly key: string | Buffer;
}

const EXPORTER_LABEL = 'EXPORTER-chat-rpc-auth';
const EXPORTER_BYTES = 32;
const NO_BINDING = new Uint8Array(0);

/** A listening server whose connection callback gets sockets ready for frames. */
export function createTransportServer(
  tls: RpcTls | undefined,
  onSocket: (socket: Socket) => void,
): Server {
  if (tls === undefined) return createTcpServer(onSocket);
  return createTlsServer(
    {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    onSocket,
  );
}

/**
 * Dials a peer. The returned socket emits `ready` once frames may be written: after the TCP
 * connect, or after a TLS handshake in which the peer's certificate verified.
 */
export function connectTransport(
  tls: RpcTls | undefined,
  address: { readonly host: string; readonly port: number },
): { socket: Socket; readyEvent: 'connect' | 'secureConnect' } {
  if (tls === undefined) {
    return {
      socket: connectTcp({ host: address.host, port: address.port }),
      readyEvent: 'connect',
    };
  }
  const socket = connectTls({
    host: address.host,
    port: address.port,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  return { socket, readyEvent: 'secureConnect' };
}

/** Keying material both ends of a TLS session derive alike; empty over plain TCP. */
export function channelBinding(socket: Socket): Uint8Array {
  if (!(socket instanceof TLSSocket)) return NO_BINDING;
  return socket.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, Buffer.alloc(0));
}
