/**
 * Tokens during a session (issue 16, item 4): a connection is closed with 4003 once its token's
 * `exp` plus the leeway passes, and the SDK then reconnects with a fresh token from its token
 * function (refresh = reconnect with a new token). Also, at the upgrade: key ids (rotation),
 * and `aud`/`iss` when the node is configured with them.
 */
import type { TokenClaims } from '@chat/protocol';
import { ChatClient } from '@chat/client';
import { CloseCode, jsonCodec, signToken } from '@chat/protocol';
import type { CloseInfo, SingleNode } from '@chat/testkit';
import { RawClient, TEST_SECRET, UpgradeRefused, startSingleNode, waitFor } from '@chat/testkit';

const LEEWAY_SEC = 1;
const AUDIENCE = 'chat-test';
const ISSUER = 'https://auth.test';
const KEYS = { old: 'old-rotation-key', next: 'next-rotation-key' };

let h: SingleNode;

beforeAll(async () => {
  h = await startSingleNode({
    env: {
      CHAT_TOKEN_LEEWAY_SEC: String(LEEWAY_SEC),
      CHAT_SWEEP_MS: '100',
      CHAT_AUTH_KEYS: `old:${KEYS.old},next:${KEYS.next}`,
      CHAT_AUTH_AUDIENCE: AUDIENCE,
      CHAT_AUTH_ISSUER: ISSUER,
    },
  });
});
afterAll(async () => {
  await h.close();
});

const nowSec = (): number => Math.floor(Date.now() / 1000);

/** A token this node accepts unless `over` says otherwise; `kid` picks a rotation key. */
function token(
  user: string,
  ttlSec: number,
  over: Partial<TokenClaims> = {},
  kid?: keyof typeof KEYS | 'gone',
): string {
  const claims: TokenClaims = {
    sub: user,
    dev: 'd1',
    iat: nowSec(),
    exp: nowSec() + ttlSec,
    aud: AUDIENCE,
    iss: ISSUER,
    ...over,
  };
  if (kid === undefined) return signToken(claims, TEST_SECRET);
  return signToken(claims, kid === 'gone' ? 'retired-key' : KEYS[kid], { kid });
}

async function upgradeStatus(t: string): Promise<number> {
  try {
    const c = await RawClient.connect({ url: h.node.url, codec: jsonCodec, token: t });
    await c.close();
    return 101;
  } catch (err) {
    if (err instanceof UpgradeRefused) return err.status;
    throw err;
  }
}

describe('token checks at upgrade with keys, audience and issuer configured', () => {
  it('accepts the default secret and every configured kid', async () => {
    expect(await upgradeStatus(token('kid-user', 3600))).toBe(101);
    expect(await upgradeStatus(token('kid-user', 3600, {}, 'old'))).toBe(101);
    expect(await upgradeStatus(token('kid-user', 3600, {}, 'next'))).toBe(101);
  });

  it.each([
    ['an unknown kid', () => token('eve', 3600, {}, 'gone')],
    ['no aud', () => token('eve', 3600, { aud: undefined })],
    ['another aud', () => token('eve', 3600, { aud: 'other-app' })],
    ['no iss', () => token('eve', 3600, { iss: undefined })],
    ['another iss', () => token('eve', 3600, { iss: 'https://evil.test' })],
    ['an iat a minute ahead', () => token('eve', 3600, { iat: nowSec() + 60 })],
    ['an exp past the leeway', () => token('eve', -(LEEWAY_SEC + 2))],
  ])('refuses a token with %s (401)', async (_label, make) => {
    expect(await upgradeStatus(make())).toBe(401);
  });
});

describe('token expiry during a session', () => {
  it('closes the connection with 4003 at exp plus the leeway, not before exp', async () => {
    const exp = nowSec() + 2;
    const c = await RawClient.ready({
      url: h.node.url,
      codec: jsonCodec,
      token: token('expiring', 0, { exp }),
    });
    let closed: { info: CloseInfo; at: number } | undefined;
    void c.closed.then((info) => {
      closed = { info, at: Date.now() };
    });
    // The session works while the token is valid.
    expect((await c.request({ t: 'listChats' })).t).toBe('ok');
    const deadlineMs = exp * 1000 + LEEWAY_SEC * 1000;
    await waitFor(
      () => expect(closed?.info.code).toBe(CloseCode.UNAUTHORIZED),
      deadlineMs + 3000 - Date.now(),
      25,
    );
    expect(closed!.info.reason).toBe('token expired');
    expect(closed!.at).toBeGreaterThanOrEqual(exp * 1000);
    // One sweep (100 ms) after the deadline, with room for a loaded machine.
    expect(closed!.at).toBeLessThanOrEqual(deadlineMs + 1500);
  });

  it('the SDK gets a fresh token from its token function and reconnects', async () => {
    const issued: number[] = [];
    const closeCodes: number[] = [];
    const noop = (): void => undefined;
    const client = new ChatClient({
      registryUrl: 'http://registry.invalid',
      user: 'refresher',
      fetch: async () => ({
        ok: true,
        status: 200,
        json: async () => ({ user: 'refresher', node: 'node-1', url: h.node.url, epoch: 1 }),
      }),
      token: () => {
        issued.push(Date.now());
        // The first token is short-lived; later ones last.
        return token('refresher', issued.length === 1 ? 2 : 3600);
      },
      backoffBaseMs: 50,
      backoffMaxMs: 500,
      logger: {
        debug: noop,
        warn: noop,
        error: noop,
        info: (obj) => {
          const code = (obj as { code?: unknown }).code;
          if (typeof code === 'number') closeCodes.push(code);
        },
      },
    });
    let welcomes = 0;
    client.on('welcome', () => {
      welcomes += 1;
    });
    try {
      await client.connect();
      expect(welcomes).toBe(1);
      await waitFor(() => expect(closeCodes).toContain(CloseCode.UNAUTHORIZED), 2000 + 5000);
      await waitFor(() => expect(welcomes).toBe(2));
      // Ready follows the welcome once the resume sync is done.
      await waitFor(() => expect(client.state.status).toBe('ready'));
      expect(issued).toHaveLength(2);
    } finally {
      await client.close();
    }
  });
});
