/**
 * Migration 0008_distribute: on Citus, the tables are distributed by user and by chat
 * (citus.ts), the chat and user steps name their keys in every lookup (so that each statement
 * stays on one shard) and get routed twins (shard-router.ts). On plain PostgreSQL the step
 * functions are created again as migration 0007 has them, and nothing else changes. The shard count is the coordinator's
 * `citus.shard_count` (32 unless the operator set it).
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { CHAT_KEYED_TABLES, REFERENCE_TABLES, USER_KEYED_TABLES, detectEngine } from './citus';
import { CHAT_STEP_ARGS, chatStepFunction } from './chat-step';
import { USER_STEP_ARGS, userStepFunction } from './user-step';

/** A step and its routed twin, distributed by its first argument on the step's tables. */
interface RoutedStep {
  readonly name: string;
  /** `name type, ...` of the step's own arguments. */
  readonly args: string;
  readonly returns: string;
  readonly colocateWith: 'chats' | 'users';
}

const ROUTED_STEPS: readonly RoutedStep[] = [
  {
    name: 'chat_store_messages',
    args: CHAT_STEP_ARGS,
    returns: 'table (i int, status text, message_id int8, ts int8, recipients text[])',
    colocateWith: 'chats',
  },
  {
    name: 'chat_append_events',
    args: USER_STEP_ARGS,
    returns: 'table (i int, seq int8)',
    colocateWith: 'users',
  },
];

/** `text[], int8[]` from `p_a text[], p_b int8[]`. */
function argTypes(args: string): string {
  return args
    .split(',')
    .map((a) => a.trim().split(/\s+/)[1])
    .join(', ');
}

function argNames(args: string): string {
  return args
    .split(',')
    .map((a) => a.trim().split(/\s+/)[0])
    .join(', ');
}

async function distributeGroup(
  db: Kysely<unknown>,
  tables: readonly (readonly [string, string])[],
): Promise<void> {
  const [anchor, ...rest] = tables;
  if (anchor === undefined) return;
  await sql`select create_distributed_table(${anchor[0]}, ${anchor[1]}, colocate_with => 'none')`.execute(
    db,
  );
  for (const [table, column] of rest) {
    await sql`select create_distributed_table(${table}, ${column}, colocate_with => ${anchor[0]})`.execute(
      db,
    );
  }
}

/**
 * Citus plans each statement of a step with the call's values (a generic plan cannot be pruned
 * to one shard), and without JIT: the steps turn sequential scans off, which makes any plan
 * with one look costly enough to be compiled, about 60 ms per call for a few rows.
 */
async function tuneStepForCitus(db: Kysely<unknown>, step: RoutedStep): Promise<void> {
  const types = argTypes(step.args);
  await sql
    .raw(
      `alter function ${step.name}(${types}) set plan_cache_mode = force_custom_plan set jit = off`,
    )
    .execute(db);
}

async function createRoutedStep(db: Kysely<unknown>, step: RoutedStep): Promise<void> {
  const types = argTypes(step.args);
  await tuneStepForCitus(db, step);
  await sql`select create_distributed_function(${`${step.name}(${types})`})`.execute(db);
  await sql
    .raw(
      `create function ${step.name}_at(p_route text, ${step.args})
        returns ${step.returns}
        language plpgsql
        -- Every statement inside stays on the shard of p_route, or the call fails.
        set citus.multi_task_query_log_level = 'error'
        set jit = off
        as $fn$ begin
          return query select * from ${step.name}(${argNames(step.args)});
        end $fn$`,
    )
    .execute(db);
  await sql`select create_distributed_function(${`${step.name}_at(text, ${types})`}, '$1', colocate_with => ${step.colocateWith})`.execute(
    db,
  );
}

export const distributeMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const citus = (await detectEngine(db)) === 'citus';
    await sql.raw(chatStepFunction(citus)).execute(db);
    await sql.raw(userStepFunction(citus)).execute(db);
    if (!citus) return;
    // The attachment-index trigger on messages writes message_attachments, co-located with it
    // by chat: the row goes to the shard of the same chat, which Citus allows only when asked.
    await sql`set local citus.enable_unsafe_triggers to on`.execute(db);
    for (const table of REFERENCE_TABLES) {
      await sql`select create_reference_table(${table})`.execute(db);
    }
    await distributeGroup(db, USER_KEYED_TABLES);
    await distributeGroup(db, CHAT_KEYED_TABLES);
    for (const step of ROUTED_STEPS) await createRoutedStep(db, step);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    if ((await detectEngine(db)) !== 'citus') return;
    for (const step of ROUTED_STEPS) {
      await sql
        .raw(`drop function if exists ${step.name}_at(text, ${argTypes(step.args)})`)
        .execute(db);
    }
    for (const table of [...USER_KEYED_TABLES, ...CHAT_KEYED_TABLES].map(([t]) => t).reverse()) {
      await sql`select undistribute_table(${table}, cascade_via_foreign_keys => true)`.execute(db);
    }
    for (const table of REFERENCE_TABLES) {
      await sql`select undistribute_table(${table})`.execute(db);
    }
  },
};

/**
 * Creates the chat step again as chatStepFunction now writes it, on either engine, with its
 * Citus settings (`create or replace` takes them back to the function's own): for migrations
 * that change the step's body. Its arguments and result stay the same, so its routed twin
 * keeps calling it.
 */
export async function recreateChatStep(db: Kysely<unknown>): Promise<void> {
  const citus = (await detectEngine(db)) === 'citus';
  await sql.raw(chatStepFunction(citus)).execute(db);
  const step = ROUTED_STEPS.find((s) => s.name === 'chat_store_messages');
  if (citus && step !== undefined) await tuneStepForCitus(db, step);
}

/**
 * On Citus, both steps and their routed twins as chatStepFunction/userStepFunction now write
 * them, with their Citus settings (`create or replace` takes them back to the function's own).
 * Plain PostgreSQL: nothing changes.
 */
async function recreateCitusSteps(db: Kysely<unknown>): Promise<void> {
  if ((await detectEngine(db)) !== 'citus') return;
  await sql.raw(chatStepFunction(true)).execute(db);
  await sql.raw(userStepFunction(true)).execute(db);
  for (const step of ROUTED_STEPS) {
    await tuneStepForCitus(db, step);
    await sql
      .raw(`alter function ${step.name}_at(text, ${argTypes(step.args)}) set jit = off`)
      .execute(db);
  }
}

/**
 * Migration 0010_citus_local_steps: on Citus, no statement of a step inserts rows it selected
 * in the same statement (Citus planned those CTEs apart and sent their results to every node
 * in a two-phase commit, 1-5 s per call under load), and JIT off.
 */
export const citusLocalStepsMigration: Migration = {
  up: recreateCitusSteps,
  async down(): Promise<void> {
    // The earlier bodies are equivalent; nothing to undo.
  },
};

/**
 * Migration 0016_citus_coordinator_locks: on Citus, a step that runs on the coordinator (a
 * call Citus did not delegate) holds its key locks until it commits (key-locks.ts); before,
 * two such steps could number one user's events alike or append one event twice.
 */
export const citusCoordinatorLocksMigration: Migration = {
  up: recreateCitusSteps,
  async down(): Promise<void> {
    // The earlier bodies lacked only the row locks on the coordinator; nothing to undo.
  },
};
