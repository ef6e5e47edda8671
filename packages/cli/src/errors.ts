/** Exit codes of chatctl; also listed by `chatctl help` and in the README. */
export const ExitCode = Object.freeze({
  /** Done as asked. */
  OK: 0,
  /** Anything else: etcd unreachable, a failed write, an unexpected error. */
  ERROR: 1,
  /** Bad command line or missing configuration (nothing was done). */
  USAGE: 2,
  /** The ring changed between our read and our write: nothing was written. */
  CONFLICT: 3,
  /** `--wait --timeout` ran out before every drain was done (the change stays in place). */
  TIMEOUT: 4,
  /** The change is not valid for the cluster as it is (nothing was written). */
  VALIDATION: 5,
  /** Interrupted (Ctrl-C) while waiting (the change stays in place). */
  INTERRUPTED: 130,
});

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Why a validation failed, printed with the message so scripts can tell the cases apart. */
export type ValidationReason =
  | 'UNKNOWN_NODE'
  | 'NOT_ALIVE'
  | 'ALREADY_MEMBER'
  | 'NOT_MEMBER'
  | 'LAST_MEMBER'
  | 'NO_RING'
  | 'NO_TRANSITION';

/** An error that ends the command with a given exit code and a message for the operator. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
    /** Stable machine-readable reason, e.g. `UNKNOWN_NODE`. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(ExitCode.USAGE, message, 'USAGE');
  }
}

export class ValidationError extends CliError {
  constructor(
    override readonly reason: ValidationReason,
    message: string,
  ) {
    super(ExitCode.VALIDATION, message, reason);
  }
}
