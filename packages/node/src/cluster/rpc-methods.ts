/** The typed RPC methods chat nodes call on each other. */
import type { Delivery, ReceiptNotice } from '@chat/store';
import { defineMethod } from '@chat/rpc';
import type { TypingItem } from '../presence';

export interface DeliverRequest {
  readonly deliveries: readonly Delivery[];
}

/** Pushes committed inbox events to the devices connected to the receiving node. */
export const Deliver = defineMethod<DeliverRequest, { readonly pushed: number }>('deliver');

/** Asks the node holding users' devices whether each is connected there (issue 7). */
export const Presence = defineMethod<
  { readonly users: readonly string[] },
  { readonly online: readonly boolean[] }
>('presence');

/** Pushes typing notices to the recipients' devices connected to the receiving node. */
export const TypingNotify = defineMethod<
  { readonly items: readonly TypingItem[] },
  { readonly pushed: number }
>('typing');

/** Pushes receipt watermarks to the devices of the notices' users connected to the receiving node. */
export const NotifyReceipts = defineMethod<
  { readonly notices: readonly ReceiptNotice[] },
  { readonly pushed: number }
>('receipts');
