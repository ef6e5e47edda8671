import { ChatError } from '@chat/protocol';
import { ConnectionBrokenError, isConnectionError, toChatError } from '../src/errors';

function pgError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('toChatError', () => {
  it('passes ChatErrors through', () => {
    const err = new ChatError('NOT_MEMBER', 'no');
    expect(toChatError(err)).toBe(err);
  });

  it.each([
    [
      'connection refused',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    ],
    ['connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['pool timeout', new Error('timeout exceeded when trying to connect')],
    ['query timeout', new Error('Query read timeout')],
    ['terminated', new Error('Connection terminated unexpectedly')],
    ['class 08', pgError('08006')],
    ['too many connections', pgError('53300')],
    ['admin shutdown', pgError('57P01')],
    ['cannot connect now', pgError('57P03')],
    ['serialization failure', pgError('40001')],
    ['deadlock', pgError('40P01')],
    ['statement timeout', pgError('57014')],
    ['broken connection', new ConnectionBrokenError('x')],
    ['a seq taken twice (plain)', Object.assign(pgError('23505'), { constraint: 'inbox_pk' })],
    [
      'a seq taken twice (a Citus shard)',
      Object.assign(pgError('23505'), { constraint: 'inbox_pk_102030' }),
    ],
    [
      'a seq taken twice (a Citus worker, constraint only in the message)',
      pgError('23505', 'duplicate key value violates unique constraint "inbox_pk_102027"'),
    ],
    [
      'a seq taken twice (a user step run on the Citus coordinator, as while its shard moves)',
      pgError('XX000', 'duplicate key value violates unique constraint "inbox_pk_102032"'),
    ],
    [
      "Citus: the coordinator's postmaster died while a worker ran the statement",
      pgError('XX000', 'postmaster was shut down, exiting'),
    ],
    [
      'Citus: a worker connection the transaction needed failed',
      pgError('XX000', 'failure on connection marked as essential: 127.0.0.1:40429'),
    ],
  ])('maps %s to UNAVAILABLE', (_name, err) => {
    expect(toChatError(err)).toMatchObject({ name: 'ChatError', code: 'UNAVAILABLE' });
  });

  it.each([
    ['unique violation', pgError('23505')],
    [
      'unique violation of another key',
      Object.assign(pgError('23505'), { constraint: 'inbox_pk_extra' }),
    ],
    ['syntax error', pgError('42601')],
    ['another Citus internal error', pgError('XX000', 'could not find shard placement')],
    [
      'a Citus internal error about another unique key',
      pgError('XX000', 'duplicate key value violates unique constraint "messages_pk_102008"'),
    ],
    ['bad encoding', pgError('22021')],
    ['plain error', new Error('bug')],
    ['not an error', 'weird'],
  ])('maps %s to INTERNAL', (_name, err) => {
    expect(toChatError(err)).toMatchObject({ code: 'INTERNAL' });
  });

  it('keeps the cause and SQLSTATE as context', () => {
    expect(toChatError(pgError('57P01', 'terminating connection')).context).toEqual({
      cause: 'terminating connection',
      sqlstate: '57P01',
    });
  });
});

describe('isConnectionError', () => {
  it('distinguishes a dead connection from a failed statement', () => {
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(pgError('57P01'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBe(true);
    expect(isConnectionError(pgError('40P01'))).toBe(false);
    expect(isConnectionError(pgError('23505'))).toBe(false);
  });

  it("takes the Citus coordinator's postmaster death for a dead connection, a lost worker not", () => {
    expect(isConnectionError(pgError('XX000', 'postmaster was shut down, exiting'))).toBe(true);
    expect(
      isConnectionError(pgError('XX000', 'failure on connection marked as essential: 127.0.0.1:1')),
    ).toBe(false);
  });
});
