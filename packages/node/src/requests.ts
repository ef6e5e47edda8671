/**
 * The request handlers: one function per request type, each returning the fields of its `ok`
 * reply or throwing ChatError. Authorization lives in the store's transactions (membership is
 * checked where the data is), so a handler cannot act for anyone but the session's user.
 */
import type { ClientRequest, OkFields, RequestType } from '@chat/protocol';
import { ChatError } from '@chat/protocol';
import type { ChatStore, Delivery } from '@chat/store';
import type { Session } from './session';

export interface RequestContext {
  readonly store: ChatStore;
  readonly now: () => number;
  readonly syncPageSize: number;
  /** Hands committed events to the delivery fabric. */
  readonly deliver: (deliveries: readonly Delivery[]) => void;
  /** Sends the events of a sync page to the session, before its `ok`. */
  readonly sendEvents: (session: Session, page: Awaited<ReturnType<ChatStore['sync']>>) => void;
}

type Handler<T extends RequestType> = (
  ctx: RequestContext,
  session: Session,
  req: Extract<ClientRequest, { t: T }>,
) => Promise<OkFields[T]>;

type HandlerTable = { [T in RequestType]: Handler<T> };

function notYet(what: string): never {
  throw new ChatError('BAD_REQUEST', `${what} is not supported by this node yet`);
}

const handlers: HandlerTable = {
  async createChat(ctx, session, req) {
    const result = await ctx.store.createChat(
      session.user,
      req.members,
      req.name ?? null,
      ctx.now(),
    );
    ctx.deliver(result.deliveries);
    return { chatId: result.chatId };
  },
  async addMembers(ctx, session, req) {
    const result = await ctx.store.addMembers(session.user, req.chatId, req.members, ctx.now());
    ctx.deliver(result.deliveries);
    return {};
  },
  async removeMembers(ctx, session, req) {
    const result = await ctx.store.removeMembers(session.user, req.chatId, req.members, ctx.now());
    ctx.deliver(result.deliveries);
    return {};
  },
  async listChats(ctx, session) {
    return { chats: await ctx.store.listChats(session.user) };
  },
  async send(ctx, session, req) {
    // Attachment keys are checked against object storage by the media package; until it is
    // wired in, refusing them keeps unverified keys out of the database.
    if (req.attachments !== undefined && req.attachments.length > 0) notYet('sending attachments');
    const result = await ctx.store.send({
      senderId: session.user,
      chatId: req.chatId,
      clientMsgId: req.clientMsgId,
      body: req.body ?? null,
      attachments: req.attachments ?? [],
      now: ctx.now(),
    });
    ctx.deliver(result.deliveries);
    return result.dup
      ? { messageId: result.messageId, ts: result.ts, dup: true }
      : { messageId: result.messageId, ts: result.ts };
  },
  async sync(ctx, session, req) {
    const page = await ctx.store.sync(session.user, req.after, req.limit ?? ctx.syncPageSize);
    ctx.sendEvents(session, page);
    return { seq: page.latestSeq, more: page.more };
  },
  read: async () => notYet('read'),
  lastSeen: async () => notYet('lastSeen'),
  uploadTarget: async () => notYet('uploadTarget'),
  downloadUrl: async () => notYet('downloadUrl'),
};

export function handleRequest<T extends RequestType>(
  ctx: RequestContext,
  session: Session,
  req: Extract<ClientRequest, { t: T }>,
): Promise<OkFields[T]> {
  const handler = handlers[req.t] as Handler<T>;
  return handler(ctx, session, req);
}
