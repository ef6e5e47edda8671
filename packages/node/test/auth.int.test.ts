/** Upgrade refusals (401, 403) and identity: a token for X can only ever act as X. */
import { createHmac } from 'node:crypto';
import { jsonCodec, signToken } from '@chat/protocol';
import type { SingleNode } from '@chat/testkit';
import {
  RawClient,
  TEST_SECRET,
  UpgradeRefused,
  countRows,
  startSingleNode,
  testToken,
} from '@chat/testkit';

let h: SingleNode;

beforeAll(async () => {
  h = await startSingleNode({ env: { CHAT_ALLOWED_ORIGINS: 'https://chat.example' } });
});
afterAll(async () => {
  await h.close();
});

const b64 = (v: object | string): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const exp = (): number => Math.floor(Date.now() / 1000) + 3600;

/** The HTTP status of the upgrade: 101 when it was accepted. */
async function upgradeStatus(token: string, origin?: string): Promise<number> {
  try {
    const c = await RawClient.connect({
      url: h.node.url,
      codec: jsonCodec,
      token,
      ...(origin ? { origin } : {}),
    });
    await c.close();
    return 101;
  } catch (err) {
    if (err instanceof UpgradeRefused) return err.status;
    throw err;
  }
}

describe('token checks at upgrade', () => {
  it.each([
    ['missing', ''],
    ['malformed', 'not-a-jwt'],
    ['two parts', 'a.b'],
    ['wrong secret', signToken({ sub: 'eve', dev: 'd', exp: exp() }, 'wrong-secret')],
    [
      'alg none',
      `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'eve', dev: 'd', exp: exp() })}.`,
    ],
    [
      'alg HS512 with a real HS512 signature',
      (() => {
        const input = `${b64({ alg: 'HS512', typ: 'JWT' })}.${b64({ sub: 'eve', dev: 'd', exp: exp() })}`;
        return `${input}.${createHmac('sha512', TEST_SECRET).update(input).digest('base64url')}`;
      })(),
    ],
    ['expired', testToken('eve', 'd', -10)],
    [
      'bad user id',
      signToken({ sub: 'ok', dev: 'd', exp: exp() }, TEST_SECRET).replace(/^[^.]+\.[^.]+/, (m) => {
        const [header] = m.split('.');
        return `${header}.${b64({ sub: 'bad id!', dev: 'd', exp: exp() })}`;
      }),
    ],
  ])('refuses a %s token with 401', async (_label, token) => {
    expect(await upgradeStatus(token)).toBe(401);
  });

  it('accepts a valid token, with no Origin or an allowed one', async () => {
    expect(await upgradeStatus(testToken('fine', 'd'))).toBe(101);
    expect(await upgradeStatus(testToken('fine', 'd'), 'https://chat.example')).toBe(101);
  });

  it('refuses a disallowed Origin with 403', async () => {
    expect(await upgradeStatus(testToken('fine', 'd'), 'https://evil.example')).toBe(403);
  });
});

describe('identity', () => {
  it('acts only as the user in the token, whatever the frames say', async () => {
    const x = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'xavier' });
    const y = await RawClient.ready({ url: h.node.url, codec: jsonCodec, user: 'yolanda' });
    // Frames carry no sender field; extra fields claiming another user are ignored.
    const chatId = (
      await x.ok({ t: 'createChat', members: ['zed'], user: 'yolanda', from: 'yolanda' })
    ).chatId as string;
    const sent = await x.ok({
      t: 'send',
      chatId,
      clientMsgId: 'c',
      body: 'hi',
      from: 'yolanda',
      sub: 'yolanda',
    });
    const row = await h.sql.query('SELECT sender_id FROM messages WHERE id = $1', [sent.messageId]);
    expect(row.rows[0]).toEqual({ sender_id: 'xavier' });
    expect(
      await y.request({ t: 'send', chatId, clientMsgId: 'c2', body: 'intrude' }),
    ).toMatchObject({ code: 'NOT_MEMBER' });
    expect(
      await countRows(
        h.sql,
        'SELECT count(*) AS n FROM chat_members WHERE chat_id = $1 AND user_id = $2',
        [chatId, 'yolanda'],
      ),
    ).toBe(0);
    await x.close();
    await y.close();
  });
});
