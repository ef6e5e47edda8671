/**
 * How a command that failed ends: its exit code, a stable code scripts can switch on (the
 * `[REASON]` of the text output), and the message. Pure.
 */
import { ChatError } from '@chat/protocol';
import { CliError, ExitCode, UsageError } from './errors';
import type { ExitCodeValue } from './errors';

export interface Failure {
  /** `USAGE`, `CONFLICT`, `ETCD_NO_QUORUM`, a validation reason, `TIMEOUT`, ... */
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly message: string;
}

/** What `--json` prints when a command fails: `{"error": {"code": ..., ...}}`. */
export interface FailureDocument {
  readonly error: Failure;
}

export function failureOf(err: unknown): Failure {
  if (err instanceof CliError) {
    return { code: err.reason ?? 'ERROR', exitCode: err.exitCode, message: err.message };
  }
  if (err instanceof ChatError) {
    return { code: err.code, exitCode: ExitCode.ERROR, message: err.message };
  }
  return {
    code: 'UNEXPECTED',
    exitCode: ExitCode.ERROR,
    message: err instanceof Error ? (err.stack ?? err.message) : String(err),
  };
}

/** The text form: `chatctl: [CODE] message`, usage errors with where to find help. */
export function renderFailure(err: unknown, helpHint: string): string {
  const failure = failureOf(err);
  if (err instanceof UsageError) return `chatctl: ${failure.message} (see ${helpHint})`;
  if (failure.code === 'UNEXPECTED') return `chatctl: unexpected error: ${failure.message}`;
  if (err instanceof CliError && err.reason === undefined) return `chatctl: ${failure.message}`;
  return `chatctl: [${failure.code}] ${failure.message}`;
}
