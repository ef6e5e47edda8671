import { LOCAL_USAGE, parseLocalArgs } from '../src/local-args';

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

  it('names an unknown argument and shows the usage', () => {
    expect(() => parseLocalArgs(['--tls'])).toThrow(`unknown argument "--tls"; ${LOCAL_USAGE}`);
  });
});
