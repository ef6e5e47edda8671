import { ChatError, CloseCode } from '@chat/protocol';
import { closeDecision } from '../src/close-policy';
import type { ClosedConnection } from '../src/close-policy';
import { ConnectionError } from '../src/errors';

const conn: ClosedConnection = {
  welcomed: true,
  fixedToken: false,
  movedHops: 0,
  maxMovedHops: 3,
};

describe('closeDecision', () => {
  it('follows a moved up to the hop limit, then backs off and counts again from zero', () => {
    const moved = { code: CloseCode.MOVED, reason: 'moved' };
    const movedUrl = 'ws://127.0.0.1:9/ws';
    expect(closeDecision(moved, { ...conn, movedUrl })).toEqual({
      kind: 'follow-moved',
      url: movedUrl,
    });
    expect(closeDecision(moved, { ...conn, movedUrl, movedHops: 3 })).toEqual({
      kind: 'reconnect',
      minDelayMs: 0,
      why: 'too many moved redirects',
      closeCode: CloseCode.MOVED,
      resetHops: true,
    });
    // 4001 without a `moved` frame first: an ordinary close.
    expect(closeDecision(moved, conn)).toMatchObject({ kind: 'reconnect', minDelayMs: 0 });
  });

  it('reconnects with a fresh token after an accepted one expired, quietly', () => {
    expect(closeDecision({ code: CloseCode.UNAUTHORIZED, reason: '' }, conn)).toEqual({
      kind: 'reconnect',
      minDelayMs: 0,
      why: 'token expired',
      closeCode: CloseCode.UNAUTHORIZED,
    });
  });

  it('reports a refused token; stops when the app gave a fixed one', () => {
    const refused = closeDecision(
      { code: CloseCode.UNAUTHORIZED, reason: '' },
      { ...conn, welcomed: false },
    );
    expect(refused).toMatchObject({ kind: 'reconnect', why: 'token refused' });
    expect(refused.kind === 'reconnect' && refused.report).toBeInstanceOf(ChatError);
    const upgrade401 = closeDecision(
      { code: 1006, reason: '', httpStatus: 401 },
      { ...conn, fixedToken: true },
    );
    expect(upgrade401).toMatchObject({ kind: 'stop', error: { code: 'UNAUTHORIZED' } });
  });

  it('stops on the device limit (with the err before it), a replacement and a 403', () => {
    expect(
      closeDecision(
        { code: CloseCode.DEVICE_LIMIT, reason: '' },
        { ...conn, lastErrorMessage: 'at most 3 devices' },
      ),
    ).toMatchObject({ kind: 'stop', error: { code: 'LIMIT', message: 'at most 3 devices' } });
    const replaced = closeDecision({ code: CloseCode.REPLACED, reason: '' }, conn);
    expect(replaced.kind === 'stop' && replaced.error).toBeInstanceOf(ConnectionError);
    expect(closeDecision({ code: 1006, reason: '', httpStatus: 403 }, conn)).toMatchObject({
      kind: 'stop',
      error: { httpStatus: 403 },
    });
  });

  it('reconnects after anything else, no sooner than a refused upgrade asked', () => {
    expect(
      closeDecision({ code: 1006, reason: '', httpStatus: 503, retryAfterMs: 2000 }, conn),
    ).toEqual({
      kind: 'reconnect',
      minDelayMs: 2000,
      why: 'connection closed (503)',
      closeCode: 1006,
      httpStatus: 503,
    });
    expect(
      closeDecision({ code: CloseCode.STORE_EPOCH, reason: 'store epoch changed' }, conn),
    ).toEqual({
      kind: 'reconnect',
      minDelayMs: 0,
      why: `connection closed (${CloseCode.STORE_EPOCH} store epoch changed)`,
      closeCode: CloseCode.STORE_EPOCH,
    });
  });
});
