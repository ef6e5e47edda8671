/**
 * A WebSocket client that reads its socket at a fixed, slow byte rate, to play a device on a
 * bad mobile link. It completes the upgrade by hand and then only drains bytes; it never
 * answers anything, so the server sees a reader that falls further and further behind.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface SlowSocket {
  /** Bytes read so far after the upgrade. */
  readonly bytesRead: () => number;
  readonly closed: Promise<void>;
  destroy(): void;
}

export function openSlowSocket(
  port: number,
  path: string,
  subprotocol: string,
  bytesPerSecond: number,
): Promise<SlowSocket> {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Version: 13',
          `Sec-WebSocket-Protocol: ${subprotocol}`,
          '',
          '',
        ].join('\r\n'),
      );
    });
    let header = '';
    const onHandshake = (chunk: Buffer): void => {
      header += chunk.toString('latin1');
      if (!header.includes('\r\n\r\n')) return;
      socket.off('data', onHandshake);
      if (!header.startsWith('HTTP/1.1 101')) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${header.split('\r\n')[0]}`));
        return;
      }
      socket.pause();
      let read = 0;
      const perTick = Math.max(1, Math.round(bytesPerSecond / 10));
      const timer = setInterval(() => {
        let budget = perTick;
        while (budget > 0) {
          const chunk = socket.read(
            Math.min(budget, socket.readableLength || budget),
          ) as Buffer | null;
          if (chunk === null) break;
          read += chunk.length;
          budget -= chunk.length;
        }
      }, 100);
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      void closed.then(() => clearInterval(timer));
      resolve({ bytesRead: () => read, closed, destroy: () => socket.destroy() });
    };
    socket.on('data', onHandshake);
  });
}
