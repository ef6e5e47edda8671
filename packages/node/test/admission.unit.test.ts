import { Admission, addressKey } from '../src/admission';
import type { AdmissionPolicy } from '../src/admission';

const policy: AdmissionPolicy = {
  ratePerSec: 100,
  burst: 10,
  perUserPerSec: 1,
  perUserBurst: 3,
  perAddressPerSec: 2,
  perAddressBurst: 5,
  maxTrackedKeys: 100,
};

describe('Admission', () => {
  it('refuses a user past its burst (scope user) without using the node budget', () => {
    const a = new Admission(policy, 0);
    for (let i = 0; i < 3; i++) expect(a.admit('mallory', `10.0.0.${i}`, 0).scope).toBeUndefined();
    for (let i = 0; i < 20; i++) expect(a.admit('mallory', `10.0.1.${i}`, 0).scope).toBe('user');
    // The node's 10 minus mallory's 3 are left for everyone else.
    for (let i = 0; i < 7; i++) expect(a.admit(`u${i}`, `10.0.2.${i}`, 0).scope).toBeUndefined();
    expect(a.admit('late', '10.0.3.1', 0)).toEqual({ scope: 'node', retryAfterSec: 1 });
    // A second later mallory has one token again.
    expect(a.admit('mallory', '10.0.4.1', 1000).scope).toBeUndefined();
  });

  it('refuses an address past its burst whatever the users, with a Retry-After', () => {
    const a = new Admission({ ...policy, perAddressPerSec: 1, ratePerSec: 1000, burst: 1000 }, 0);
    for (let i = 0; i < 5; i++) expect(a.admit(`u${i}`, '10.0.0.1', 0).scope).toBeUndefined();
    expect(a.admit('u9', '10.0.0.1', 0)).toEqual({ scope: 'address', retryAfterSec: 1 });
    expect(a.admit('u9', '10.0.0.2', 0).scope).toBeUndefined();
  });

  it('0 turns the per-user and per-address limits off', () => {
    const a = new Admission({ ...policy, perUserPerSec: 0, perAddressPerSec: 0 }, 0);
    for (let i = 0; i < 10; i++) expect(a.admit('same', 'same', 0).scope).toBeUndefined();
    expect(a.admit('same', 'same', 0).scope).toBe('node');
    expect(a.tracked()).toEqual({ users: 0, addresses: 0 });
  });

  it('keeps memory bounded: a cap on keys, and idle keys expire', () => {
    const a = new Admission({ ...policy, ratePerSec: 1e6, burst: 1e6, maxTrackedKeys: 100 }, 0);
    for (let i = 0; i < 1000; i++) a.admit(`u${i}`, `a${i}`, 0);
    expect(a.tracked()).toEqual({ users: 100, addresses: 100 });
    // Past the refill time (3 s for users, 2.5 s for addresses) old keys go a few per admit.
    for (let i = 0; i < 60; i++) a.admit('fresh', 'fresh', 10_000 + i);
    expect(a.tracked()).toEqual({ users: 1, addresses: 1 });
  });
});

describe('addressKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.0.0.7', '10.0.0.7'],
    ['0000:0000:0000:0000:0000:ffff:10.0.0.7', '10.0.0.7'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0db8:0000:0000:1111:2222:3333:4444', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:ffff::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('%s -> %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
