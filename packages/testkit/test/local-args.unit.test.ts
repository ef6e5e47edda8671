import { LOCAL_USAGE, LocalArgsError, parseLocalArgs } from '../src/local-args';

describe('npm start arguments', () => {
  it('is insecure by default and secure with --secure', () => {
    expect(parseLocalArgs([]).secure).toBe(false);
    expect(parseLocalArgs(['--secure', '--nodes', '2'])).toEqual({
      nodes: 2,
      members: 2,
      citus: false,
      secure: true,
    });
    expect(LOCAL_USAGE).toContain('--secure');
  });

  it('takes --name=value as well as --name value', () => {
    expect(parseLocalArgs(['--nodes=4', '--members', '3', '--citus'])).toEqual({
      nodes: 4,
      members: 3,
      citus: true,
      secure: false,
    });
  });

  it.each([
    [['--tls'], 'unknown option --tls'],
    [['4'], 'unexpected argument "4"'],
    [['--nodes'], '--nodes needs a whole number from 1 to 32, got nothing'],
    [['--members', '--citus'], '--members needs a whole number from 1 to 32, got "--citus"'],
    [['--nodes=0'], '--nodes needs a whole number from 1 to 32, got "0"'],
    [['--citus=yes'], '--citus takes no value'],
    [['--nodes', '2', '--members', '3'], '--members (3) cannot exceed --nodes (2)'],
  ])('%j is a usage error (exit 2) naming the option: %s', (argv, problem) => {
    expect(() => parseLocalArgs(argv)).toThrow(
      expect.objectContaining({
        exitCode: 2,
        message: `${problem}; ${LOCAL_USAGE}`,
      }),
    );
    expect(() => parseLocalArgs(argv)).toThrow(LocalArgsError);
  });
});
