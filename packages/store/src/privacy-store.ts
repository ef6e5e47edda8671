/**
 * Blocking and the last-seen visibility setting (issue 16). A user's blocks (`user_blocks`) and
 * setting (`users.last_seen_visibility`) live on their own shard; a block is also marked in
 * every chat the two share (block-marks.ts), one statement per chat shard, so that the send
 * path finds it among the chat's rows.
 *
 * A block is marked in the chats the two share when it is made (from their chat lists,
 * `user_chats`), and in chats created or joined later by the chat change itself. A chat change
 * or a chat-list update running at the same moment as the block may miss it: blocking again
 * marks every shared chat again.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { LastSeenVisibility } from '@chat/protocol';
import { setBlockMark } from './block-marks';
import { toChatError } from './errors';
import type { Database } from './schema';
import { EngineRouters } from './shard-router';

/** Most users one user may block. */
export const MAX_BLOCKS_PER_USER = 1000;

/**
 * @example
 * const privacy = new PgPrivacyStore(db);
 * await privacy.block('alice', 'mallory', Date.now());
 * await privacy.setLastSeenVisibility('alice', 'nobody');
 */
export class PgPrivacyStore {
  private readonly routers: EngineRouters;

  constructor(private readonly db: Kysely<Database>) {
    this.routers = EngineRouters.of(db);
  }

  /**
   * `blocker` blocks `blocked`: BAD_REQUEST for oneself, LIMIT past MAX_BLOCKS_PER_USER.
   * Blocking someone already blocked marks the shared chats again.
   */
  async block(blocker: string, blocked: string, now: number): Promise<void> {
    if (blocker === blocked) throw new ChatError('BAD_REQUEST', 'you cannot block yourself');
    try {
      const { rows } = await sql<{ n: string }>`
        select count(*) as n from user_blocks where user_id = ${blocker}`.execute(this.db);
      if (Number(rows[0]?.n ?? 0) >= MAX_BLOCKS_PER_USER) {
        throw new ChatError('LIMIT', `at most ${MAX_BLOCKS_PER_USER} blocked users`);
      }
      await sql`
        insert into user_blocks (user_id, blocked_id, created_at)
        values (${blocker}, ${blocked}, ${now})
        on conflict (user_id, blocked_id) do nothing`.execute(this.db);
      await this.markShared(blocker, blocked, true);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** Lifts a block (nothing happens when there is none); the shared chats are unmarked. */
  async unblock(blocker: string, blocked: string): Promise<void> {
    try {
      await sql`
        delete from user_blocks
        where user_id = ${blocker} and blocked_id = ${blocked}`.execute(this.db);
      await this.markShared(blocker, blocked, false);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** The users `user` blocked, sorted. */
  async blocked(user: string): Promise<string[]> {
    try {
      const { rows } = await sql<{ blocked_id: string }>`
        select blocked_id from user_blocks where user_id = ${user}
        order by blocked_id`.execute(this.db);
      return rows.map((r) => r.blocked_id);
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** The user's last-seen visibility ('contacts' until they set one). */
  async lastSeenVisibility(user: string): Promise<LastSeenVisibility> {
    try {
      const { rows } = await sql<{ v: LastSeenVisibility }>`
        select last_seen_visibility as v from users where id = ${user}`.execute(this.db);
      return rows[0]?.v ?? 'contacts';
    } catch (err) {
      throw toChatError(err);
    }
  }

  async setLastSeenVisibility(user: string, visibility: LastSeenVisibility): Promise<void> {
    try {
      // Connecting creates the row; the upsert only covers a user with no device yet.
      await sql`
        insert into users (id, last_seen_visibility) values (${user}, ${visibility})
        on conflict (id) do update set last_seen_visibility = excluded.last_seen_visibility`.execute(
        this.db,
      );
    } catch (err) {
      throw toChatError(err);
    }
  }

  /** The chats the two share, from each one's chat list (one statement per user's shard). */
  private async markShared(blocker: string, blocked: string, mark: boolean): Promise<void> {
    const { rows: mine } = await sql<{ chat_id: string }>`
      select chat_id from user_chats where user_id = ${blocker}`.execute(this.db);
    if (mine.length === 0) return;
    const { rows: shared } = await sql<{ chat_id: string }>`
      select chat_id from user_chats
      where user_id = ${blocked} and chat_id = any(${mine.map((m) => m.chat_id)}::text[])`.execute(
      this.db,
    );
    const { chats } = await this.routers.get();
    await setBlockMark(
      this.db,
      chats,
      shared.map((s) => s.chat_id),
      { blocker, blocked },
      mark,
    );
  }
}
