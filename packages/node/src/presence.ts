/**
 * The seam presence plugs into (issue 7), beside routing.ts's delivery seam: whether a user is
 * connected is known only by the node holding their devices (the owner), and typing notices
 * go to the nodes of the recipients. A single node answers both locally; the cluster asks the
 * owner nodes over RPC.
 */

/** One typing notice for some recipients: `user` is typing in `chatId`. */
export interface TypingItem {
  readonly chatId: string;
  readonly user: string;
  /** Recipients (chat members other than `user`). */
  readonly to: readonly string[];
}

/** What the node itself answers, locally. */
export interface LocalPresence {
  /** True when the user has a device connected to this node. */
  isOnlineHere(user: string): boolean;
  /** Pushes the notices to devices connected here; returns how many devices got one. */
  pushTyping(items: readonly TypingItem[]): number;
}

export interface PresencePeers {
  /** Asks the user's owner node (and, while users move, the previous owner) whether they are connected. */
  isOnline(user: string): Promise<boolean>;
  /** Fire-and-forget, lower priority than messages: may be dropped under load. */
  typing(item: TypingItem): void;
  close(): Promise<void>;
}

export function localPresencePeers(local: LocalPresence): PresencePeers {
  return {
    isOnline: (user) => Promise.resolve(local.isOnlineHere(user)),
    typing: (item) => void local.pushTyping([item]),
    close: async () => undefined,
  };
}
