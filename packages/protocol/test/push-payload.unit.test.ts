import { readPushPayload } from '../src/index';

describe('readPushPayload', () => {
  it('reads the fields of a payload the nodes send', () => {
    expect(readPushPayload('{"chatId":"c1","collapseId":"k1","badge":3}')).toEqual({
      chatId: 'c1',
      collapseId: 'k1',
      badge: 3,
    });
    expect(
      readPushPayload('{"chatId":"c1","collapseId":"k1","badge":0,"title":"New message from ada"}'),
    ).toEqual({ chatId: 'c1', collapseId: 'k1', badge: 0, title: 'New message from ada' });
  });

  it('keeps only well-formed fields of anything else', () => {
    for (const text of [null, '', 'not json', '[1,2]', '7', 'null'])
      expect(readPushPayload(text)).toEqual({});
    expect(
      readPushPayload('{"chatId":"","collapseId":5,"badge":-1,"title":7,"body":"secret"}'),
    ).toEqual({});
    expect(readPushPayload('{"chatId":"c2","badge":2.5}')).toEqual({ chatId: 'c2' });
  });
});
