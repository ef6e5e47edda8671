/**
 * `npm start -- --citus` (scripts/start.sh): the local cluster on a Citus coordinator and two
 * workers prints the same READY line as on the embedded PostgreSQL, two users chat across it,
 * the tables are distributed over both workers, and Ctrl-C stops everything it started.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { jsonCodec } from '@chat/protocol';
import { Client } from 'pg';
import { REPO_ROOT, RawClient, testToken, waitFor } from '@chat/testkit';

const DEV_SECRET = 'dev-secret';
let launcher: ChildProcess | undefined;
let output = '';
const clients: RawClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  // After a failure: Ctrl-C as a user would, then the whole process group if that hangs.
  if (launcher?.pid !== undefined && launcher.exitCode === null) {
    const gone = new Promise((resolve) => launcher!.once('exit', resolve));
    launcher.kill('SIGINT');
    const timer = setTimeout(() => process.kill(-launcher!.pid!, 'SIGKILL'), 30_000);
    await gone;
    clearTimeout(timer);
  }
});

/** The value of `name=` in the READY line. */
function readyField(name: string): string {
  const line = output.split('\n').find((l) => l.startsWith('READY '))!;
  return new RegExp(`${name}=(\\S+)`).exec(line)![1]!;
}

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
  launcher = spawn('bash', ['scripts/start.sh', '--citus'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that a hung run can be ended whole
  });
  launcher.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  launcher.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => launcher!.on('exit', resolve));
  await waitFor(() => expect(output).toMatch(/^READY registry=\S+ etcd=\S+ prefix=\S+$/m), 90_000);

  const registry = readyField('registry');
  const databaseUrl = /^postgres: (\S+)\s+\(Citus coordinator/m.exec(output)?.[1];
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
  launcher.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(output).toMatch(/^stopped$/m);
});
