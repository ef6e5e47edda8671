/** The commands that need no cluster, and the errors found before connecting to one. */
import { verifyToken } from '@chat/protocol';
import cliPackage from '../package.json';
import { ExitCode } from '../src/errors';
import { run } from '../src/run';
import type { CliIo } from '../src/context';

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

test('--help lists every command with every option it takes', async () => {
  const { io, out } = fakeIo();
  expect(await run(['--help'], io)).toBe(ExitCode.OK);
  const usage = (command: string): string =>
    out()
      .split('\n')
      .find((line) => line.trim().startsWith(`chatctl ${command} `)) ?? '';
  expect(usage('scale-out')).toContain('[--dry-run] [--json]');
  expect(usage('token')).toContain('[--json]');
  for (const option of [
    '--rate N',
    '--weight W',
    '--wait',
    '--timeout S',
    '--dry-run',
    '--ttl S',
  ]) {
    expect(out()).toContain(`      ${option} `);
  }
  expect(out()).toContain('-h, --help');
  expect(out()).toContain('--version');

  const json = fakeIo();
  expect(await run(['help', '--json'], json.io)).toBe(ExitCode.OK);
  const doc = JSON.parse(json.out()) as {
    commands: { name: string; options: { name: string }[] }[];
  };
  const scaleIn = doc.commands.find((c) => c.name === 'scale-in');
  expect(scaleIn?.options.map((o) => o.name)).toEqual([
    'rate',
    'wait',
    'timeout',
    'dry-run',
    'json',
    'etcd',
    'prefix',
    'help',
  ]);
});

test('--version names the package and the wire protocol', async () => {
  const text = fakeIo();
  expect(await run(['--version'], text.io)).toBe(ExitCode.OK);
  expect(text.out()).toBe(
    `chatctl ${cliPackage.version} (wire protocol chat.v1.json, chat.v1.msgpack; ` +
      'features no-echo, receipt-marks, overlap-moves)\n',
  );
  const json = fakeIo();
  expect(await run(['--version', '--json'], json.io)).toBe(ExitCode.OK);
  expect(JSON.parse(json.out())).toEqual({
    chatctl: cliPackage.version,
    protocol: {
      subprotocols: ['chat.v1.json', 'chat.v1.msgpack'],
      features: ['no-echo', 'receipt-marks', 'overlap-moves'],
    },
  });
});

test.each([
  [['scale-out', 'node-4', '--rate'], 'option --rate needs a value'],
  [['scale-in', 'node-4', '--frobnicate'], 'unknown option --frobnicate'],
  [['scale-out', 'node-4', '--dry-run', '--wait'], '--dry-run writes nothing'],
  [['--prefix', 'status'], 'unknown option --prefix'],
  [['--help', 'status'], 'options go after the command: chatctl status --help'],
])('%j exits 2 naming the problem: %s', async (argv, message) => {
  const { io, out, err } = fakeIo();
  expect(await run(argv, io)).toBe(ExitCode.USAGE);
  expect(out()).toBe('');
  expect(err()).toContain(`chatctl: ${message}`);
});

test('with --json every error is one JSON document on stdout, stderr silent', async () => {
  for (const argv of [
    ['scale-out', 'node-4', '--json', '--rate'],
    ['status', '--json', '--bogus'],
    ['route', '--json'],
    ['token', 'alice', 'phone', '--json'],
  ]) {
    const { io, out, err } = fakeIo();
    expect(await run(argv, io)).toBe(ExitCode.USAGE);
    expect(err()).toBe('');
    const doc = JSON.parse(out()) as { error: { code: string; exitCode: number; message: string } };
    expect(doc.error).toEqual({ code: 'USAGE', exitCode: 2, message: expect.any(String) });
  }
});

test('token --json gives the token with its claims', async () => {
  const { io, out } = fakeIo({ CHAT_AUTH_SECRET: 's3cret' });
  expect(await run(['token', 'alice', 'phone', '--ttl', '60', '--json'], io)).toBe(ExitCode.OK);
  const doc = JSON.parse(out()) as { token: string };
  expect(doc).toEqual({
    token: expect.any(String),
    user: 'alice',
    device: 'phone',
    issuedAt: 1_800_000_000,
    expiresAt: 1_800_000_060,
  });
  expect(verifyToken(doc.token, 's3cret', 1_800_000_000_000).sub).toBe('alice');
});
