/**
 * Entry point of a fleet process (spawned by handle.ts with a raised open-files limit). Commands
 * run concurrently, so that `status` and `stopTraffic` answer while traffic is running. It exits
 * when the IPC channel closes, so it never outlives the harness.
 */
import { Fleet } from './fleet';
import type { FleetReply, FleetRequest } from './messages';

const fleet = new Fleet();

function reply(message: FleetReply): void {
  process.send?.(message);
}

async function run(request: FleetRequest): Promise<unknown> {
  const command = request.command;
  switch (command.cmd) {
    case 'connect':
      return fleet.connect(command);
    case 'createChats':
      return fleet.createChats(command);
    case 'traffic':
      return fleet.runTraffic(command);
    case 'churn':
      return fleet.churn(command);
    case 'setChats':
      fleet.setChats(command.chatIds);
      return {};
    case 'status':
      return fleet.status();
    case 'stopTraffic':
      fleet.stopTraffic();
      return {};
    case 'disconnect':
      await fleet.disconnect();
      return {};
  }
}

process.on('message', (request: FleetRequest) => {
  run(request).then(
    (result) => reply({ id: request.id, ok: true, result }),
    (err: unknown) =>
      reply({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => {
  void fleet.disconnect().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3_000).unref();
});
