/**
 * Postgres crashing and hanging under traffic (issue 20, item 1), on a private server this file
 * owns, reached by the nodes through a TCP fault proxy:
 *
 * - the server SIGKILLed (no shutdown checkpoint) and started again: crash recovery;
 * - the whole server SIGSTOPped for 30 s, then SIGCONT;
 * - the link blackholed (bytes dropped, no FIN or RST) for a while.
 *
 * What each case checks is in postgres-faults-kit.ts (shared with the Citus run,
 * postgres-faults.citus.test.ts); the figures are printed.
 */
import type { FaultProxy, PostgresHandle } from '@chat/testkit';
import { startFaultProxy, startPostgres } from '@chat/testkit';
import { PostgresFaultScenario } from './postgres-faults-kit';

let pg: PostgresHandle;
let proxy: FaultProxy;
let scenario: PostgresFaultScenario;

beforeAll(async () => {
  pg = await startPostgres();
  proxy = await startFaultProxy({ target: `127.0.0.1:${pg.port}` });
  scenario = await PostgresFaultScenario.start({
    cluster: { adminUrl: pg.url, databaseProxy: proxy.address },
    label: 'postgres',
  });
}, 120_000);

afterAll(async () => {
  proxy?.blackhole(false);
  await pg?.thaw().catch(() => undefined);
  await scenario?.close();
  await proxy?.close();
  await pg?.close();
});

it('survives Postgres SIGKILLed under traffic (crash recovery on restart)', async () => {
  await scenario.underTraffic(
    { name: 'SIGKILL', inject: () => pg.crash(), holdMs: 3_000, heal: () => pg.start() },
    301,
  );
}, 120_000);

it('survives Postgres SIGSTOPped for 30 s', async () => {
  await scenario.underTraffic(
    { name: 'SIGSTOP 30 s', inject: () => pg.freeze(), holdMs: 30_000, heal: () => pg.thaw() },
    302,
  );
}, 150_000);

it('survives a blackholed link to Postgres (no FIN, no RST)', async () => {
  await scenario.underTraffic(
    {
      name: 'blackhole',
      inject: async () => proxy.blackhole(true),
      holdMs: 15_000,
      heal: async () => proxy.blackhole(false),
    },
    303,
  );
}, 120_000);
