/**
 * Issue 16, item 9 end to end, with SDK clients on a real node: blocking (no chat with, add of,
 * or message to the blocker in their one-to-one chat; unblocking restores all three) and the
 * last-seen visibility setting (everyone / contacts / nobody).
 */
import { ChatClient } from '@chat/client';
import { ChatError } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import { startSingleNode, testToken, waitFor } from '@chat/testkit';

let h: SingleNode;
const open: ChatClient[] = [];

beforeAll(async () => {
  h = await startSingleNode();
});
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await h.close();
});

async function connect(user: string): Promise<ChatClient> {
  const client = new ChatClient({
    url: h.node.url,
    user,
    token: () => testToken(user, 'd1'),
    backoffBaseMs: 20,
    backoffMaxMs: 200,
  });
  open.push(client);
  await client.connect();
  return client;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ChatError) return err.code;
    throw err;
  }
  throw new Error('expected a ChatError');
}

test('a blocked user can neither start a chat with, add, nor message the blocker, until unblocked', async () => {
  const alice = await connect('bk-alice');
  const bob = await connect('bk-bob');
  const carol = await connect('bk-carol');
  const fromBob: string[] = [];
  alice.on('event', (e) => {
    if (e.kind === 'message' && e.from === 'bk-bob') fromBob.push(e.body ?? '');
  });
  const { chatId: direct } = await alice.createChat(['bk-bob']);
  const { chatId: group } = await bob.createChat(['bk-carol'], 'group');
  const { chatId: shared } = await carol.createChat(['bk-alice', 'bk-bob'], 'all three');
  await bob.send(direct, 'hi alice');

  await alice.block('bk-bob');
  expect(await alice.blockedUsers()).toEqual(['bk-bob']);

  expect(await codeOf(bob.createChat(['bk-alice']))).toBe('BLOCKED');
  expect(await codeOf(bob.addMembers(group, ['bk-alice']))).toBe('BLOCKED');
  expect(await codeOf(bob.send(direct, 'still there?'))).toBe('BLOCKED');
  // The blocker still writes to them, and a group the two share still carries both.
  await alice.send(direct, 'I can still write');
  await bob.send(shared, 'hello everyone');
  await waitFor(() => expect(fromBob).toContain('hello everyone'));

  await alice.unblock('bk-bob');
  expect(await alice.blockedUsers()).toEqual([]);
  await bob.send(direct, 'back again');
  await bob.addMembers(group, ['bk-alice']);
  await bob.createChat(['bk-alice']);
  await waitFor(() => expect(fromBob).toEqual(['hi alice', 'hello everyone', 'back again']));
});

test('last seen is shown to everyone, to users sharing a chat, or to nobody, as set', async () => {
  const target = await connect('ls-target');
  const friend = await connect('ls-friend');
  const stranger = await connect('ls-stranger');
  await friend.createChat(['ls-target']);

  // The default, as before: users who share a chat.
  expect(await target.privacy()).toEqual({ lastSeen: 'contacts' });
  expect(await friend.lastSeen('ls-target')).toMatchObject({ online: true });
  expect(await codeOf(stranger.lastSeen('ls-target'))).toBe('NOT_FOUND');

  expect(await target.privacy({ lastSeen: 'nobody' })).toEqual({ lastSeen: 'nobody' });
  expect(await friend.lastSeen('ls-target')).toEqual({
    online: false,
    lastSeen: null,
    hidden: true,
  });
  expect(await codeOf(stranger.lastSeen('ls-target'))).toBe('NOT_FOUND');
  // One's own is always there.
  expect(await target.lastSeen('ls-target')).toMatchObject({ online: true });

  await target.privacy({ lastSeen: 'everyone' });
  // Written shortly after the welcome (coalesced): asked until it is there.
  await waitFor(async () =>
    expect(await stranger.lastSeen('ls-target')).toEqual({
      online: true,
      lastSeen: expect.any(Number),
    }),
  );
  expect(await friend.lastSeen('ls-target')).toMatchObject({ online: true });

  // A block hides it from the blocked user, whatever the setting.
  await target.block('ls-stranger');
  expect(await codeOf(stranger.lastSeen('ls-target'))).toBe('NOT_FOUND');
  await target.block('ls-friend');
  expect(await friend.lastSeen('ls-target')).toEqual({
    online: false,
    lastSeen: null,
    hidden: true,
  });
});
