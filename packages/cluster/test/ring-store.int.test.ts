import type { Etcd3 } from 'etcd3';
import { RingConfigStore } from '../src';
import { client, startEtcd } from './helpers';
import type { EtcdHandle } from './helpers';

let etcd: EtcdHandle;
const opened: Etcd3[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  for (const c of opened) c.close();
  await etcd?.close();
});

const member = (id: string) => ({ id, weight: 1 });

test('reads nothing, then what was written, with its mod revision', async () => {
  const store = new RingConfigStore({ etcd: client(etcd.endpoint, opened), prefix: '/t-read/' });
  expect(await store.readRing()).toBeUndefined();
  const result = await store.casRing(0, { epoch: 1, members: [member('a')] });
  expect(result).toEqual({ ok: true, revision: expect.any(Number) });
  expect(await store.readRing()).toEqual({
    config: { epoch: 1, members: [member('a')] },
    modRevision: result.ok ? result.revision : -1,
  });
});

test('two operators racing with the same expected revision: exactly one wins', async () => {
  const prefix = '/t-race';
  const one = new RingConfigStore({ etcd: client(etcd.endpoint, opened), prefix });
  const two = new RingConfigStore({ etcd: client(etcd.endpoint, opened), prefix });
  const base = await one.casRing(0, { epoch: 1, members: [member('a')] });
  if (!base.ok) throw new Error('setup failed');

  for (let round = 0; round < 5; round++) {
    const current = await one.readRing();
    if (!current) throw new Error('ring missing');
    const epoch = current.config.epoch + 1;
    const results = await Promise.all([
      one.casRing(current.modRevision, { epoch, members: [member('a'), member(`x${round}`)] }),
      two.casRing(current.modRevision, { epoch, members: [member('a'), member(`y${round}`)] }),
    ]);
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const loser = results.find((r) => !r.ok);
    const after = await one.readRing();
    expect(after?.config.epoch).toBe(epoch);
    // The loser is told what won.
    expect(loser && !loser.ok ? loser.current : undefined).toEqual(after);
  }
});

test('a stale expected revision, "must not exist" on an existing key, and a wrong epoch are refused', async () => {
  const store = new RingConfigStore({ etcd: client(etcd.endpoint, opened), prefix: '/t-rules' });
  const first = await store.casRing(0, { epoch: 1, members: [member('a')] });
  if (!first.ok) throw new Error('setup failed');
  const again = await store.casRing(0, { epoch: 1, members: [member('b')] });
  expect(again).toEqual({ ok: false, current: await store.readRing() });
  const second = await store.casRing(first.revision, { epoch: 2, members: [member('b')] });
  expect(second.ok).toBe(true);
  const stale = await store.casRing(first.revision, { epoch: 2, members: [member('c')] });
  expect(stale.ok).toBe(false);
  const latest = await store.readRing();
  await expect(
    store.casRing(latest?.modRevision ?? -1, { epoch: 5, members: [member('c')] }),
  ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  await expect(
    store.casRing(latest?.modRevision ?? -1, { epoch: 3, members: [member('c'), member('c')] }),
  ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  expect((await store.readRing())?.config.members).toEqual([member('b')]);
});

test('etcd down: UNAVAILABLE', async () => {
  const store = new RingConfigStore({
    etcd: client('http://127.0.0.1:1', opened),
    prefix: '/t-down',
  });
  await expect(store.readRing()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
});
