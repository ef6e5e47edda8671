/**
 * The dashboard's connection to the registry: an EventSource on the stream, reopened when the
 * browser gives up on it. EventSource reconnects by itself after a dropped connection (the
 * stream's `retry:` is 1 s), but not after an HTTP error such as a 503 from a registry that is
 * shutting down; then a new one is opened a few seconds later.
 */
import type { DashboardRing, DashboardState } from '@chat/protocol/dashboard-feed';

/** What the connection indicator shows. */
export type FeedStatus = 'connecting' | 'live' | 'reconnecting';

export interface FeedHandlers {
  readonly ring: (ring: DashboardRing) => void;
  readonly state: (state: DashboardState) => void;
  readonly status: (status: FeedStatus) => void;
}

/** After the browser closed the EventSource for good: wait this long, then open a new one. */
const REOPEN_MS = 3000;

/**
 * @example
 * const stop = openFeed('/v1/dashboard/stream', { ring: drawRing, state: render, status: showStatus });
 */
export function openFeed(url: string, on: FeedHandlers): () => void {
  let source: EventSource | undefined;
  let reopen: number | undefined;
  let stopped = false;
  let everLive = false;

  const parse = <T>(e: Event): T | undefined => {
    try {
      return JSON.parse((e as MessageEvent<string>).data) as T;
    } catch {
      return undefined; // a torn or foreign message: the next whole state replaces it anyway
    }
  };

  const open = (): void => {
    if (stopped) return;
    on.status(everLive ? 'reconnecting' : 'connecting');
    const es = new EventSource(url);
    source = es;
    es.addEventListener('open', () => {
      everLive = true;
      on.status('live');
    });
    es.addEventListener('ring', (e) => {
      const ring = parse<DashboardRing>(e);
      if (ring !== undefined) on.ring(ring);
    });
    es.addEventListener('state', (e) => {
      const state = parse<DashboardState>(e);
      if (state === undefined) return;
      // Data proves the stream is up even where 'open' was missed.
      everLive = true;
      on.status('live');
      on.state(state);
    });
    es.addEventListener('error', () => {
      if (stopped || source !== es) return;
      on.status(everLive ? 'reconnecting' : 'connecting');
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        reopen = window.setTimeout(open, REOPEN_MS);
      }
    });
  };

  open();
  return () => {
    stopped = true;
    if (reopen !== undefined) window.clearTimeout(reopen);
    source?.close();
  };
}
