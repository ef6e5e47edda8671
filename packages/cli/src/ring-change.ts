/**
 * Carrying out a planned ring change: write it with compare-and-swap (or with `--dry-run` only
 * show it and who would move), then with `--wait` follow the drain on the cluster watch.
 */
import { existsSync } from 'node:fs';
import type { ClusterSnapshot, RingConfig } from '@chat/cluster';
import { liveMembers } from '@chat/cluster';
import { ChatError } from '@chat/protocol';
import { buildRing } from '@chat/ring';
import type { ChangeDocument, DrainOutcome } from './change-report';
import { changeDocument, describeChange, renderDryRun } from './change-report';
import type { Context } from './context';
import { out, warn } from './context';
import { CliError, ExitCode } from './errors';
import type { ExitCodeValue } from './errors';
import { failureOf } from './failure';
import type { ClusterConnection } from './io';
import { collectStats } from './io';
import { estimateMoves } from './moves';
import type { RingChange } from './plan';
import { DrainFollower, describePending, renderProgress, renderSummary } from './progress';

/**
 * Test hook: when set to a path, ring-changing commands pause after reading the ring and before
 * writing it, until that file exists (makes a race of two chatctl processes deterministic).
 */
export const PAUSE_HOOK_ENV = 'CHATCTL_TEST_PAUSE_BEFORE_CAS';

export interface ApplyOptions {
  readonly command: string;
  readonly dryRun: boolean;
  readonly wait: boolean;
  readonly timeoutS: number | undefined;
}

export async function applyChange(
  ctx: Context,
  conn: ClusterConnection,
  change: RingChange,
  options: ApplyOptions,
): Promise<ExitCodeValue> {
  for (const warning of change.warnings) warn(ctx, warning);
  if (options.dryRun) return dryRun(ctx, conn, change, options.command);
  await pauseHook(ctx);
  await write(conn, change);
  const doc = changeDocument(options.command, change, false);
  if (!options.wait) {
    out(ctx, () => describeChange(doc), doc);
    return ExitCode.OK;
  }
  // The text names the write at once: the drain may take minutes.
  if (!ctx.json) ctx.io.stdout.write(`${describeChange(doc)}\n`);
  if (change.next.transition === undefined) {
    const drain: DrainOutcome = {
      done: true,
      epoch: change.next.epoch,
      usersMoved: 0,
      durationMs: 0,
      peakPerSec: {},
    };
    out(ctx, () => 'nothing to drain', { ...doc, drain });
    return ExitCode.OK;
  }
  return follow(ctx, conn, doc, options.timeoutS);
}

/** Writes nothing: the ring as planned, and who would move, from the same snapshot and stats. */
async function dryRun(
  ctx: Context,
  conn: ClusterConnection,
  change: RingChange,
  command: string,
): Promise<ExitCodeValue> {
  const snapshot = conn.view.snapshot;
  const stats = await collectStats(snapshot);
  const users = new Map([...stats].map(([id, s]) => [id, s?.users]));
  // The rings the nodes route by: the configured members that are alive, before and after.
  const before = buildRing(liveMembers(snapshot.ring?.config, snapshot.nodes));
  const after = buildRing(liveMembers(change.next, snapshot.nodes));
  const doc = changeDocument(command, change, true, estimateMoves(before, after, users));
  out(ctx, () => renderDryRun(doc), doc);
  return ExitCode.OK;
}

async function write(conn: ClusterConnection, change: RingChange): Promise<void> {
  let result;
  try {
    result = await conn.store.casRing(change.expectedModRevision, change.next);
  } catch (err) {
    if (err instanceof ChatError && err.code === 'UNAVAILABLE') {
      throw new CliError(
        ExitCode.ERROR,
        `etcd did not answer the ring write: it may or may not have happened; check with chatctl status (${err.message})`,
        'UNAVAILABLE',
      );
    }
    throw err;
  }
  if (!result.ok) {
    const now = result.current?.config;
    throw new CliError(
      ExitCode.CONFLICT,
      `the ring changed while this command ran: nothing was written. Current epoch ` +
        `${now?.epoch ?? 0} (members: ${now?.members.map((m) => m.id).join(', ') || 'none'}` +
        `${now?.transition === undefined ? '' : `, transition from epoch ${now.transition.fromEpoch} open`}` +
        '). Check chatctl status and run the command again if it still makes sense.',
      'CONFLICT',
    );
  }
}

async function pauseHook(ctx: Context): Promise<void> {
  const file = ctx.io.env[PAUSE_HOOK_ENV];
  if (file === undefined || file === '') return;
  ctx.io.stderr.write(`chatctl: test hook: paused before the ring write until ${file} exists\n`);
  while (!existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 20));
}

function drainInput(snapshot: ClusterSnapshot): {
  nodes: ClusterSnapshot['nodes'];
  ring: RingConfig | undefined;
  drains: ClusterSnapshot['drains'];
} {
  return { nodes: snapshot.nodes, ring: snapshot.ring?.config, drains: snapshot.drains };
}

/**
 * Follows the drain of the ring just written until done, timeout or Ctrl-C. Progress goes to
 * stderr; the summary to stdout (with --json: in the one document, with `error` when the wait
 * stopped before the drain was done).
 */
function follow(
  ctx: Context,
  conn: ClusterConnection,
  doc: ChangeDocument,
  timeoutS: number | undefined,
): Promise<ExitCodeValue> {
  const { io } = ctx;
  const next = doc.ring;
  const started = io.now();
  const follower = new DrainFollower(next.epoch, next.members, started);
  const tty = io.stderr.isTTY;
  let drawn = false;
  const draw = (): void => {
    const line = renderProgress(follower.status, io.now() - started);
    if (tty) {
      io.stderr.write(`\r\x1b[2K${line}`);
      drawn = true;
    } else io.stderr.write(`${line}\n`);
  };
  const clearLine = (): void => {
    if (drawn) io.stderr.write('\n');
    drawn = false;
  };

  return new Promise<ExitCodeValue>((resolve) => {
    const disposers: (() => void)[] = [];
    const finish = (code: ExitCodeValue, report: () => void): void => {
      for (const dispose of disposers.splice(0)) dispose();
      clearLine();
      report();
      resolve(code);
    };
    /** Ends the wait early: the change stays; says why on stderr, or in the JSON document. */
    const stop = (error: CliError): void =>
      finish(error.exitCode, () => {
        const { status } = follower;
        if (ctx.json) {
          const drain: DrainOutcome = { done: false, epoch: status.epoch, status };
          out(ctx, () => '', { ...doc, drain, error: failureOf(error) });
        } else io.stderr.write(`chatctl: ${error.message}\n`);
      });
    const check = (snapshot: ClusterSnapshot): void => {
      const update = follower.update(drainInput(snapshot));
      if (update.notes.length > 0) {
        clearLine();
        for (const note of update.notes) io.stderr.write(`chatctl: ${note}\n`);
      }
      if (update.status.finished) {
        draw();
        finish(ExitCode.OK, () => {
          const summary = follower.summary(io.now());
          out(ctx, () => renderSummary(summary), { ...doc, drain: { done: true, ...summary } });
        });
      } else if (tty) draw();
    };
    disposers.push(conn.view.onChange(({ snapshot }) => check(snapshot)));
    const ticker = setInterval(draw, 1_000);
    disposers.push(() => clearInterval(ticker));
    if (timeoutS !== undefined) {
      const timer = setTimeout(() => {
        stop(
          new CliError(
            ExitCode.TIMEOUT,
            `timeout: the drain to epoch ${follower.status.epoch} is not done after ` +
              `${timeoutS}s; still draining: ${describePending(follower.status)}. The ring ` +
              'change stays in place; follow it with chatctl status.',
            'TIMEOUT',
          ),
        );
      }, timeoutS * 1_000);
      disposers.push(() => clearTimeout(timer));
    }
    disposers.push(
      io.onInterrupt(() =>
        stop(
          new CliError(
            ExitCode.INTERRUPTED,
            `stopped following; the ring change (epoch ${next.epoch}) stays in place`,
            'INTERRUPTED',
          ),
        ),
      ),
    );
    check(conn.view.snapshot);
  });
}
