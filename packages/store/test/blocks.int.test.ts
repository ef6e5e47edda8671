/**
 * Issue 16, item 9 in the store: blocks and the last-seen visibility setting. Runs on plain
 * PostgreSQL and (jest project `citus`) on Citus, where every store here uses connections that
 * refuse a statement reaching more than one shard.
 */
import { ChatError } from '@chat/protocol';
import type { Kysely } from 'kysely';
import {
  PgGroupStore,
  PgPresenceStore,
  PgPrivacyStore,
  type Database,
  type PgChatStore,
} from '../src/index';
import { sendInput, storeFixture } from './helpers';
import type { StoreFixture } from './helpers';

let fx: StoreFixture;
let store: PgChatStore;
let db: Kysely<Database>;
let groups: PgGroupStore;
let privacy: PgPrivacyStore;
let presence: PgPresenceStore;

beforeAll(async () => {
  fx = await storeFixture('blocks');
  store = await fx.store();
  db = fx.storeDb();
  groups = new PgGroupStore(db, { maxMembersPerChat: 10 }, store);
  privacy = new PgPrivacyStore(db);
  presence = new PgPresenceStore(db);
});
afterAll(async () => {
  await fx.close();
});

async function rejection(promise: Promise<unknown>): Promise<ChatError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return err as ChatError;
  }
  throw new Error('expected a rejection');
}

describe('blocking', () => {
  it('refuses the blocked user a chat with, an add of, and a message to the blocker', async () => {
    const { chatId: direct } = await store.createChat('b1-a', ['b1-b'], null, 1);
    const { chatId: group } = await store.createChat('b1-b', ['b1-c'], 'g', 1);
    await store.send(sendInput('b1-b', direct));

    await privacy.block('b1-a', 'b1-b', 10);
    expect(await privacy.blocked('b1-a')).toEqual(['b1-b']);

    const created = await rejection(store.createChat('b1-b', ['b1-a'], null, 11));
    expect(created.code).toBe('BLOCKED');
    // Not in a group with others either.
    expect((await rejection(store.createChat('b1-b', ['b1-c', 'b1-a'], 'g2', 11))).code).toBe(
      'BLOCKED',
    );
    expect((await rejection(groups.addMembers('b1-b', group, ['b1-a'], {}, 12))).code).toBe(
      'BLOCKED',
    );
    expect((await rejection(store.send(sendInput('b1-b', direct)))).code).toBe('BLOCKED');
    // The blocker still writes; the blocked user still reads.
    await store.send(sendInput('b1-a', direct));

    await privacy.unblock('b1-a', 'b1-b');
    expect(await privacy.blocked('b1-a')).toEqual([]);
    await store.send(sendInput('b1-b', direct));
    await groups.addMembers('b1-b', group, ['b1-a'], {}, 13);
    await store.createChat('b1-b', ['b1-a'], null, 14);
  });

  it('lets a blocked user send in a group with the blocker, until it is down to the two', async () => {
    const { chatId } = await store.createChat('b2-c', ['b2-a', 'b2-b'], 'g', 1);
    await privacy.block('b2-a', 'b2-b', 2);
    await store.send(sendInput('b2-b', chatId));
    // Someone else may add the blocker to a group the blocked user is in.
    const { chatId: other } = await store.createChat('b2-c', ['b2-b'], 'h', 3);
    await groups.addMembers('b2-c', other, ['b2-a'], {}, 4);
    await store.send(sendInput('b2-b', other));
    // Once the third member leaves, each chat is the two of them: the block holds there.
    await groups.removeMembers('b2-c', chatId, ['b2-c'], 5);
    await groups.removeMembers('b2-c', other, ['b2-c'], 5);
    expect((await rejection(store.send(sendInput('b2-b', chatId)))).code).toBe('BLOCKED');
    expect((await rejection(store.send(sendInput('b2-b', other)))).code).toBe('BLOCKED');
  });

  it('holds in a one-to-one chat the blocker creates after blocking', async () => {
    await privacy.block('b3-a', 'b3-b', 1);
    const { chatId } = await store.createChat('b3-a', ['b3-b'], null, 2);
    expect((await rejection(store.send(sendInput('b3-b', chatId)))).code).toBe('BLOCKED');
    await store.send(sendInput('b3-a', chatId));
  });

  it('counts only blocks by a current member', async () => {
    // b4-a blocked b4-b in a group, then left: b4-b and b4-c are two, and neither blocked.
    const { chatId } = await store.createChat('b4-c', ['b4-a', 'b4-b'], 'g', 1);
    await privacy.block('b4-a', 'b4-b', 2);
    await groups.removeMembers('b4-a', chatId, ['b4-a'], 3);
    await store.send(sendInput('b4-b', chatId));
  });

  it('refuses blocking oneself, and keeps a block once however often it is made', async () => {
    expect((await rejection(privacy.block('b5-a', 'b5-a', 1))).code).toBe('BAD_REQUEST');
    await privacy.block('b5-a', 'b5-z', 1);
    await privacy.block('b5-a', 'b5-z', 2);
    await privacy.block('b5-a', 'b5-m', 2);
    expect(await privacy.blocked('b5-a')).toEqual(['b5-m', 'b5-z']);
  });
});

describe('last-seen visibility', () => {
  it('is contacts until set, and comes with whether the target blocked the asker', async () => {
    await store.connectDevice('v-a', 'd1', 1);
    await presence.touch(['v-a'], 50);
    expect(await privacy.lastSeenVisibility('v-a')).toBe('contacts');
    expect(await privacy.lastSeenVisibility('v-never-seen')).toBe('contacts');
    expect(await presence.lastSeenFor('v-b', 'v-a')).toEqual({
      shared: false,
      lastSeen: 50,
      visibility: 'contacts',
      blocksAsker: false,
    });

    await privacy.setLastSeenVisibility('v-a', 'nobody');
    expect(await privacy.lastSeenVisibility('v-a')).toBe('nobody');
    await privacy.setLastSeenVisibility('v-a', 'everyone');
    await privacy.block('v-a', 'v-b', 60);
    expect(await presence.lastSeenFor('v-b', 'v-a')).toMatchObject({
      visibility: 'everyone',
      blocksAsker: true,
    });
    // A user without a device yet can set it too.
    await privacy.setLastSeenVisibility('v-new', 'nobody');
    expect(await privacy.lastSeenVisibility('v-new')).toBe('nobody');
  });
});
