/**
 * `npm start -- --citus` (scripts/start.sh): the local cluster on a Citus coordinator and two
 * workers prints the same READY line as on the embedded PostgreSQL, two users chat across it,
 * the tables are distributed over both workers, and Ctrl-C stops everything it started.
 */
import { jsonCodec } from '@chat/protocol';
import { Client } from 'pg';
import { LocalRun, RawClient, testToken } from '@chat/testkit';

const DEV_SECRET = 'dev-secret';
let run: LocalRun | undefined;
const clients: RawClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await run?.kill();
});

async function connect(registry: string, user: string): Promise<RawClient> {
  const res = await fetch(`${registry}/v1/route?user=${user}`);
  const { url } = (await res.json()) as { url: string };
  const client = await RawClient.ready({
    url,
    codec: jsonCodec,
    token: testToken(user, 'd1', 600, DEV_SECRET),
  });
  clients.push(client);
  return client;
}

it('runs the local cluster on Citus, prints READY, delivers, and stops on Ctrl-C', async () => {
  run = await LocalRun.start(['--citus']);
  const registry = run.readyField('registry');
  const databaseUrl = /^postgres: (\S+)\s+\(Citus coordinator/m.exec(run.output)?.[1];
  expect(databaseUrl).toBeDefined();

  const alice = await connect(registry, 'alice');
  const bob = await connect(registry, 'bob');
  const { chatId } = (await alice.ok({ t: 'createChat', members: ['bob'] })) as { chatId: string };
  await alice.ok({ t: 'send', chatId, clientMsgId: 'hello', body: 'hello over Citus' });
  const got = await bob.next((f) => f.t === 'evt' && f.kind === 'message', 15_000);
  expect(got).toMatchObject({ chatId, from: 'alice', body: 'hello over Citus' });

  // The schema is distributed, and the shards are spread over the two workers.
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ tables: string; workers: string }>(
      `select count(distinct p.logicalrelid) as tables, count(distinct pl.nodeport) as workers
       from pg_dist_partition p
       join pg_dist_shard s on s.logicalrelid = p.logicalrelid
       join pg_dist_shard_placement pl on pl.shardid = s.shardid
       where p.partmethod = 'h'`,
    );
    expect(Number(rows[0]!.tables)).toBeGreaterThanOrEqual(10);
    expect(Number(rows[0]!.workers)).toBe(2);
  } finally {
    await db.end();
  }

  await Promise.all(clients.splice(0).map((c) => c.close()));
  expect(await run.interrupt()).toBe(0);
  expect(run.output).toMatch(/^stopped$/m);
});
