/** What cluster tests assert about routing and processes, as users and operators see it. */
import type { TestCluster } from './cluster';
import type { SdkUser } from './traffic';

/** Every node routes every given user as the registry does, on the registry's epoch. */
export async function expectAgreement(cluster: TestCluster, ids: readonly string[]): Promise<void> {
  const { epoch } = await cluster.registryRing();
  const routes = await Promise.all(ids.map((id) => cluster.route(id)));
  for (const node of cluster.nodes.keys()) {
    const view = await cluster.ownersAt(node, ids);
    expect({ node, epoch: view.epoch }).toEqual({ node, epoch });
    for (const r of routes)
      expect({ node, user: r.user, owner: view.owners[r.user] }).toEqual({
        node,
        user: r.user,
        owner: r.node,
      });
  }
}

/** Every user is ready on the node the registry routes it to. */
export async function expectOnOwners(cluster: TestCluster, all: readonly SdkUser[]): Promise<void> {
  for (const u of all) {
    const owner = (await cluster.route(u.id)).node;
    expect({ user: u.id, ...u.client.state }).toEqual({ user: u.id, status: 'ready', node: owner });
  }
}

/**
 * Adds `<name> exited (<code>)` to `exited` when the registry or a node started so far exits:
 * a test that expects `exited` to stay empty sees a crash by name.
 */
export function recordExits(cluster: TestCluster, exited: string[]): void {
  for (const p of [cluster.registry, ...cluster.nodes.values()])
    void p.exited.then((code) => exited.push(`${p.name} exited (${code})`));
}
