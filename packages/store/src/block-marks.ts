/**
 * Blocks as the chat steps see them (issue 16). Blocks are kept per blocker (`user_blocks`,
 * user-keyed), but the send path may read only the chat's own rows: so each block is also
 * marked on the blocked member's `chat_members` row of every chat the two share
 * (`blocked_by`), and the chat step refuses a send in a chat of two whose other member is in
 * the sender's `blocked_by` (chat-step.ts). Chat changes read the blocks among the users
 * involved beforehand, one statement per user shard, and mark them in their own transaction.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import { ChatError } from '@chat/protocol';
import type { Database } from './schema';
import type { KeyRouter } from './shard-router';
import { onShard, perShard } from './shard-router';

/** `blocker` blocked `blocked`. */
export interface Block {
  readonly blocker: string;
  readonly blocked: string;
}

/**
 * The blocks between users of `users` (both ends among them), read from the blockers' rows:
 * one statement per user shard.
 */
export async function blocksAmong(
  db: Kysely<Database>,
  router: KeyRouter,
  users: readonly string[],
): Promise<Block[]> {
  const all = [...new Set(users)];
  if (all.length < 2) return [];
  return perShard(
    router,
    all,
    (u) => u,
    async (blockers, keys) => {
      const { rows } = await sql<{ blocker: string; blocked: string }>`
        select user_id as blocker, blocked_id as blocked from user_blocks
        where user_id = any(${blockers}::text[])${onShard('user_id', keys)}
          and blocked_id = any(${all}::text[])`.execute(db);
      return rows;
    },
  );
}

/**
 * BLOCKED when one of `blocks` has `user` as its blocked end: `user` may not create a chat with
 * their blocker, nor add them to one.
 */
export function refuseBlockedBy(blocks: readonly Block[], user: string): void {
  const by = blocks.find((b) => b.blocked === user);
  if (by !== undefined) {
    throw new ChatError('BLOCKED', `${by.blocker} blocked you`, { user: by.blocker });
  }
}

/**
 * Marks blocks on the rows of one chat, in the transaction of a chat change that holds the
 * chat's lock; blocks whose blocked user is no member change nothing.
 */
export async function markBlocks(
  tx: Transaction<Database>,
  chatId: string,
  blocks: readonly Block[],
): Promise<void> {
  if (blocks.length === 0) return;
  await sql`
    update chat_members m set blocked_by = array(
        select distinct x from unnest(m.blocked_by || array(
          select b.blocker
          from unnest(${blocks.map((b) => b.blocker)}::text[], ${blocks.map((b) => b.blocked)}::text[])
            as b(blocker, blocked)
          where b.blocked = m.user_id)) as x
        order by x)
    where m.chat_id = ${chatId} and m.user_id = any(${blocks.map((b) => b.blocked)}::text[])`.execute(
    tx,
  );
}

/**
 * Marks (or, with `blocked` false, unmarks) one block on the blocked user's rows of the given
 * chats: one statement per chat shard. Used when a block is made or lifted, for the chats the
 * two share then.
 */
export async function setBlockMark(
  db: Kysely<Database>,
  router: KeyRouter,
  chatIds: readonly string[],
  block: Block,
  blocked: boolean,
): Promise<void> {
  if (chatIds.length === 0) return;
  await perShard(
    router,
    chatIds,
    (id) => id,
    async (ids, keys) => {
      await (
        blocked
          ? sql`
          update chat_members set blocked_by = blocked_by || ${block.blocker}::text
          where chat_id = any(${ids}::text[])${onShard('chat_id', keys)}
            and user_id = ${block.blocked} and not (${block.blocker} = any(blocked_by))`
          : sql`
          update chat_members set blocked_by = array_remove(blocked_by, ${block.blocker}::text)
          where chat_id = any(${ids}::text[])${onShard('chat_id', keys)}
            and user_id = ${block.blocked} and ${block.blocker} = any(blocked_by)`
      ).execute(db);
      return [];
    },
  );
}
