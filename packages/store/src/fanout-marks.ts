/**
 * Fan-out marks and the sweeper (docs/durable-path.md). Each node writes, about once a second,
 * its promise `upto`: every message it stored with created_at below it is in its recipients'
 * inboxes. A node that stops writing (crashed, frozen, cut off) leaves its last promise behind;
 * the sweeper appends the events of every message that node stored from there on, using the
 * same idempotent user step, and moves the mark on. A node starting up sweeps what its
 * previous run left the same way before it writes a new mark (its own sweeps leave the mark to
 * its next beat: see SweepOptions.claim).
 *
 * Before sweeping, the sweeper sets `swept_upto`: a node that wakes up then leaves those
 * messages alone (the user step checks it after taking the user's lock, so one of the two
 * appends and the other finds the row). The lowest `upto` of all marks is where acked events
 * may be deleted from (cursors.ts): the events a sweep may repeat are still there.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { AttachmentRef } from '@chat/protocol';
import { chatChangeEvents, messageEvents } from './fanout-events';
import type { Database } from './schema';
import type { Delivery } from './types';
import { appendEvents } from './user-step';
import { acrossShards } from './shard-router';
import type { KeyRouter } from './shard-router';
import type { FanoutEvent } from './user-step';

export interface MarkBeat {
  /** This node's `upto` as written: held back while a sweeper's claim is under way. */
  readonly upto: number;
  /** The lowest `upto` of every node's mark: acked events older than this may be deleted. */
  readonly keepFrom: number;
  /** Set when a sweeper took over this node's fan-out below it. */
  readonly sweptUpto: number | null;
}

/**
 * Writes this node's mark and reads the lowest of all (its own, as written, included). While a sweeper's claim is under way
 * (`swept_upto` above `upto`) only the heartbeat moves: the node's own fan-out skips what the
 * claim covers, so its promise says nothing about those messages, and a mark moved past them
 * would let their acked events be deleted before the claim's sweep looks for them (it would
 * append them again). The claim's sweep moves the mark when it is through, and the node's
 * beats never take it back below the claim: what lies below is the claim's (a node with
 * fan-out still owed from before would otherwise step back and look claimed again).
 */
export async function beatMark(
  db: Kysely<Database>,
  nodeId: string,
  upto: number,
  now: number,
): Promise<MarkBeat> {
  const { rows } = await sql<{
    upto: string | null;
    swept_upto: string | null;
    keep_from: string | null;
  }>`
    with beat as (
      insert into fanout_marks (node_id, upto, heartbeat_at) values (${nodeId}, ${upto}, ${now})
      on conflict (node_id) do update set
        upto = case when fanout_marks.swept_upto > fanout_marks.upto then fanout_marks.upto
          else greatest(excluded.upto, coalesce(fanout_marks.swept_upto, 0)) end,
        heartbeat_at = excluded.heartbeat_at
      returning upto, swept_upto
    )
    -- Citus takes no subquery inside an INSERT: the other marks are read beside it.
    select (select upto from beat) as upto, (select swept_upto from beat) as swept_upto,
      (select min(m.upto) from fanout_marks m where m.node_id <> ${nodeId}) as keep_from`.execute(
    db,
  );
  const row = rows[0];
  const written = row?.upto === null || row?.upto === undefined ? upto : Number(row.upto);
  const others = row?.keep_from;
  return {
    upto: written,
    keepFrom: others === null || others === undefined ? written : Math.min(written, Number(others)),
    sweptUpto: row?.swept_upto === null || row === undefined ? null : Number(row.swept_upto),
  };
}

/** A node's mark as it is now, or null when it has none. */
export async function readMark(
  db: Kysely<Database>,
  nodeId: string,
): Promise<{ upto: number; heartbeatAt: number } | null> {
  const { rows } = await sql<{ upto: string; heartbeat_at: string }>`
    select upto, heartbeat_at from fanout_marks where node_id = ${nodeId}`.execute(db);
  const row = rows[0];
  return row === undefined
    ? null
    : { upto: Number(row.upto), heartbeatAt: Number(row.heartbeat_at) };
}

/**
 * Removes a node's mark: it owes nothing (a clean stop). Not while a sweeper's claim on it is
 * under way: the mark holds acked events back until the claim's sweep has looked for them (the
 * mark then stays, goes stale, and is dropped once swept and forgotten).
 */
export async function dropMark(db: Kysely<Database>, nodeId: string): Promise<void> {
  await sql`
    delete from fanout_marks
    where node_id = ${nodeId} and (swept_upto is null or swept_upto <= upto)`.execute(db);
}

/** A mark whose node has not written it since `heartbeatBefore`. */
export async function staleMarks(
  db: Kysely<Database>,
  heartbeatBefore: number,
): Promise<{ nodeId: string; upto: number; heartbeatAt: number }[]> {
  const { rows } = await sql<{ node_id: string; upto: string; heartbeat_at: string }>`
    select node_id, upto, heartbeat_at from fanout_marks
    where heartbeat_at < ${heartbeatBefore}::int8 order by node_id`.execute(db);
  return rows.map((r) => ({
    nodeId: r.node_id,
    upto: Number(r.upto),
    heartbeatAt: Number(r.heartbeat_at),
  }));
}

/** Rows a sweep reads per statement, and events it appends per statement. */
const SWEEP_PAGE = 500;
const SWEEP_EVENTS = 2000;

interface PageKey {
  readonly createdAt: number;
  readonly chatId: string;
  readonly id: string;
}

export interface SweepResult {
  /** Messages and chat changes looked at. */
  readonly messages: number;
  /** Events appended (the rest were there already). */
  readonly deliveries: readonly Delivery[];
}

export interface SweepOptions {
  /**
   * Take the node's fan-out over below `to` (default true): its own late appends are skipped,
   * and the mark moves to `to` once the sweep is through.
   *
   * A node sweeping its own mark passes false: its running fan-out must go on, so the sweep
   * leaves the mark alone (the node writes it from what it still owes: messages whose chat step
   * commits after the sweep read its page, or whose events wait for a retry, are below `to`; a
   * mark moved past them would promise a fan-out not done: lost if the node died, appended twice
   * if acked events were deleted first). It starts where a claim under way ends: two sweeps over
   * one range could append an event twice (the first one through moves the mark, acked events
   * are deleted, the second one finds them gone); a claim whose sweeper died is finished by the
   * node after a while (PgChatStore's claimTakeoverMs).
   */
  readonly claim?: boolean;
  /** Drop the mark afterwards if its node has not written it since (gone for good). */
  readonly deleteIfHeartbeatBefore?: number;
  /** Splits the appends by shard on Citus (shard-router.ts); whole batches by default. */
  readonly users?: KeyRouter;
}

/**
 * Finishes the fan-out of every message `nodeId` stored from its mark up to `to` (exclusive),
 * then (a claim) moves the mark to `to`. Appends what is missing only: any number of sweeps, and
 * the node itself, may run over the same messages.
 */
export async function sweepNode(
  db: Kysely<Database>,
  nodeId: string,
  to: number,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const own = options.claim === false;
  const { rows: claimed } = own
    ? await sql<{ upto: string }>`
          select greatest(upto, coalesce(swept_upto, 0)) as upto
          from fanout_marks where node_id = ${nodeId}`.execute(db)
    : await sql<{ upto: string }>`
          update fanout_marks set swept_upto = greatest(coalesce(swept_upto, 0), ${to}::int8)
          where node_id = ${nodeId}
          returning upto`.execute(db);
  const from = claimed[0] === undefined ? null : Number(claimed[0].upto);
  if (from === null) return { messages: 0, deliveries: [] };

  const deliveries: Delivery[] = [];
  let messages = 0;
  let after: PageKey | null = null;
  for (;;) {
    const page = await owedMessages(db, nodeId, from, after, to);
    const events: FanoutEvent[] = [];
    for (const m of page) {
      events.push(
        ...(m.kind === 'chat'
          ? chatChangeEvents(
              {
                chatId: m.chat_id,
                messageId: m.id,
                change: m.payload.change,
                members: m.payload.members,
                by: m.payload.by,
                ...(m.payload.admin === true ? { admin: true } : {}),
                recipients: m.recipients ?? [],
                ts: Number(m.created_at),
              },
              null,
            )
          : messageEvents(
              {
                chatId: m.chat_id,
                messageId: m.id,
                senderId: m.sender_id,
                body: m.body,
                attachments: m.attachments,
                ts: Number(m.created_at),
              },
              m.members,
              undefined,
              null,
            )),
      );
    }
    for (let i = 0; i < events.length; i += SWEEP_EVENTS) {
      deliveries.push(
        ...(await appendEvents(db, events.slice(i, i + SWEEP_EVENTS), options.users)),
      );
    }
    messages += page.length;
    const last = page[page.length - 1];
    if (last === undefined || page.length < SWEEP_PAGE) break;
    after = { createdAt: Number(last.created_at), chatId: last.chat_id, id: last.id };
  }
  if (!own) {
    await sql`
      update fanout_marks set upto = greatest(upto, ${to}::int8) where node_id = ${nodeId}`.execute(
      db,
    );
  }
  if (options.deleteIfHeartbeatBefore !== undefined) {
    await sql`
      delete from fanout_marks
      where node_id = ${nodeId} and heartbeat_at < ${options.deleteIfHeartbeatBefore}::int8`.execute(
      db,
    );
  }
  return { messages, deliveries };
}

interface OwedRow {
  chat_id: string;
  id: string;
  kind: 'message' | 'chat';
  sender_id: string;
  body: string | null;
  attachments: AttachmentRef[];
  payload: {
    change: 'created' | 'membersAdded' | 'membersRemoved';
    members: string[];
    by: string;
    admin?: boolean;
  };
  recipients: string[] | null;
  created_at: string;
  /** Members who had joined when it was stored (messages). */
  members: string[];
}

/** A page of the messages `nodeId` stored in [from, to), in (created_at, chat, id) order. */
async function owedMessages(
  db: Kysely<Database>,
  nodeId: string,
  from: number,
  after: PageKey | null,
  to: number,
): Promise<OwedRow[]> {
  const key = after ?? { createdAt: from - 1, chatId: '', id: '0' };
  // Every chat the node wrote to: on Citus, every shard.
  const { rows } = await acrossShards(db, (tx) =>
    sql<OwedRow>`
    select m.chat_id, m.id::text as id, m.kind, m.sender_id, m.body, m.attachments, m.payload,
      m.recipients, m.created_at,
      array(select cm.user_id from chat_members cm
            where cm.chat_id = m.chat_id and cm.joined_at <= m.created_at
            order by cm.user_id) as members
    from messages m
    where m.origin = ${nodeId} and m.created_at >= ${from}::int8 and m.created_at < ${to}::int8
      and (m.created_at, m.chat_id, m.id) > (${key.createdAt}::int8, ${key.chatId}, ${key.id}::int8)
    order by m.created_at, m.chat_id, m.id
    limit ${SWEEP_PAGE}`.execute(tx),
  );
  return rows;
}
