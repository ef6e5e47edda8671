import { ChatError, ErrorCodes } from '@chat/protocol';
import type { ErrorCode } from '@chat/protocol';

const knownCodes: ReadonlySet<string> = new Set(ErrorCodes);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && knownCodes.has(value);
}

/**
 * What a handler's error becomes on the wire: a ChatError keeps its code and message; anything
 * else becomes INTERNAL with a generic message (the details stay in the server's log).
 */
export function toWireError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof ChatError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: 'internal error' };
}

/** The ChatError a caller sees for a wire error; an unknown code becomes INTERNAL. */
export function fromWireError(code: unknown, message: unknown): ChatError {
  const text = typeof message === 'string' ? message : 'remote error';
  return isErrorCode(code) ? new ChatError(code, text) : new ChatError('INTERNAL', text);
}

export function unavailable(message: string, context: Record<string, unknown> = {}): ChatError {
  return new ChatError('UNAVAILABLE', message, context);
}
