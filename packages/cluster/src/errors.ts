import { ChatError, isChatError } from '@chat/protocol';

/**
 * Converts whatever etcd3 / grpc / cockatiel threw into `ChatError('UNAVAILABLE')` with the
 * operation and the original error in its context. A ChatError passes through unchanged.
 *
 * @example
 * try { await etcd.put(key).value(v); } catch (err) { throw toClusterError(err, 'put', { key }); }
 */
export function toClusterError(
  err: unknown,
  op: string,
  context: Readonly<Record<string, unknown>> = {},
): ChatError {
  if (isChatError(err)) return err;
  const cause = err instanceof Error ? err : new Error(String(err));
  return new ChatError('UNAVAILABLE', `etcd ${op} failed: ${cause.message}`, {
    ...context,
    op,
    cause: cause.name,
    causeMessage: cause.message,
  });
}
