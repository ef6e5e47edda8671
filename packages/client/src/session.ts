/**
 * One WebSocket attempt and what the client learnt on it. The parts of the client act for the
 * session they are handed and the lifecycle ignores events of one that is no longer current, so
 * that a late close or message of an abandoned socket cannot disturb the next one.
 */
import type { ClientFrame, Codec, ErrFrame, MovedFrame } from '@chat/protocol';
import type { TimerHandle } from './options';
import type { SyncPage } from './seq-tracker';
import type { Socket } from './transport';

/** The fields of an `ok` reply. */
export type Reply = Record<string, unknown>;

/** The sync page a session waits for: its request id, what it asked for, its timeout. */
export interface SyncInFlight {
  readonly id: number;
  readonly page: SyncPage;
  readonly timer: TimerHandle;
}

export interface Session {
  socket: Socket;
  welcomed: boolean;
  /** Ids of requests and sends put on this connection, not answered yet. */
  readonly inFlight: Set<number>;
  node: string | null;
  moved: MovedFrame | undefined;
  /** An id-less `err` (LIMIT precedes close 4009). */
  lastError: ErrFrame | undefined;
  heartbeatMs: number;
  liveness: TimerHandle | undefined;
  sync: SyncInFlight | undefined;
}

/**
 * A new session; its `socket` is for the caller to set at once (the socket's handlers need the
 * session first).
 */
export function newSession(): Session {
  return {
    socket: undefined as unknown as Socket,
    welcomed: false,
    inFlight: new Set(),
    node: null,
    moved: undefined,
    lastError: undefined,
    heartbeatMs: 0,
    liveness: undefined,
    sync: undefined,
  };
}

/** Puts a frame on a session's socket; dropped when there is no session or it is closing. */
export type FrameSender = (session: Session | undefined, frame: ClientFrame) => void;

export function frameSender(codec: Codec): FrameSender {
  return (session, frame) => {
    if (session === undefined || !session.socket.isOpen) return;
    session.socket.send(codec.encode(frame));
  };
}

/** Hands out request ids, unique over all the sessions of one client. */
export type NextId = () => number;

export function requestIds(): NextId {
  let next = 1;
  return () => next++;
}
