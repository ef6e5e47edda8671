/**
 * What devices of the rebalancing tests observed (moves, welcomes, closes), and the recording of
 * it for SDK users beyond what `sdkUser` records: moves, welcomes, message arrival times.
 */
import type { SdkUser } from './traffic';

/** `from` of a `moved` that came before the welcome: the node refused a user it does not own. */
export const AT_CONNECT = 'refused-at-connect';

/** A `moved` a device received: from the node it was on, to the node named in the frame. */
export interface MoveSeen {
  readonly user: string;
  readonly from: string;
  readonly to: string;
  readonly at: number;
}

export interface CloseSeen {
  readonly code: number;
  /** The node the device was welcomed on when the connection closed (null: before welcome). */
  readonly node: string | null;
  readonly at: number;
}

export interface WelcomeSeen {
  readonly node: string;
  readonly at: number;
}

/** What an SDK user observed beyond what `sdkUser` records: moves, welcomes, arrival times. */
export interface SdkWatch {
  readonly user: SdkUser;
  readonly moves: MoveSeen[];
  readonly welcomes: WelcomeSeen[];
  /** Date.now() when each message event was handed to the app, by message id. */
  readonly arrivals: Map<string, number>;
}

export function watchSdk(user: SdkUser): SdkWatch {
  const watch: SdkWatch = { user, moves: [], welcomes: [], arrivals: new Map() };
  // The node of the current connection: set by its welcome, cleared when it is gone.
  let current: string | null = null;
  user.client.on('welcome', (w) => {
    current = w.node;
    watch.welcomes.push({ node: w.node, at: Date.now() });
  });
  user.client.on('state', (s) => {
    if (s.status !== 'ready' && s.status !== 'syncing') current = null;
  });
  user.client.on('moved', (m) =>
    watch.moves.push({ user: user.id, from: current ?? AT_CONNECT, to: m.node, at: Date.now() }),
  );
  user.client.on('event', (e) => {
    if (e.kind === 'message' && !watch.arrivals.has(e.messageId))
      watch.arrivals.set(e.messageId, Date.now());
  });
  return watch;
}
