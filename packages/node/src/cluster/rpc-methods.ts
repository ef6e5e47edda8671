/** The typed RPC methods chat nodes call on each other. */
import type { Delivery } from '@chat/store';
import { defineMethod } from '@chat/rpc';

export interface DeliverRequest {
  readonly deliveries: readonly Delivery[];
}

/** Pushes committed inbox events to the devices connected to the receiving node. */
export const Deliver = defineMethod<DeliverRequest, { readonly pushed: number }>('deliver');
