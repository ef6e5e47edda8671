/**
 * Group administration and the paginated chat list (issue 7). A membership change is a chat
 * step (chat-changes.ts: the chat's lock held, so membership and admins cannot change
 * under it, and the change stored as the chat's next message row) whose `chat` events and
 * chat-list entries then reach every member's inbox through the same fan-out as a message.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { ChatSummary } from '@chat/protocol';
import { blocksAmong, markBlocks, refuseBlockedBy } from './block-marks';
import type { Block } from './block-marks';
import { lockChat, storeChange } from './chat-changes';
import { toChatError } from './errors';
import type { StoredChatChange } from './fanout-events';
import type { Database } from './schema';
import { EngineRouters, onShard, perShard } from './shard-router';
import type { MembershipResult } from './types';

/** Runs a change's chat step and queues its fan-out (PgChatStore.storeChange). */
export interface ChangeStore {
  readonly nodeId: string;
  storeChange(
    now: number,
    step: (tx: Transaction<Database>) => Promise<StoredChatChange | null>,
  ): Promise<StoredChatChange | null>;
}

export interface GroupStoreOptions {
  /** Most members of one chat, the creator included (protocol default 100). */
  readonly maxMembersPerChat: number;
}

export interface ListChatsOptions {
  /** Only chats whose activeAt is below this (exclusive). */
  readonly before?: number;
  /** Most chats returned; a page never splits chats with the same activeAt, so it may hold a few more. */
  readonly limit: number;
}

export interface ChatPage {
  readonly chats: ChatSummary[];
  /** True when older chats remain (ask again with `before` = the last chat's activeAt). */
  readonly more: boolean;
}

/**
 * @example
 * const groups = new PgGroupStore(db, { maxMembersPerChat: 100 });
 * await groups.addMembers('alice', chatId, ['carol'], { admin: true }, Date.now());
 */
export class PgGroupStore {
  private readonly options: Readonly<GroupStoreOptions>;

  /** Plain PostgreSQL or Citus, found out on first use. */
  private readonly routers: EngineRouters;

  constructor(
    private readonly db: Kysely<Database>,
    options: GroupStoreOptions,
    private readonly changes: ChangeStore,
  ) {
    this.options = Object.freeze({ ...options });
    this.routers = EngineRouters.of(db);
  }

  /**
   * Adds members (and with `admin`, makes every listed user an admin, promoting members already
   * in). Only admins may. NOT_FOUND for an unknown chat, NOT_MEMBER when `by` is not a member
   * or not an admin, LIMIT past the member cap.
   */
  async addMembers(
    by: string,
    chatId: string,
    members: readonly string[],
    opts: { readonly admin?: boolean },
    now: number,
  ): Promise<MembershipResult> {
    const listedUsers = new Set(members);
    const blocks = (await this.blocksAround(chatId, by, members)).filter(
      (b) => listedUsers.has(b.blocker) || listedUsers.has(b.blocked),
    );
    refuseBlockedBy(
      blocks.filter((b) => listedUsers.has(b.blocker)),
      by,
    );
    await this.changes.storeChange(now, async (tx) => {
      const current = await lockChat(tx, chatId, by);
      if (current.get(by) !== true) {
        throw new ChatError('NOT_MEMBER', 'only admins can add members', { chatId });
      }
      const listed = unique(members);
      const added = listed.filter((m) => !current.has(m));
      const promoted = opts.admin === true ? listed.filter((m) => current.get(m) === false) : [];
      if (current.size + added.length > this.options.maxMembersPerChat) {
        throw new ChatError(
          'LIMIT',
          `a chat has at most ${this.options.maxMembersPerChat} members`,
          {
            chatId,
            members: current.size + added.length,
          },
        );
      }
      if (added.length === 0 && promoted.length === 0) return null;
      if (added.length > 0) {
        await sql`
          insert into chat_members (chat_id, user_id, joined_at, is_admin)
          select ${chatId}, unnest(${added}::text[]), ${now}, ${opts.admin === true}`.execute(tx);
      }
      await markBlocks(tx, chatId, blocks);
      if (promoted.length > 0) {
        await tx
          .updateTable('chat_members')
          .set({ is_admin: true })
          .where('chat_id', '=', chatId)
          .where('user_id', 'in', promoted)
          .execute();
      }
      const admin = opts.admin === true;
      return storeChange(
        tx,
        {
          chatId,
          change: 'membersAdded',
          members: admin ? [...added, ...promoted] : added,
          by,
          ...(admin ? { admin: true } : {}),
          recipients: [...current.keys(), ...added],
          ts: now,
        },
        this.changes.nodeId,
      );
    });
    return { chatId };
  }

  /**
   * Removes members. Anyone may remove themselves (leave); removing others takes an admin.
   * Everyone who was a member gets the event, the removed included. When the last admin
   * leaves, the longest-standing remaining member becomes one, so a group is never headless.
   */
  async removeMembers(
    by: string,
    chatId: string,
    members: readonly string[],
    now: number,
  ): Promise<MembershipResult> {
    await this.changes.storeChange(now, async (tx) => {
      const current = await lockChat(tx, chatId, by);
      const removed = unique(members).filter((m) => current.has(m));
      if (removed.some((m) => m !== by) && current.get(by) !== true) {
        throw new ChatError('NOT_MEMBER', 'only admins can remove other members', { chatId });
      }
      if (removed.length === 0) return null;
      await tx
        .deleteFrom('chat_members')
        .where('chat_id', '=', chatId)
        .where('user_id', 'in', removed)
        .execute();
      const remaining = [...current].filter(([m]) => !removed.includes(m));
      if (remaining.length > 0 && !remaining.some(([, admin]) => admin)) {
        // current iterates in join order: the first remaining member joined earliest.
        await tx
          .updateTable('chat_members')
          .set({ is_admin: true })
          .where('chat_id', '=', chatId)
          .where('user_id', '=', remaining[0]![0])
          .execute();
      }
      return storeChange(
        tx,
        {
          chatId,
          change: 'membersRemoved',
          members: removed,
          by,
          recipients: [...current.keys()],
          ts: now,
        },
        this.changes.nodeId,
      );
    });
    return { chatId };
  }

  /**
   * The blocks among the chat's members, `by` and the users to add (issue 16): read before the
   * chat step, the members from the chat's shard, the blocks from the users' shards. A member
   * who joins in between is not in it (the race is documented in privacy-store.ts).
   */
  private async blocksAround(
    chatId: string,
    by: string,
    adding: readonly string[],
  ): Promise<Block[]> {
    try {
      const current = (await this.members(chatId)) ?? [];
      const { users } = await this.routers.get();
      return await blocksAmong(this.db, users, [by, ...current, ...adding]);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * Current members of a chat, or null when there is no such chat (for typing fan-out). The
   * members' lookup names the chat too: on Citus a correlated one alone reaches every shard.
   */
  async members(chatId: string): Promise<string[] | null> {
    try {
      const { rows } = await sql<{ members: string[] }>`
        select array(select m.user_id from chat_members m
                     where m.chat_id = c.id and m.chat_id = ${chatId}) as members
        from chats c where c.id = ${chatId}`.execute(this.db);
      return rows[0]?.members ?? null;
    } catch (err) {
      throw toChatError(err);
    }
  }

  /**
   * The user's chats, most recently active first (activeAt = latest message time, or the
   * creation time of a chat without messages; ties by chat id).
   */
  async listChats(userId: string, opts: ListChatsOptions): Promise<ChatPage> {
    const limit = Math.max(1, Math.floor(opts.limit));
    const before = opts.before ?? Number.MAX_SAFE_INTEGER;
    try {
      // The user's chats come from a user-keyed table and their rows from chat-keyed ones: two
      // steps (one user's shard, then each chat shard), never a join across the two.
      const { chats: chatRouter } = await this.routers.get();
      const { rows: mine } = await sql<{ chat_id: string }>`
        select chat_id from user_chats where user_id = ${userId}`.execute(this.db);
      const activity = await perShard(
        chatRouter,
        mine.map((m) => m.chat_id),
        (id) => id,
        async (ids, keys) => {
          const { rows } = await sql<{
            id: string;
            name: string | null;
            created_at: string;
            last_message_at: string | null;
          }>`
            select c.id, c.name, c.created_at, greatest(c.last_message_at,
                (select m.created_at from messages m
                 where m.chat_id = c.id${onShard('m.chat_id', keys)} and m.kind = 'message'
                 order by m.id desc limit 1)) as last_message_at
            from chats c where c.id = any(${ids}::text[])`.execute(this.db);
          return rows;
        },
      );
      const ranked = activity
        .map((c) => ({
          ...c,
          lastMessageAt: c.last_message_at === null ? null : Number(c.last_message_at),
          activeAt: Number(c.last_message_at ?? c.created_at),
        }))
        .filter((c) => c.activeAt < before)
        .sort((x, y) => y.activeAt - x.activeAt || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));
      // A page never ends inside a run of equal activeAt, so 'before' can be a plain time.
      const edgeAt = ranked[limit - 1]?.activeAt;
      const page =
        edgeAt === undefined ? ranked : ranked.filter((c, i) => i < limit || c.activeAt === edgeAt);
      const members = new Map(
        (
          await perShard(
            chatRouter,
            page.map((c) => c.id),
            (id) => id,
            async (ids, keys) => {
              const { rows } = await sql<{ id: string; members: string[]; admins: string[] }>`
                select c.id,
                  array(select m.user_id from chat_members m
                        where m.chat_id = c.id${onShard('m.chat_id', keys)}
                        order by m.joined_at, m.user_id) as members,
                  array(select m.user_id from chat_members m
                        where m.chat_id = c.id${onShard('m.chat_id', keys)} and m.is_admin
                        order by m.joined_at, m.user_id) as admins
                from chats c where c.id = any(${ids}::text[])`.execute(this.db);
              return rows;
            },
          )
        ).map((r) => [r.id, r]),
      );
      return {
        chats: page.map((c) => ({
          chatId: c.id,
          name: c.name,
          members: members.get(c.id)?.members ?? [],
          admins: members.get(c.id)?.admins ?? [],
          lastMessageAt: c.lastMessageAt,
          activeAt: c.activeAt,
        })),
        more: ranked.length > page.length,
      };
    } catch (err) {
      throw toChatError(err);
    }
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
