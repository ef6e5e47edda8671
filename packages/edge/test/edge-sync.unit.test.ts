/**
 * The edge follows membership: a node that registers is routed after one write and reload, an
 * unchanged membership reloads nothing, and a failed reload is retried at the next change.
 */
import type { ClusterChange, ClusterSnapshot, NodeInfo } from '@chat/cluster';
import { EdgeSync } from '../src/edge-sync';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const site = {
  listen: '127.0.0.1:8443',
  certFile: '/tls/edge.crt',
  keyFile: '/tls/edge.key',
  registryUrl: 'http://127.0.0.1:8080',
};

function nodeInfo(id: string): NodeInfo {
  return {
    nodeId: id,
    wsUrl: `ws://127.0.0.1:700${id.slice(-1)}/ws`,
    rpcAddress: 'h:1',
    weight: 1,
    startedAt: 0,
  };
}

/** A view whose membership the test sets. */
function fakeView(ids: string[]) {
  const listeners = new Set<(c: ClusterChange) => void>();
  const view = {
    snapshot: undefined as unknown as ClusterSnapshot,
    set(list: string[]) {
      view.snapshot = {
        nodes: new Map(list.map((id) => [id, nodeInfo(id)])),
        ring: undefined,
        drains: new Map(),
        revision: list.length,
      };
      for (const l of listeners) l({ snapshot: view.snapshot } as ClusterChange);
    },
    onChange(l: (c: ClusterChange) => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  view.set(ids);
  return view;
}

it('writes and reloads on membership changes only', async () => {
  const view = fakeView(['node-1']);
  const written: string[] = [];
  let reloads = 0;
  const sync = new EdgeSync({
    view,
    site,
    write: async (t) => void written.push(t),
    reload: async () => void reloads++,
    log: silent,
  });
  await sync.refresh();
  expect(sync.routedNodes).toEqual(['node-1']);
  await sync.refresh();
  expect([written.length, reloads]).toEqual([1, 1]);

  view.set(['node-1', 'node-2']);
  await sync.refresh();
  expect(sync.routedNodes).toEqual(['node-1', 'node-2']);
  expect(written.at(-1)).toContain('location = /n/node-2/ws');
  expect(reloads).toBe(2);
});

it('retries a failed reload at the next refresh', async () => {
  const view = fakeView(['node-1']);
  let fail = true;
  let reloads = 0;
  const sync = new EdgeSync({
    view,
    site,
    write: async () => undefined,
    reload: async () => {
      reloads++;
      if (fail) throw new Error('nginx: [emerg] ...');
    },
    log: silent,
  });
  await expect(sync.refresh()).rejects.toThrow('emerg');
  expect(sync.routedNodes).toEqual([]);
  fail = false;
  await sync.refresh();
  expect(sync.routedNodes).toEqual(['node-1']);
  expect(reloads).toBe(2);
});
