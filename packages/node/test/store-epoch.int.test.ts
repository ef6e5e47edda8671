/**
 * The store epoch end to end (issue 15): the database under a running node is put back to an
 * earlier snapshot while SDK clients stay connected. The node notices on its next connection
 * (the periodic check is off here), closes every connection with 4010, and the clients resync:
 * messages stored after the restore take seqs the clients saw before, and they still show
 * them, with every message the restored database has and none twice.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import { CloseCode } from '@chat/protocol';
import { LOCK_SPACE } from '@chat/store';
import type { SingleNode } from '@chat/testkit';
import {
  REPO_ROOT,
  holdKeyLocks,
  snapshotDatabase,
  startSingleNode,
  testToken,
  waitFor,
} from '@chat/testkit';

interface App {
  readonly client: ChatClient;
  /** Events as the SDK handed them to the app. */
  readonly events: EventFrame[];
  readonly epochChanges: { previous: string; epoch: string; lastSeq: number }[];
  readonly closeCodes: number[];
}

/** An SDK client through a one-node "registry", as an app would hold it. */
function app(h: SingleNode, user: string, device = 'd1'): App {
  const closeCodes: number[] = [];
  const noop = (): void => undefined;
  const client = new ChatClient({
    registryUrl: 'http://registry.invalid',
    user,
    fetch: async () => ({
      ok: true,
      status: 200,
      json: async () => ({ user, node: 'node-1', url: h.node.url, epoch: 1 }),
    }),
    token: () => testToken(user, device),
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    logger: {
      debug: noop,
      warn: noop,
      error: noop,
      info: (obj) => {
        const code = (obj as { code?: unknown }).code;
        if (typeof code === 'number') closeCodes.push(code);
      },
    },
  });
  const events: EventFrame[] = [];
  const epochChanges: App['epochChanges'] = [];
  client.on('event', (e) => events.push(e));
  client.on('storeEpochChanged', (c) => epochChanges.push({ ...c }));
  return { client, events, epochChanges, closeCodes };
}

const bodies = (a: App): string[] =>
  a.events.flatMap((e) => (e.kind === 'message' && e.body !== null ? [e.body] : []));

const seqOf = (a: App, body: string): number | undefined =>
  a.events.find((e) => e.kind === 'message' && e.body === body)?.seq;

/**
 * A query on a connection of its own: the harness's pool may still hold connections the
 * snapshot and the restore ended.
 */
async function query<R extends object>(h: SingleNode, text: string, params: unknown[] = []) {
  const client = new Client({ connectionString: h.db.url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function storeEpochOf(h: SingleNode): Promise<string> {
  const [row] = await query<{ epoch: string }>(h, 'select chat_store_epoch() as epoch');
  return row!.epoch;
}

describe('a database restored to an earlier state under connected clients', () => {
  let h: SingleNode;
  const apps: App[] = [];
  beforeAll(async () => {
    // An hour between periodic checks: the node has to notice through its new connections.
    h = await startSingleNode({ env: { CHAT_EPOCH_CHECK_MS: '3600000' } });
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.client.close()));
    await h.close();
  });

  it('makes the clients resync and show every message the restored database has', async () => {
    const ann = app(h, 'ann');
    const bob = app(h, 'bob');
    apps.push(ann, bob);
    await Promise.all([ann.client.connect(), bob.client.connect()]);
    const epochBefore = await storeEpochOf(h);
    expect(ann.client.storeEpoch).toBe(epochBefore);

    const { chatId } = await bob.client.createChat(['ann', 'cy']);
    for (const body of ['before 1', 'before 2', 'before 3']) await bob.client.send(chatId, body);
    await waitFor(() => expect(bodies(ann)).toEqual(['before 1', 'before 2', 'before 3']));

    // A message stored (acked to bob) whose fan-out is held up (cy's lock) past the snapshot:
    // the restored database has the message and not its events.
    const release = await holdKeyLocks(h.db.url, LOCK_SPACE.user, ['cy']);
    await bob.client.send(chatId, 'in flight');
    // Taking the snapshot ends every connection to the database, the lock holder's included.
    const snapshot = await snapshotDatabase(h.db);
    await release();
    await waitFor(() => expect(bodies(ann)).toContain('in flight'), 30_000);
    for (const body of ['lost 1', 'lost 2', 'lost 3']) await bob.client.send(chatId, body);
    await waitFor(() => expect(bodies(ann)).toContain('lost 3'), 30_000);
    const seenBefore = ann.client.lastSeq;

    try {
      await snapshot.restore();
    } finally {
      await snapshot.drop();
    }

    await waitFor(() => expect(ann.epochChanges).toHaveLength(1), 30_000);
    const epochAfter = await storeEpochOf(h);
    expect(epochAfter).not.toBe(epochBefore);
    expect(ann.epochChanges[0]).toEqual({
      previous: epochBefore,
      epoch: epochAfter,
      lastSeq: seenBefore,
    });
    expect(ann.closeCodes).toContain(CloseCode.STORE_EPOCH);
    await waitFor(() => expect(ann.client.state.status).toBe('ready'), 30_000);

    for (const body of ['after 1', 'after 2', 'after 3']) await bob.client.send(chatId, body);
    await waitFor(() => expect(bodies(ann)).toContain('after 3'), 30_000);
    // The point of it all: these took seqs ann had seen under the old epoch.
    expect(seqOf(ann, 'after 1')).toBeLessThanOrEqual(seenBefore);

    // What the restored database has: the messages up to the snapshot (the one in flight
    // included), then the new ones; the lost ones are gone.
    const rows = await query<{ body: string }>(
      h,
      `select body from messages where chat_id = $1 and body is not null order by id`,
      [chatId],
    );
    const restored = rows.map((r) => r.body);
    expect(restored).toEqual([
      'before 1',
      'before 2',
      'before 3',
      'in flight',
      'after 1',
      'after 2',
      'after 3',
    ]);
    expect(bodies(ann)).toEqual(expect.arrayContaining(restored));
    // And nothing twice, although the resync went through ann's inbox from seq 0.
    const keys = ann.events.flatMap((e) => (e.kind === 'message' ? [e.messageId] : []));
    expect(new Set(keys).size).toBe(keys.length);

    // cy's first device syncs the restored inbox: the message whose events the restore took
    // away is there again (the node swept its own fan-out), in the same epoch.
    const cy = app(h, 'cy');
    apps.push(cy);
    await cy.client.connect();
    await waitFor(() => expect([...bodies(cy)].sort()).toEqual([...restored].sort()), 30_000);
    expect(cy.client.storeEpoch).toBe(epochAfter);
    expect(cy.epochChanges).toEqual([]);
  });
});

describe('a new epoch from the store command, with no restore', () => {
  let h: SingleNode;
  let ann: App | undefined;
  beforeAll(async () => {
    h = await startSingleNode({ env: { CHAT_EPOCH_CHECK_MS: '200' } });
  });
  afterAll(async () => {
    await ann?.client.close();
    await h.close();
  });

  it('reaches connected clients through the periodic check', async () => {
    ann = app(h, 'ann');
    const a = ann;
    await a.client.connect();
    const before = a.client.storeEpoch;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'packages/store/src/cli.ts', 'new-epoch'],
      { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: h.db.url } },
    );
    const epoch = await storeEpochOf(h);
    expect(stdout.trim()).toBe(`store epoch ${before} -> ${epoch}`);
    await waitFor(() => expect(a.epochChanges).toEqual([{ previous: before, epoch, lastSeq: 0 }]));
    await waitFor(() => expect(a.client.state.status).toBe('ready'));
    const { chatId } = await a.client.createChat(['bob']);
    await a.client.send(chatId, 'still here');
    expect(a.client.storeEpoch).toBe(epoch);
  });
});
