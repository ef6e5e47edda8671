import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createLocalCa } from '../src/local-pki';
import type { PemPair } from '../src/local-pki';

/** Handshakes a mutual-TLS client with a server; resolves with the server's view of the client. */
function handshake(
  server: PemPair & { ca: string },
  client: PemPair & { ca: string },
): Promise<{ clientCn: string } | { error: string }> {
  return new Promise((resolve) => {
    const srv = tls.createServer(
      { ...server, requestCert: true, rejectUnauthorized: true },
      (socket) => {
        resolve({ clientCn: String(socket.getPeerCertificate().subject.CN) });
        socket.end();
      },
    );
    srv.on('tlsClientError', (err) => resolve({ error: err.message }));
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      const socket = tls.connect({ host: '127.0.0.1', port, ...client });
      socket.on('error', (err) => resolve({ error: err.message }));
      socket.on('close', () => srv.close());
    });
  });
}

describe('local CA', () => {
  it('issues certificates that pass mutual TLS with host name checks', async () => {
    const ca = await createLocalCa();
    const server = await ca.issue('node-1', ['127.0.0.1', 'localhost']);
    const client = await ca.issue('node-2', ['127.0.0.1']);
    await expect(
      handshake({ ...server, ca: ca.cert }, { ...client, ca: ca.cert }),
    ).resolves.toEqual({ clientCn: 'node-2' });
  });

  it('a certificate of another CA is refused', async () => {
    const ca = await createLocalCa();
    const other = await createLocalCa('someone else');
    const server = await ca.issue('node-1', ['127.0.0.1']);
    const stranger = await other.issue('node-2', ['127.0.0.1']);
    await expect(
      handshake({ ...server, ca: ca.cert }, { ...stranger, ca: ca.cert }),
    ).resolves.toHaveProperty('error');
  });

  it('a certificate for another host is refused by the client', async () => {
    const ca = await createLocalCa();
    const server = await ca.issue('node-1', ['10.9.9.9']);
    const client = await ca.issue('node-2', ['127.0.0.1']);
    const out = await handshake({ ...server, ca: ca.cert }, { ...client, ca: ca.cert });
    expect(out).toEqual({
      error: expect.stringMatching(/IP: 127\.0\.0\.1 is not in the cert's list/),
    });
  });
});
