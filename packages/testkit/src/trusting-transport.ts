/**
 * The SDK's WebSocket and fetch for a Node process that trusts one CA (the local CA of a secure
 * run) besides the system's: ChatClient takes both as options. An app does the same, or starts
 * Node with NODE_EXTRA_CA_CERTS=<ca file>.
 */
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { FetchLike, WebSocketConstructor, WebSocketLike } from '@chat/client';
import WebSocket from 'ws';

export interface TrustingTransport {
  readonly WebSocket: WebSocketConstructor;
  readonly fetch: FetchLike;
}

/**
 * @example
 * const client = new ChatClient({ registryUrl: edge.url, user, token, ...trustingTransport(ca) });
 */
export function trustingTransport(caPem: string): TrustingTransport {
  const ca = [...rootCertificates, caPem];
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  }
  const fetch: FetchLike = (url) =>
    new Promise((resolve, reject) => {
      const req = request(url, { ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            ok: status >= 200 && status < 300,
            status,
            json: async () => JSON.parse(body) as unknown,
          });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return {
    WebSocket: TrustingWebSocket as unknown as new (
      url: string,
      protocols?: string | string[],
    ) => WebSocketLike,
    fetch,
  };
}
