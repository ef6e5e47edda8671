/**
 * The request handlers: one function per request type, each returning the fields of its `ok`
 * reply or throwing ChatError. Authorization lives in the store's transactions (membership is
 * checked where the data is), so a handler cannot act for anyone but the session's user.
 */
import type { ClientRequest, OkFields, RequestType } from '@chat/protocol';
import type { ChatStore } from '@chat/store';
import type { MediaGateway } from './media';
import type { PushRegistration } from './push/push-registration';
import type { Session } from './session';
import type { Social } from './social';

export interface RequestContext {
  readonly store: ChatStore;
  readonly now: () => number;
  readonly syncPageSize: number;
  /** Presigned uploads and downloads, attachment checks (mediaNotConfigured without storage). */
  readonly media: MediaGateway;
  /** Sends the events of a sync page to the session, before its `ok`. */
  readonly sendEvents: (session: Session, page: Awaited<ReturnType<ChatStore['sync']>>) => void;
  /** Group administration, last seen and receipts. */
  readonly social: Social;
  /** Push targets and the preview setting (issue 18). */
  readonly push: Pick<PushRegistration, 'register' | 'remove' | 'settings'>;
}

type Handler<T extends RequestType> = (
  ctx: RequestContext,
  session: Session,
  req: Extract<ClientRequest, { t: T }>,
) => Promise<OkFields[T]>;

type HandlerTable = { [T in RequestType]: Handler<T> };

const handlers: HandlerTable = {
  async createChat(ctx, session, req) {
    // The store pushes the `chat` events once they are in the inboxes (onDeliveries).
    const result = await ctx.store.createChat(
      session.user,
      req.members,
      req.name ?? null,
      ctx.now(),
    );
    return { chatId: result.chatId };
  },
  async addMembers(ctx, session, req) {
    await ctx.social.addMembers(session.user, req.chatId, req.members, req.admin === true);
    return {};
  },
  async removeMembers(ctx, session, req) {
    await ctx.social.removeMembers(session.user, req.chatId, req.members);
    return {};
  },
  listChats: (ctx, session, req) => ctx.social.listChats(session.user, req.before, req.limit),
  async send(ctx, session, req) {
    // Every key must have been issued to the sender and be uploaded as declared before the
    // message may carry it; nothing is stored otherwise.
    const attachments =
      req.attachments !== undefined && req.attachments.length > 0
        ? await ctx.media.verifyAttachments(session.user, req.attachments)
        : [];
    // Resolved once the message is durable; its fan-out and pushes follow (onDeliveries).
    const result = await ctx.store.send({
      senderId: session.user,
      chatId: req.chatId,
      clientMsgId: req.clientMsgId,
      body: req.body ?? null,
      attachments,
      now: ctx.now(),
      // Without `no-echo` the sender's inbox gets the message too, as protocol v1 had it.
      ...(session.features.has('no-echo') ? { deviceId: session.device } : {}),
    });
    return result.dup
      ? { messageId: result.messageId, ts: result.ts, dup: true }
      : { messageId: result.messageId, ts: result.ts };
  },
  async sync(ctx, session, req) {
    const page = await ctx.store.sync(session.user, req.after, req.limit ?? ctx.syncPageSize);
    ctx.sendEvents(session, page);
    return { seq: page.latestSeq, more: page.more };
  },
  async read(ctx, session, req) {
    await ctx.social.read(session.user, req.chatId, req.messageId);
    return {};
  },
  lastSeen: (ctx, session, req) => ctx.social.lastSeen(session.user, req.user),
  async block(ctx, session, req) {
    await ctx.social.block(session.user, req.user);
    return {};
  },
  async unblock(ctx, session, req) {
    await ctx.social.unblock(session.user, req.user);
    return {};
  },
  listBlocked: async (ctx, session) => ({ users: await ctx.social.blocked(session.user) }),
  privacy: (ctx, session, req) => ctx.social.privacy(session.user, req.lastSeen),
  uploadTarget: (ctx, session, req) => ctx.media.uploadTarget(session.user, req.mime, req.size),
  downloadUrl: (ctx, session, req) => ctx.media.downloadUrl(session.user, session.device, req.key),
  async pushRegister(ctx, session, req) {
    await ctx.push.register(session.user, session.device, req.target);
    return {};
  },
  async pushRemove(ctx, session) {
    await ctx.push.remove(session.user, session.device);
    return {};
  },
  pushSettings: (ctx, session, req) => ctx.push.settings(session.user, req.previews),
};

export function handleRequest<T extends RequestType>(
  ctx: RequestContext,
  session: Session,
  req: Extract<ClientRequest, { t: T }>,
): Promise<OkFields[T]> {
  const handler = handlers[req.t] as Handler<T>;
  return handler(ctx, session, req);
}
