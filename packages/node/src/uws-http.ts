/**
 * HTTP plumbing shared by the node's public and internal uWS listeners: error answers, answers
 * produced asynchronously (never written after the client went away), and binding a port.
 */
import type { HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { loadNativeUws } from './uws';

/** The port could not be bound: one line for the operator, naming the address. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

export interface RunningServer {
  readonly port: number;
  close(): void;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** How long to keep retrying a busy port at start. */
  readonly listenRetryMs: number;
}

export function refuse(
  res: HttpResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.cork(() => {
    res.writeStatus(`${status} ${text}`);
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    res.end(JSON.stringify({ error: text }));
  });
}

/** Answers an HTTP request from an async producer; never touches `res` once aborted. */
export function answerLater(
  res: HttpResponse,
  log: Logger,
  produce: () => Promise<{ status: string; contentType: string; body: string }>,
): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  produce().then(
    ({ status, contentType, body }) => {
      if (aborted) return;
      res.cork(() => res.writeStatus(status).writeHeader('content-type', contentType).end(body));
    },
    (err: unknown) => {
      log.warn({ err }, 'ops endpoint failed');
      if (!aborted) refuse(res, 500, 'Internal Server Error');
    },
  );
}

/**
 * Binds the port, retrying for a while: after a crash, connections the old process left
 * half-closed (FIN-WAIT-2) keep the port busy until the kernel reaps them, and uWS does not
 * expose SO_REUSEADDR. A supervisor restarting the node on the same port should not fail then.
 */
export async function listenWithRetry(
  uws: ReturnType<typeof loadNativeUws>,
  app: TemplatedApp,
  options: ListenOptions,
  log: Logger,
): Promise<RunningServer> {
  const deadline = Date.now() + options.listenRetryMs;
  for (let attempt = 1; ; attempt++) {
    const listenSocket = await new Promise<us_listen_socket | false>((resolve) =>
      app.listen(options.host, options.port, resolve),
    );
    if (listenSocket !== false) {
      const port = uws.us_socket_local_port(listenSocket);
      return { port, close: () => uws.us_listen_socket_close(listenSocket) };
    }
    if (options.port === 0 || Date.now() >= deadline) {
      throw new ListenError(
        `cannot listen on ${options.host}:${options.port}: the port is in use or the address is not available`,
      );
    }
    if (attempt === 1) log.warn({ host: options.host, port: options.port }, 'port busy; retrying');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
