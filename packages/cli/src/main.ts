/** `chatctl` entry point: wires the process to {@link run} and exits with its code. */
import type { CliIo } from './context';
import { run } from './run';

const io: CliIo = {
  stdout: { write: (text) => process.stdout.write(text) },
  stderr: {
    write: (text) => process.stderr.write(text),
    isTTY: process.stderr.isTTY === true,
  },
  env: process.env,
  now: () => Date.now(),
  onInterrupt: (handler) => {
    process.on('SIGINT', handler);
    return () => process.off('SIGINT', handler);
  },
};

run(process.argv.slice(2), io).then(
  (code) => {
    // Exit explicitly: a closed etcd client can keep gRPC handles open for a while.
    process.stdout.write('', () => process.exit(code));
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
