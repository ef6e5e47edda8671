/**
 * `npm start -- --secure` (scripts/start.sh): the local cluster behind its nginx TLS edge prints
 * the same READY line with an https registry, serves the web chat over https, routes the SDK
 * (trusting the printed local CA) over wss to the owner node of each of two users on two nodes,
 * who chat; the nodes' Postgres sessions are TLS, verified against the same CA; Ctrl-C stops
 * everything it started, nginx included.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ChatClient } from '@chat/client';
import type { EventFrame } from '@chat/protocol';
import { Client } from 'pg';
import { LocalRun, testToken, trustingTransport, waitFor } from '@chat/testkit';

const DEV_SECRET = 'dev-secret';
let run: LocalRun | undefined;
const clients: ChatClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await run?.kill();
});

it('runs the cluster behind a TLS edge: https page, SDK chat over wss, Ctrl-C stops it', async () => {
  run = await LocalRun.start(['--secure', '--nodes', '2']);
  const output = (): string => run!.output;
  const registry = run.readyField('registry');
  expect(registry).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const caFile = /^tls: .* CA (\S+)$/m.exec(output())?.[1];
  expect(caFile).toBeDefined();
  const transport = trustingTransport(readFileSync(caFile!, 'utf8'));
  expect(output()).toContain(`web chat:  ${registry}/chat/`);
  expect(output()).toMatch(
    /npx wscat --ca \S+ -s chat\.v1\.json -c 'wss:\/\/127\.0\.0\.1:\d+\/n\/node-\d\/ws\?token=/,
  );
  expect((await transport.fetch(`${registry}/chat/`)).status).toBe(200);

  // Two users whom the registry routes through the edge to different nodes.
  const routes = new Map<string, string[]>();
  for (let i = 0; routes.size < 2 && i < 200; i++) {
    const res = await transport.fetch(`${registry}/v1/route?user=u-${i}`);
    const { node, url } = (await res.json()) as { node: string; url: string };
    expect(url).toMatch(new RegExp(`^wss://127\\.0\\.0\\.1:\\d+/n/${node}/ws$`));
    routes.set(node, [...(routes.get(node) ?? []), `u-${i}`]);
  }
  const [a, b] = [...routes.values()].map((users) => users[0]!);
  const received: EventFrame[] = [];
  const connect = (user: string): ChatClient => {
    const client = new ChatClient({
      registryUrl: registry,
      user,
      token: () => testToken(user, 'd1', 600, DEV_SECRET),
      ...transport,
    });
    clients.push(client);
    return client;
  };
  const alice = connect(a!);
  const bob = connect(b!);
  bob.on('event', (e) => void received.push(e));
  await Promise.all([alice.connect(), bob.connect()]);
  expect(alice.state.node).not.toBe(bob.state.node);
  const { chatId } = await alice.createChat([b!]);
  await alice.send(chatId, 'hello over wss');
  await waitFor(
    () => expect(received).toContainEqual(expect.objectContaining({ body: 'hello over wss' })),
    15_000,
  );

  // Every session of the cluster's database (the nodes' pools) is encrypted.
  const databaseUrl = /^postgres: (\S+)\s+\(embedded PostgreSQL, TLS/m.exec(output())?.[1];
  expect(databaseUrl).toContain(`sslmode=verify-full&sslrootcert=${caFile!}`);
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ sessions: string; encrypted: string }>(
      `select count(*) as sessions, count(*) filter (where s.ssl) as encrypted
       from pg_stat_activity a join pg_stat_ssl s using (pid)
       where a.datname = current_database() and a.backend_type = 'client backend'`,
    );
    expect(Number(rows[0]!.sessions)).toBeGreaterThan(1);
    expect(rows[0]!.encrypted).toBe(rows[0]!.sessions);
  } finally {
    await db.end();
  }

  await Promise.all(clients.splice(0).map((c) => c.close()));
  // Ctrl-C as a terminal sends it, to every process of the group: the launcher stops the nodes,
  // the registry, etcd, Postgres and the object storage in that order, quietly, exit code 0.
  const printed = [
    ...[...output().matchAll(/^(?:registry|postgres|s3|node-\d+):\s+(\S+)/gm)].map((m) => m[1]!),
    run.readyField('etcd'),
  ];
  expect(printed).toHaveLength(6);
  for (const url of printed)
    expect({ url, listening: await listening(url) }).toEqual({ url, listening: true });
  const beforeStop = output().length;
  const code = await within(run.ctrlC(), STOP_WITHIN_MS, 'stopping');
  const afterStop = output().slice(beforeStop);
  expect({ code, afterStop }).toEqual({
    code: 0,
    afterStop: expect.stringMatching(/\nstopped\n$/),
  });
  expect(afterStop).not.toMatch(/error/i);
  expect(afterStop).not.toMatch(/\n\s+at /); // a stack frame
  // Everything went with it, nginx included: nothing answers on any port it printed.
  for (const url of printed)
    expect({ url, listening: await listening(url) }).toEqual({ url, listening: false });
  await expect(transport.fetch(`${registry}/chat/`)).rejects.toMatchObject({
    code: 'ECONNREFUSED',
  });
});

const STOP_WITHIN_MS = 60_000;

/** Whether something accepts TCP connections on the host:port of `url`. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
