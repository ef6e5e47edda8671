/** Ring diffs as the cluster computes them, and the registry's routes. */
import { buildRing, movedUsers } from '@chat/ring';
import type { Ring } from '@chat/ring';

/** Ring over equal-weight members, built as every process of the cluster builds it. */
export function ringOf(ids: readonly string[]): Ring {
  return buildRing(ids.map((id) => ({ id, weight: 1 })));
}

/** user -> [from, to] for the users whose owner differs between the two member lists. */
export function ringDiff(
  before: readonly string[],
  after: readonly string[],
  users: readonly string[],
): Map<string, { from: string; to: string }> {
  return new Map(
    movedUsers(ringOf(before), ringOf(after), users).map((m) => [
      m.user,
      { from: m.from!, to: m.to! },
    ]),
  );
}

/** The registry's owner of every user (`concurrency` requests at a time). */
export async function registryOwners(
  registryUrl: string,
  users: readonly string[],
  concurrency = 50,
): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  for (let i = 0; i < users.length; i += concurrency) {
    await Promise.all(
      users.slice(i, i + concurrency).map(async (user) => {
        const res = await fetch(`${registryUrl}/v1/route?user=${user}`);
        if (res.status !== 200) throw new Error(`registry: ${res.status} for ${user}`);
        owners.set(user, ((await res.json()) as { node: string }).node);
      }),
    );
  }
  return owners;
}

/** A registry look-up for lean users: the owner's WebSocket URL. */
export function registryResolver(registryUrl: () => string): (user: string) => Promise<string> {
  return async (user) => {
    const res = await fetch(`${registryUrl()}/v1/route?user=${user}`);
    if (res.status !== 200) throw new Error(`registry: ${res.status}`);
    return ((await res.json()) as { url: string }).url;
  };
}
