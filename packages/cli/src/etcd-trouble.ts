/**
 * Why etcd did not answer, in words an operator can act on. Pure: the probes are made by io.ts
 * (each endpoint asked for its own status, which a member answers without quorum).
 */
import { CliError, ExitCode } from './errors';

/** What one etcd endpoint said about itself. */
export interface EndpointProbe {
  readonly endpoint: string;
  /** Whether it knows a leader; undefined when it did not answer at all. */
  readonly hasLeader: boolean | undefined;
}

/**
 * The error chatctl ends with when etcd did not give it the cluster within `timeoutMs`:
 * ETCD_NO_QUORUM when members answer but none of them has a leader (a majority is down: the
 * ring can be neither read nor changed), ETCD_UNREACHABLE otherwise.
 *
 * @example
 * describeEtcdTrouble([{ endpoint: 'http://a:2379', hasLeader: false }, { endpoint: 'http://b:2379', hasLeader: undefined }], 5000)
 * // [ETCD_NO_QUORUM] etcd has lost quorum: 1 of 2 endpoints answer (http://a:2379) and ...
 */
export function describeEtcdTrouble(probes: readonly EndpointProbe[], timeoutMs: number): CliError {
  const answering = probes.filter((p) => p.hasLeader !== undefined);
  const list = (ps: readonly EndpointProbe[]): string => ps.map((p) => p.endpoint).join(', ');
  if (answering.length === 0) {
    return new CliError(
      ExitCode.ERROR,
      `no etcd endpoint answers (${list(probes)}): nothing was read or written`,
      'ETCD_UNREACHABLE',
    );
  }
  if (answering.every((p) => p.hasLeader === false)) {
    return new CliError(
      ExitCode.ERROR,
      `etcd has lost quorum: ${answering.length} of ${probes.length} endpoints answer ` +
        `(${list(answering)}) and they have no leader, so the ring can be neither read nor ` +
        'changed: nothing was written. Chat goes on over the last ring; bring a majority of ' +
        'the etcd members back, then run the command again.',
      'ETCD_NO_QUORUM',
    );
  }
  const led = answering.filter((p) => p.hasLeader === true).length;
  return new CliError(
    ExitCode.ERROR,
    `etcd at ${list(probes)} did not answer within ${timeoutMs} ms ` +
      `(${answering.length} of ${probes.length} endpoints answer, ${led} of them with a leader)`,
    'ETCD_UNREACHABLE',
  );
}
