/** Who sees whose last seen (issue 16, item 9): the pure decision of last-seen-policy.ts. */
import type { LastSeenVisibility } from '@chat/protocol';
import { lastSeenAccess } from '../src/last-seen-policy';

const ask = (
  visibility: LastSeenVisibility,
  shared: boolean,
  blocksAsker = false,
  asker = 'bob',
): string => lastSeenAccess({ asker, target: 'alice', shared, visibility, blocksAsker });

test.each([
  // visibility, shares a chat, expected
  ['everyone', true, 'visible'],
  ['everyone', false, 'visible'],
  ['contacts', true, 'visible'],
  ['contacts', false, 'notFound'],
  ['nobody', true, 'hidden'],
  ['nobody', false, 'notFound'],
] as const)('%s, sharing a chat: %s -> %s', (visibility, shared, expected) => {
  expect(ask(visibility, shared)).toBe(expected);
});

test('a block hides it from the blocked user whatever the setting', () => {
  expect(ask('everyone', false, true)).toBe('notFound');
  expect(ask('everyone', true, true)).toBe('hidden');
  expect(ask('contacts', true, true)).toBe('hidden');
});

test('a user always sees their own', () => {
  expect(ask('nobody', false, false, 'alice')).toBe('visible');
});
