/** Asking the registry which node owns a user: `GET /v1/route?user=U -> {user, node, url, epoch}`. */
import { ChatError } from '@chat/protocol';

/** The subset of `fetch` the client uses; `globalThis.fetch` satisfies it. */
export type FetchLike = (
  url: string,
) => Promise<{ readonly ok: boolean; readonly status: number; json(): Promise<unknown> }>;

export interface Route {
  readonly user: string;
  readonly node: string;
  readonly url: string;
  readonly epoch: number;
}

/**
 * @example
 * const { url } = await lookupRoute(fetch, 'http://registry:8080', 'alice');
 */
export async function lookupRoute(
  fetchImpl: FetchLike,
  registryUrl: string,
  user: string,
): Promise<Route> {
  const base = registryUrl.replace(/\/+$/, '');
  const res = await fetchImpl(`${base}/v1/route?user=${encodeURIComponent(user)}`);
  if (!res.ok) {
    throw new ChatError(
      res.status === 503 ? 'UNAVAILABLE' : 'INTERNAL',
      `registry answered ${res.status}`,
      { status: res.status },
    );
  }
  const body = (await res.json()) as Partial<Record<keyof Route, unknown>> | null;
  if (
    body === null ||
    typeof body !== 'object' ||
    typeof body.url !== 'string' ||
    typeof body.node !== 'string' ||
    typeof body.epoch !== 'number'
  ) {
    throw new ChatError('INTERNAL', 'registry answer is not {user, node, url, epoch}');
  }
  return { user, node: body.node, url: body.url, epoch: body.epoch };
}
