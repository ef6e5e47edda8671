import { parseArgv, positiveOption, wantsJson } from '../src/argv';
import type { FlagSpec } from '../src/argv';
import { UsageError } from '../src/errors';

const spec: Record<string, FlagSpec> = {
  rate: { type: 'number', description: '' },
  wait: { type: 'boolean', description: '' },
  etcd: { type: 'string', description: '' },
  help: { type: 'boolean', short: 'h', description: '' },
};

test('positionals and flags in any order, with = or a separate value', () => {
  expect(
    parseArgv(['node-4', '--rate', '40', '--wait', 'node-5', '--etcd=http://a:1,http://b:2'], spec),
  ).toEqual({
    positionals: ['node-4', 'node-5'],
    flags: { rate: 40, wait: true, etcd: 'http://a:1,http://b:2' },
  });
  expect(parseArgv(['--rate=2.5'], spec).flags).toEqual({ rate: 2.5 });
  expect(parseArgv(['-h'], spec).flags).toEqual({ help: true });
});

test('-- ends the options', () => {
  expect(parseArgv(['a', '--', '--wait', 'x'], spec)).toEqual({
    positionals: ['a', '--wait', 'x'],
    flags: {},
  });
});

test('a value that starts with a dash is taken only after =', () => {
  expect(parseArgv(['--rate=-1'], spec).flags).toEqual({ rate: -1 });
  expect(() => parseArgv(['--rate', '-1'], spec)).toThrow(
    'option --rate needs a value (write --rate=-1 if you mean it)',
  );
});

test('--json is seen before the options are parsed, but not after --', () => {
  expect(wantsJson(['scale-out', '--bogus', '--json'])).toBe(true);
  expect(wantsJson(['route', '--', '--json'])).toBe(false);
});

test.each([
  [['--bogus'], 'unknown option --bogus'],
  [['-x'], 'unknown option -x'],
  [['-5'], 'unknown option -5'],
  [['--constructor'], 'unknown option --constructor'],
  [['--rate'], 'option --rate needs a value'],
  [['--rate', '--wait'], 'option --rate needs a value'],
  [['--rate', 'fast'], 'option --rate needs a number, got "fast"'],
  [['--rate='], 'option --rate needs a number'],
  [['--wait=yes'], 'option --wait takes no value'],
  [['--wait', '--wait'], 'option --wait given twice'],
])('%j is a usage error: %s', (argv, message) => {
  expect(() => parseArgv(argv, spec)).toThrow(UsageError);
  expect(() => parseArgv(argv, spec)).toThrow(message);
});

test('positiveOption refuses zero and negatives', () => {
  expect(positiveOption(parseArgv(['--rate', '3'], spec), 'rate')).toBe(3);
  expect(positiveOption(parseArgv([], spec), 'rate')).toBeUndefined();
  expect(() => positiveOption(parseArgv(['--rate', '0'], spec), 'rate')).toThrow(
    '--rate must be a positive number, got 0',
  );
  expect(() => positiveOption(parseArgv(['--rate=-1'], spec), 'rate')).toThrow(UsageError);
});
