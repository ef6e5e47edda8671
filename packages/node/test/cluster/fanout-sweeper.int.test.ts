/**
 * A node SIGKILLed between the chat step and the user step of a send, and not coming back:
 * the sender has its `ok`, so the message must still reach the recipient. The elected node's
 * fan-out sweeper notices the dead node's stale mark and appends the event (docs/durable-path.md);
 * the recipient, connected to that node, gets it pushed live, and it is in the inbox once.
 *
 * Runs on both engines (jest projects `integration` and `citus`). On Citus the user step runs
 * on the worker that holds the recipient's shard: the recipient's lock is taken there, and the
 * waiting step is looked for, and ended, there.
 */
import { jsonCodec } from '@chat/protocol';
import { LOCK_SPACE } from '@chat/store';
import {
  RawClient,
  TestCluster,
  countRows,
  holdKeyLocks,
  testEngineIsCitus,
  waitFor,
} from '@chat/testkit';

const STALE_MS = 3000;
let cluster: TestCluster;
const clients: RawClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({
    nodes: 2,
    leaseTtlSec: 2,
    nodeEnv: { CHAT_FANOUT_STALE_MS: String(STALE_MS), CHAT_FANOUT_SWEEP_MS: '200' },
  });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster?.close();
});

/** The first user id of the form `prefix-N` that the registry places on `node`. */
async function userOn(node: string, prefix: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const user = `${prefix}-${i}`;
    if ((await cluster.route(user)).node === node) return user;
  }
  throw new Error(`no ${prefix}-N on ${node} among 200`);
}

/** Backends waiting for a lock: on Citus, on the workers (where the steps run). */
const WAITING = `from pg_stat_activity
  where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`;

async function waitingSteps(): Promise<number> {
  if (!testEngineIsCitus()) return countRows(cluster.sql, `select count(*) as n ${WAITING}`);
  const { rows } = await cluster.sql.query<{ result: string }>(
    'select result from run_command_on_workers($1)',
    [`select count(*) ${WAITING}`],
  );
  return rows.reduce((sum, r) => sum + Number(r.result), 0);
}

async function endWaitingSteps(): Promise<void> {
  const end = `select count(pg_terminate_backend(pid)) ${WAITING}`;
  if (testEngineIsCitus()) {
    await cluster.sql.query('select run_command_on_workers($1)', [end]);
  } else {
    await cluster.sql.query(end);
  }
}

async function connect(user: string, autoAck: boolean): Promise<RawClient> {
  const { url } = await cluster.route(user);
  const client = await RawClient.ready({ url, codec: jsonCodec, user, autoAck });
  clients.push(client);
  return client;
}

it('finishes the fan-out of a node that died owing it, once, and pushes it live', async () => {
  const sender = await userOn('node-1', 'sw-sender');
  const recipient = await userOn('node-2', 'sw-recipient');
  const alice = await connect(sender, true);
  // bob does not ack: the event stays in his inbox to be counted.
  const bob = await connect(recipient, false);
  const { chatId } = (await alice.ok({ t: 'createChat', members: [recipient] })) as {
    chatId: string;
  };
  await bob.next((f) => f.t === 'evt' && f.kind === 'chat');

  // Hold the recipient's lock: node-1's user step waits for it after the chat step.
  const release = await holdKeyLocks(
    cluster.db.url,
    LOCK_SPACE.user,
    [recipient],
    testEngineIsCitus() ? 'users' : undefined,
  );
  let messageId: string;
  try {
    ({ messageId } = (await alice.ok({
      t: 'send',
      chatId,
      clientMsgId: 'owed',
      body: 'finished by another node',
    })) as { messageId: string });
    await waitFor(async () => expect(await waitingSteps()).toBe(1));
    cluster.node('node-1').signal('SIGKILL');
    await cluster.node('node-1').exited;
    // Its backend would notice within a second (client_connection_check_interval); end it now
    // so the test does not depend on that, and so it cannot finish once the lock is free.
    await endWaitingSteps();
    await waitFor(async () => expect(await waitingSteps()).toBe(0));
  } finally {
    await release();
  }
  const inboxRows = (): Promise<number> =>
    countRows(
      cluster.sql,
      'select count(*) as n from inbox where user_id = $1 and chat_id = $2 and message_id = $3',
      [recipient, chatId, messageId],
    );
  const pushed = await bob.next(
    (f) => f.t === 'evt' && f.kind === 'message' && f.messageId === messageId,
    30_000,
  );
  expect(pushed).toMatchObject({ chatId, from: sender, body: 'finished by another node' });
  expect(await inboxRows()).toBe(1);
  const marks = await cluster.sql.query<{ swept_upto: string | null }>(
    "select swept_upto from fanout_marks where node_id = 'node-1'",
  );
  expect(Number(marks.rows[0]?.swept_upto)).toBeGreaterThan(0);
});
