/**
 * The registry's answers, as pure functions of a RouteTable: the HTTP layer only parses the
 * request and writes what these return.
 */
import type { RouteTable } from '@chat/cluster';
import { clientWsUrl } from '@chat/cluster';
import { isValidId } from '@chat/protocol';

export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * `GET /v1/route?user=U` -> `{user, node, url, epoch}`, 503 `{error:"NO_NODES"}` when none is
 * alive. With `edgeOrigin` (CHAT_EDGE_URL) `url` is the node's route through the TLS edge.
 */
export function routeAnswer(
  table: RouteTable,
  user: string | null,
  edgeOrigin?: string,
): HttpAnswer {
  if (user === null || !isValidId(user)) {
    return {
      status: 400,
      body: { error: 'BAD_REQUEST', message: 'user must be 1-64 characters of [A-Za-z0-9._-]' },
    };
  }
  const owner = table.owner(user);
  if (owner === undefined) {
    return {
      status: 503,
      body: { error: 'NO_NODES', message: 'no chat node is alive' },
      headers: { 'Retry-After': '1' },
    };
  }
  const url = clientWsUrl(owner, edgeOrigin);
  return { status: 200, body: { user, node: owner.nodeId, url, epoch: table.epoch } };
}

export interface RingNode {
  readonly id: string;
  readonly url: string | null;
  readonly weight: number;
  /** Registered in etcd right now. */
  readonly live: boolean;
  /** In the configured ring. */
  readonly member: boolean;
}

/** `GET /v1/ring` -> every registered or configured node, sorted by id. */
export function ringAnswer(
  table: RouteTable,
  configured: readonly { id: string; weight: number }[],
): HttpAnswer {
  const ids = new Set([...table.nodes.keys(), ...configured.map((m) => m.id)]);
  const nodes: RingNode[] = [...ids].sort().map((id) => {
    const info = table.nodes.get(id);
    const member = configured.find((m) => m.id === id);
    return {
      id,
      url: info?.wsUrl ?? null,
      weight: member?.weight ?? info?.weight ?? 1,
      live: info !== undefined,
      member: member !== undefined,
    };
  });
  return { status: 200, body: { epoch: table.epoch, nodes } };
}

/** Where the chat page asks for the key its Web Push subscriptions must name. */
export const VAPID_PUBLIC_KEY_PATH = '/v1/push/vapid-public-key';

/**
 * `GET /v1/push/vapid-public-key` -> `{publicKey}` (the nodes' VAPID key, base64url), 404
 * `{error:"NOT_FOUND"}` when the cluster sends no Web Push: the page then offers no "notify me".
 */
export function vapidPublicKeyAnswer(publicKey: string | undefined): HttpAnswer {
  if (publicKey === undefined) {
    return { status: 404, body: { error: 'NOT_FOUND', message: 'web push is not configured' } };
  }
  return { status: 200, body: { publicKey } };
}
