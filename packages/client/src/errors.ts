/** Errors of the client that are not protocol errors (those are ChatError from @chat/protocol). */

/**
 * The connection ended in a way the client does not recover from by itself, or the client was
 * closed. `closeCode` is the WebSocket close code and `httpStatus` the status of a refused
 * upgrade, when known.
 *
 * @example
 * client.on('error', (err) => {
 *   if (err instanceof ConnectionError && err.closeCode === CloseCode.REPLACED) showReplaced();
 * });
 */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    message: string,
    readonly closeCode?: number,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}
