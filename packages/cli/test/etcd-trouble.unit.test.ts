import { ExitCode } from '../src/errors';
import { describeEtcdTrouble } from '../src/etcd-trouble';

const A = 'http://127.0.0.1:2379';
const B = 'http://127.0.0.1:2381';
const C = 'http://127.0.0.1:2383';

test('members that answer without a leader: quorum is lost, named with who answers', () => {
  const err = describeEtcdTrouble(
    [
      { endpoint: A, hasLeader: undefined },
      { endpoint: B, hasLeader: false },
      { endpoint: C, hasLeader: undefined },
    ],
    5_000,
  );
  expect(err.exitCode).toBe(ExitCode.ERROR);
  expect(err.reason).toBe('ETCD_NO_QUORUM');
  expect(err.message).toContain(`1 of 3 endpoints answer (${B}) and they have no leader`);
  expect(err.message).toContain('nothing was written');
});

test('no endpoint answering is unreachable, not a quorum loss', () => {
  const err = describeEtcdTrouble(
    [
      { endpoint: A, hasLeader: undefined },
      { endpoint: B, hasLeader: undefined },
    ],
    5_000,
  );
  expect(err.reason).toBe('ETCD_UNREACHABLE');
  expect(err.message).toBe(`no etcd endpoint answers (${A}, ${B}): nothing was read or written`);
});

test('a member with a leader means etcd is there but slow: the timeout is reported', () => {
  const err = describeEtcdTrouble(
    [
      { endpoint: A, hasLeader: true },
      { endpoint: B, hasLeader: false },
    ],
    5_000,
  );
  expect(err.reason).toBe('ETCD_UNREACHABLE');
  expect(err.message).toBe(
    `etcd at ${A}, ${B} did not answer within 5000 ms (2 of 2 endpoints answer, 1 of them with a leader)`,
  );
});
