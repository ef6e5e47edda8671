/**
 * The seams the cluster plugs into. A single node owns everyone and delivers locally; the
 * cluster implementation answers ownership from the ring and forwards deliveries over RPC.
 */
import type { MovedFrame } from '@chat/protocol';
import type { Delivery, ReceiptNotice } from '@chat/store';

export interface Ownership {
  /** Undefined when this node owns the user; otherwise where the user belongs. */
  redirectFor(user: string): MovedFrame | undefined;
  /** The ring epoch this node routes by (0 for a single node). */
  epoch(): number;
  /** The owner's node id as this node sees it; undefined when there is no ring (serve here). */
  ownerOf(user: string): string | undefined;
  /**
   * The user came to this node with a ring change still open: its devices may be connected to
   * their previous owner meanwhile (a move overlaps), and are registered there.
   */
  movingHere(user: string): boolean;
}

/**
 * Pushes committed inbox events, and receipt watermarks, to the devices of their users,
 * wherever they are connected.
 */
export interface DeliveryFabric {
  /** Fire-and-forget: the inbox is the truth, so a failed push is repaired by sync. */
  deliver(deliveries: readonly Delivery[]): void;
  /**
   * Receipt watermarks for the users in each notice's `notify`. Fire-and-forget: they are
   * recorded for those users too, and reach devices that missed them at their next welcome.
   */
  notify(notices: readonly ReceiptNotice[]): void;
  close(): Promise<void>;
}

/** Delivery to devices connected to this node. */
export interface LocalDeliverer {
  deliver(deliveries: readonly Delivery[]): void;
  notify(notices: readonly ReceiptNotice[]): void;
}

export const singleNodeOwnership: Ownership = Object.freeze({
  redirectFor: () => undefined,
  epoch: () => 0,
  ownerOf: () => undefined,
  movingHere: () => false,
});

export function localFabric(local: LocalDeliverer): DeliveryFabric {
  return {
    deliver: (deliveries) => local.deliver(deliveries),
    notify: (notices) => local.notify(notices),
    close: async () => undefined,
  };
}
