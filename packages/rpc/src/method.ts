/**
 * A typed RPC method: its wire name plus phantom request and response types, in the style of
 * vscode-jsonrpc's `RequestType<P, R, E>`. The same object is given to `server.handle` and
 * `client.call`, so both sides agree on the types.
 */
export interface Method<Req, Res> {
  readonly name: string;
  /** Type carriers only; never set at run time. */
  readonly _req?: (req: Req) => void;
  readonly _res?: () => Res;
}

export type RequestOf<M> = M extends Method<infer Req, unknown> ? Req : never;
export type ResponseOf<M> = M extends Method<unknown, infer Res> ? Res : never;

/**
 * Declares a method once, in a module shared by the caller and the handler.
 *
 * @example
 * export const Deliver = defineMethod<DeliverRequest, DeliverResponse>('deliver');
 * server.handle(Deliver, async (req, peer) => ({ delivered: req.deliveries.length }));
 * const res = await client.call(Deliver, { deliveries }, { timeoutMs: 2000 });
 */
export function defineMethod<Req, Res>(name: string): Method<Req, Res> {
  if (name.length === 0 || name.length > 128) throw new RangeError(`bad method name ${name}`);
  return Object.freeze({ name });
}
