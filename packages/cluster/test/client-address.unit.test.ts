import {
  InvalidTrustedProxies,
  NO_TRUSTED_PROXIES,
  clientAddress,
  parseTrustedProxies,
} from '../src/client-address';

const EDGE = parseTrustedProxies('CHAT_TRUSTED_PROXIES', ['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

describe('clientAddress', () => {
  it('is the peer when nobody is trusted, whatever the header says', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.7', NO_TRUSTED_PROXIES)).toBe('203.0.113.9');
  });

  it('is the peer when the peer is not a trusted proxy', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.7', EDGE)).toBe('203.0.113.9');
  });

  it("takes the trusted edge's word for its client", () => {
    expect(clientAddress('127.0.0.1', '198.51.100.7', EDGE)).toBe('198.51.100.7');
    expect(clientAddress('::ffff:127.0.0.1', '198.51.100.7', EDGE)).toBe('198.51.100.7');
  });

  it('walks from the right past trusted hops only: a client cannot pick its address', () => {
    // The client wrote "1.2.3.4" itself; the edge appended the real peer.
    expect(clientAddress('10.0.0.2', '1.2.3.4, 198.51.100.7, 10.0.0.3', EDGE)).toBe('198.51.100.7');
  });

  it('stops at garbage and keeps the last sound address', () => {
    expect(clientAddress('10.0.0.2', 'evil, 10.0.0.3', EDGE)).toBe('10.0.0.3');
    expect(clientAddress('10.0.0.2', '', EDGE)).toBe('10.0.0.2');
  });

  it('knows IPv6 blocks', () => {
    expect(clientAddress('fd00::5', '2001:db8::1', EDGE)).toBe('2001:db8::1');
  });
});

describe('parseTrustedProxies', () => {
  it.each(['localhost', '10.0.0.0/33', '10.0.0.0/8/1', '::1/129', '10.0.0.0/x', ''])(
    'refuses %j with the variable named',
    (entry) => {
      expect(() => parseTrustedProxies('CHAT_TRUSTED_PROXIES', [entry])).toThrow(
        new InvalidTrustedProxies(
          `CHAT_TRUSTED_PROXIES must be comma-separated IP addresses or CIDR blocks, got ${JSON.stringify(entry)}`,
        ),
      );
    },
  );
});
