/**
 * Entry point of the load-generator process (forked by handle.ts): runs one command at a time
 * from the IPC channel and answers each with its result. It exits when the channel closes, so
 * it never outlives the harness.
 */
import { LoadGenerator } from './generator';
import type { GeneratorReply, GeneratorRequest } from './messages';

const generator = new LoadGenerator({ tickMs: 2 });

function reply(message: GeneratorReply): void {
  process.send?.(message);
}

async function run(request: GeneratorRequest): Promise<unknown> {
  const command = request.command;
  switch (command.cmd) {
    case 'connect':
      return generator.connect(command);
    case 'disconnect':
      await generator.disconnect(command.timeoutMs);
      return {};
    case 'createChats':
      return generator.createChats(command);
    case 'step':
      return generator.runStep(command);
  }
}

let chain: Promise<void> = Promise.resolve();
process.on('message', (request: GeneratorRequest) => {
  chain = chain.then(async () => {
    try {
      reply({ id: request.id, ok: true, result: await run(request) });
    } catch (err) {
      reply({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  });
});
process.on('disconnect', () => {
  void generator.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 6_000).unref();
});
