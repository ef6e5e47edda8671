/** The commands that need no cluster, and the errors found before connecting to one. */
import { verifyToken } from '@chat/protocol';
import { ExitCode } from '../src/errors';
import { run } from '../src/run';
import type { CliIo } from '../src/run';

function fakeIo(env: Record<string, string> = {}): {
  io: CliIo;
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (t) => void (out += t) },
      stderr: { write: (t) => void (err += t), isTTY: false },
      env,
      now: () => 1_800_000_000_000,
      onInterrupt: () => () => undefined,
    },
    out: () => out,
    err: () => err,
  };
}

test('help lists the commands and the exit codes', async () => {
  const { io, out } = fakeIo();
  expect(await run(['help'], io)).toBe(ExitCode.OK);
  for (const word of ['status', 'ring', 'route', 'scale-out', 'scale-in', 'drain-rate', 'token']) {
    expect(out()).toContain(`  ${word} `);
  }
  expect(out()).toContain('  3  the ring changed concurrently');
});

test('--help of a command shows its options', async () => {
  const { io, out } = fakeIo();
  expect(await run(['scale-in', '--help'], io)).toBe(ExitCode.OK);
  expect(out()).toContain('Usage: chatctl scale-in <nodeId>...');
  expect(out()).toContain('--timeout S');
  expect(out()).toContain('--etcd URLS');
});

test.each([
  [[], 'Usage: chatctl <command>'],
  [['frobnicate'], 'unknown command "frobnicate"'],
  [['status', 'extra'], 'unexpected argument extra'],
  [['scale-out', 'node-4', '--timeout', '5'], '--timeout needs --wait'],
  [['route'], 'expected an argument, got 0'],
  [['status'], 'CHAT_ETCD_ENDPOINTS is not set'],
  [['token', 'alice'], 'expected <user> <device>, got 1'],
])('%j exits 2: %s', async (argv, message) => {
  const { io, err } = fakeIo();
  expect(await run(argv, io)).toBe(ExitCode.USAGE);
  expect(err()).toContain(message);
});

test('token signs with CHAT_AUTH_SECRET', async () => {
  const { io, out, err } = fakeIo({ CHAT_AUTH_SECRET: 's3cret' });
  expect(await run(['token', 'alice', 'phone', '--ttl', '60'], io)).toBe(ExitCode.OK);
  expect(err()).toBe('');
  expect(verifyToken(out().trim(), 's3cret', 1_800_000_000_000)).toEqual({
    sub: 'alice',
    dev: 'phone',
    iat: 1_800_000_000,
    exp: 1_800_000_060,
  });
});

test('token without a secret refuses, unless --dev (with a warning)', async () => {
  const refused = fakeIo();
  expect(await run(['token', 'alice', 'phone'], refused.io)).toBe(ExitCode.USAGE);
  expect(refused.out()).toBe('');
  expect(refused.err()).toContain('CHAT_AUTH_SECRET is not set');

  const dev = fakeIo();
  expect(await run(['token', 'alice', 'phone', '--dev'], dev.io)).toBe(ExitCode.OK);
  expect(dev.err()).toContain('warning');
  expect(verifyToken(dev.out().trim(), 'dev-secret', 1_800_000_000_000).sub).toBe('alice');
});

test('token refuses bad ids', async () => {
  const { io, err } = fakeIo({ CHAT_AUTH_SECRET: 'x' });
  expect(await run(['token', 'al ice', 'phone'], io)).toBe(ExitCode.USAGE);
  expect(err()).toContain('user id must be');
});
