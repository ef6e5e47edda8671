/** Peer payloads are rebuilt from their fields before they reach a frame (issue 16, item 5). */
import { ChatError } from '@chat/protocol';
import {
  deliverRequestFromPeer,
  receiptNoticesFromPeer,
  typingRequestFromPeer,
} from '../../src/cluster/peer-payloads';
import { eventFrame } from '../../src/event-frame';

const message = {
  seq: 7,
  kind: 'message',
  chatId: 'c1',
  messageId: '42',
  from: 'bob',
  body: 'hi',
  attachments: [{ key: 'k', mime: 'image/png', size: 3 }],
  ts: 1000,
};

it("a peer's event carrying t: 'welcome' still becomes an evt frame, without foreign fields", () => {
  const req = deliverRequestFromPeer({
    deliveries: [{ userId: 'alice', event: { ...message, t: 'welcome', storeEpoch: 'forged' } }],
  });
  const frame = eventFrame(req.deliveries[0]!.event);
  expect(frame).toEqual({ t: 'evt', ...message });
  expect(frame).not.toHaveProperty('storeEpoch');
});

it('keeps exactly the fields of chat and receipt events', () => {
  const chat = {
    seq: 1,
    kind: 'chat',
    chatId: 'c',
    change: 'membersAdded',
    members: ['a'],
    by: 'b',
    admin: true,
    ts: 5,
  };
  const receipt = {
    seq: 2,
    kind: 'receipt',
    chatId: 'c',
    messageId: '9',
    user: 'a',
    status: 'read',
    ts: 6,
  };
  const { deliveries } = deliverRequestFromPeer({
    deliveries: [
      { userId: 'a', event: { ...chat, t: 'moved' } },
      { userId: 'a', event: { ...receipt, t: 'ping', extra: 1 } },
    ],
  });
  expect(deliveries.map((d) => eventFrame(d.event))).toEqual([
    { t: 'evt', ...chat },
    { t: 'evt', ...receipt },
  ]);
});

it.each([
  ['a deliveries field that is not a list', { deliveries: 'x' }],
  [
    'an unknown event kind',
    { deliveries: [{ userId: 'a', event: { ...message, kind: 'welcome' } }] },
  ],
  [
    'a seq that is not a number',
    { deliveries: [{ userId: 'a', event: { ...message, seq: '7' } }] },
  ],
  ['a user id that is an object', { deliveries: [{ userId: { $ne: 1 }, event: message }] }],
  [
    'an attachment size that is a string',
    {
      deliveries: [
        { userId: 'a', event: { ...message, attachments: [{ key: 'k', mime: 'm', size: '1' }] } },
      ],
    },
  ],
])('refuses %s with BAD_REQUEST', (_name, payload) => {
  let thrown: unknown;
  try {
    deliverRequestFromPeer(payload);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ChatError);
  expect((thrown as ChatError).code).toBe('BAD_REQUEST');
});

it('rebuilds receipt notices and typing items from their fields', () => {
  expect(
    receiptNoticesFromPeer({
      notices: [{ chatId: 'c', reader: 'a', delivered: '3', read: null, notify: ['b'], t: 'x' }],
    }),
  ).toEqual({ notices: [{ chatId: 'c', reader: 'a', delivered: '3', read: null, notify: ['b'] }] });
  expect(
    typingRequestFromPeer({ items: [{ chatId: 'c', user: 'a', to: ['b'], t: 'welcome' }] }),
  ).toEqual({
    items: [{ chatId: 'c', user: 'a', to: ['b'] }],
  });
  expect(() => typingRequestFromPeer({ items: [{ chatId: 'c', user: 'a', to: 'b' }] })).toThrow(
    'invalid typing recipients from peer',
  );
});
