/** What a ChatClient tells the app: its connection state and the events `client.on()` takes. */
import type {
  ChatError,
  EventFrame,
  MovedFrame,
  ReceiptsFrame,
  TypingNotice,
  WelcomeFrame,
} from '@chat/protocol';
import type { SendResult } from './outbox';
import type { PendingSend } from './outbox-store';

export type ConnectionStatus = 'connecting' | 'syncing' | 'ready' | 'reconnecting' | 'closed';

export interface ConnectionState {
  readonly status: ConnectionStatus;
  /** Id of the node of the current session (from `welcome`), null while not connected. */
  readonly node: string | null;
  /**
   * Set while a move overlaps (`overlapMoves`): the node being moved to. `status` stays
   * `ready` and `node` names the old node, which keeps delivering until the new one is synced
   * ("moving: node-1 -> node-4").
   */
  readonly movingTo?: string;
  /**
   * Set with `closed` when the client stopped by itself (not by `close()`): why, as the `error`
   * event had it: a refused token, the device limit, replaced, or reconnecting given up
   * (`reconnect`).
   */
  readonly reason?: Error;
}

/** Everything `client.on()` can listen to. */
export interface ChatClientEvents {
  /** An inbox event, delivered once and strictly in seq order. */
  event: EventFrame;
  typing: TypingNotice;
  /**
   * Receipt watermarks of a chat member: every message of the chat up to `delivered` reached
   * a device of `user`, every one up to `read` they read. Values only grow; keep the greater.
   */
  receipts: ReceiptsFrame;
  state: ConnectionState;
  /** Auth failures (ChatError UNAUTHORIZED), terminal stops, id-less `err` frames. */
  error: ChatError | Error;
  welcome: WelcomeFrame;
  moved: MovedFrame;
  /**
   * The server had removed this device (away longer than its retention period): events after
   * `lastSeq` may be gone for good. The client carries on (the sync that follows starts at the
   * oldest events still available and skips the missing numbers); an app should refresh what it
   * derives from events (chat list, unread counts).
   */
  reset: { readonly lastSeq: number };
  /**
   * The node's database was restored to an earlier state or failed over (`welcome` names
   * another store epoch than the one this client synced under): seqs after the restore point
   * are handed out again for other events. The client has dropped its seq state and syncs from
   * seq 0; events it already delivered are recognised by `(chatId, messageId)` and not
   * delivered again, the others arrive as `event`s as usual. Messages the database lost do not
   * come back: an app may refresh what it shows (chat list, unread counts). `lastSeq` is the
   * seq the client had reached under the previous epoch.
   */
  storeEpochChanged: {
    readonly previous: string;
    readonly epoch: string;
    readonly lastSeq: number;
  };
  /**
   * A send an earlier run left in the persistent outbox (`outboxStore`) was sent again and
   * ended: `result` from the node's `ok` (`dup: true` when the first attempt had reached it),
   * or `error`.
   */
  restoredSend: {
    readonly send: PendingSend;
    readonly result?: SendResult;
    readonly error?: Error;
  };
}
