import { UsageError } from '@chat/cli';
import { BENCH_USAGE, parseBenchArgs } from '../src/bench-args';

test('a workload with options, in any order, --name value or --name=value', () => {
  expect(
    parseBenchArgs(['--users=3000', 'rebalance', '--quick', '--drain-rate', '200', '--out', 'r-1']),
  ).toEqual({
    workload: 'rebalance',
    repeats: undefined,
    codec: 'json',
    users: 3000,
    quick: true,
    ackMs: undefined,
    out: 'r-1',
    rate: undefined,
    citus: false,
    legacyMoves: false,
    drainRate: 200,
    profile: false,
    minutes: undefined,
  });
  expect(parseBenchArgs(['idle', '--codec', 'msgpack', '--citus']).codec).toBe('msgpack');
});

test.each([
  [[], 'name a workload'],
  [['idle', '--bogus'], 'unknown option --bogus'],
  [['idle', '--users'], 'option --users needs a value'],
  [['idle', '--users', '--quick'], 'option --users needs a value'],
  [['idle', '--users', 'many'], 'option --users needs a number, got "many"'],
  [['idle', '--users', '2.5'], '--users must be a positive integer, got 2.5'],
  [['idle', '--quick=yes'], 'option --quick takes no value'],
  [['idle', '--codec', 'xml'], '--codec takes json or msgpack, got "xml"'],
  [['idle', '--out', '../x'], '--out takes a plain file base name'],
  [['idle', 'soak'], 'unexpected argument soak'],
])('%j is a usage error (exit 2) naming the problem: %s', (argv, problem) => {
  expect(() => parseBenchArgs(argv)).toThrow(
    expect.objectContaining({
      name: expect.any(String),
      exitCode: 2,
      message: `${problem}\n${BENCH_USAGE}`,
    }),
  );
  expect(() => parseBenchArgs(argv)).toThrow(UsageError);
});
