/**
 * `npm start`: the whole system on this machine on embedded defaults, on free loopback ports.
 * Ctrl-C (or SIGTERM) stops everything it started.
 */
import { DEV_SECRET_NOTICE, parseLocalArgs } from './local-args';
import { createTestDatabase } from './db';
import type { NodeProcess } from './node-process';
import { startNodeProcess } from './node-process';
import { startPostgres } from './postgres';
import { testToken } from './raw-client';

const DEV_SECRET = 'dev-secret';

async function main(): Promise<void> {
  const args = parseLocalArgs(process.argv.slice(2));
  console.log('starting Postgres (embedded)...');
  const pg = await startPostgres({ durable: true });
  const db = await createTestDatabase('chat', pg.url);
  const nodes: NodeProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping...');
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await pg.close();
    console.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());

  for (let i = 1; i <= args.nodes; i++) {
    const nodeId = `node-${i}`;
    console.log(`starting ${nodeId}...`);
    // An empty CHAT_AUTH_SECRET makes the node fall back to the dev secret and warn about it.
    const node = await startNodeProcess({
      databaseUrl: db.url,
      nodeId,
      env: { CHAT_AUTH_SECRET: '' },
    });
    nodes.push(node);
    node.exited.then(
      (code) => {
        if (!stopping)
          console.error(`${nodeId} exited unexpectedly (${code}); its log: ${node.logFile}`);
      },
      () => undefined,
    );
  }

  const first = nodes[0]!;
  const alice = testToken('alice', 'laptop', 24 * 3600, DEV_SECRET);
  const bob = testToken('bob', 'phone', 24 * 3600, DEV_SECRET);
  console.log(DEV_SECRET_NOTICE);
  console.log(`node:     ${first.url}   (logs: ${first.logFile})`);
  console.log(`postgres: ${db.url}`);
  console.log('dev tokens (24 h):');
  console.log(`  alice/laptop ${alice}`);
  console.log(`  bob/phone    ${bob}`);
  console.log('try it:');
  console.log(`  npx wscat -s chat.v1.json -c '${first.url}?token=${alice}'`);
  console.log(`  then send {"t":"createChat","id":1,"members":["bob"]}`);
  console.log(`READY node=${first.url} postgres=${db.url}`);
}

main().catch((err: unknown) => {
  console.error('local cluster failed to start:', err);
  process.exit(1);
});
