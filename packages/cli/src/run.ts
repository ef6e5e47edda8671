/**
 * chatctl's commands: parse, read the cluster, decide with the pure modules, write, print.
 * Everything outside the process (streams, environment, clock, signals) comes in through
 * {@link CliIo}, so `run` never exits the process itself: it resolves with the exit code.
 */
import { existsSync } from 'node:fs';
import type { ClusterSnapshot, EtcdSecurity, RingConfig } from '@chat/cluster';
import { etcdSecurityFromEnv } from '@chat/cluster';
import { ChatError, isValidId, signToken } from '@chat/protocol';
import type { ParsedArgs } from './argv';
import { flagBoolean, flagNumber, flagString, parseArgv, positiveOption } from './argv';
import type { CommandSpec } from './commands';
import { clusterFlags, commandHelp, findCommand, generalHelp, helpFlag } from './commands';
import { CliError, ExitCode, UsageError } from './errors';
import type { ExitCodeValue } from './errors';
import type { ClusterConnection } from './io';
import { collectStats, connectCluster } from './io';
import type { RingChange } from './plan';
import { planDrainRate, planScaleIn, planScaleOut } from './plan';
import { DrainFollower, describePending, renderProgress, renderSummary } from './progress';
import {
  renderRing,
  renderRoute,
  renderStatus,
  ringReport,
  routeReport,
  statusReport,
} from './report';
import { formatRate } from './table';

export interface CliOutput {
  write(text: string): void;
}

export interface CliIo {
  readonly stdout: CliOutput;
  /** Progress goes here; redrawn in place when it is a terminal. */
  readonly stderr: CliOutput & { readonly isTTY: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** ms since the epoch. */
  now(): number;
  /** Registers a Ctrl-C handler; returns its disposer. */
  onInterrupt(handler: () => void): () => void;
}

/**
 * Test hook: when set to a path, ring-changing commands pause after reading the ring and before
 * writing it, until that file exists (makes a race of two chatctl processes deterministic).
 */
export const PAUSE_HOOK_ENV = 'CHATCTL_TEST_PAUSE_BEFORE_CAS';
const ETCD_TIMEOUT_MS = 5_000;
const DEV_SECRET = 'dev-secret';

interface Context {
  readonly io: CliIo;
  readonly args: ParsedArgs;
}

/**
 * Runs one chatctl invocation.
 * @example process.exitCode = await run(process.argv.slice(2), nodeIo());
 */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCodeValue> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) {
      io.stderr.write(`${generalHelp()}\n`);
      return ExitCode.USAGE;
    }
    if (name === '--help' || name === '-h') {
      io.stdout.write(`${generalHelp()}\n`);
      return ExitCode.OK;
    }
    const spec = findCommand(name);
    if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    const args = parseArgv(rest, {
      ...spec.flags,
      ...(spec.cluster ? clusterFlags : {}),
      help: helpFlag,
    });
    if (flagBoolean(args, 'help')) {
      io.stdout.write(`${commandHelp(spec)}\n`);
      return ExitCode.OK;
    }
    return await dispatch(spec, { io, args });
  } catch (err) {
    return report(io, err, name);
  }
}

function report(io: CliIo, err: unknown, command: string | undefined): ExitCodeValue {
  if (err instanceof UsageError) {
    const hint = findCommand(command ?? '') ? `chatctl ${command} --help` : 'chatctl help';
    io.stderr.write(`chatctl: ${err.message} (see ${hint})\n`);
    return err.exitCode;
  }
  if (err instanceof CliError) {
    io.stderr.write(
      `chatctl: ${err.reason === undefined ? '' : `[${err.reason}] `}${err.message}\n`,
    );
    return err.exitCode;
  }
  if (err instanceof ChatError) {
    io.stderr.write(`chatctl: [${err.code}] ${err.message}\n`);
    return ExitCode.ERROR;
  }
  io.stderr.write(`chatctl: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
  return ExitCode.ERROR;
}

function dispatch(spec: CommandSpec, ctx: Context): Promise<ExitCodeValue> {
  switch (spec.name) {
    case 'help':
      return help(ctx);
    case 'token':
      return token(ctx);
    case 'status':
      return withCluster(ctx, 0, status);
    case 'ring':
      return withCluster(ctx, 0, ring);
    case 'route':
      return withCluster(ctx, 1, route);
    case 'scale-out':
      return withCluster(ctx, 'some', scaleOut(ctx));
    case 'scale-in':
      return withCluster(ctx, 'some', scaleIn(ctx));
    case 'drain-rate':
      return withCluster(ctx, 1, drainRate(ctx));
    default:
      throw new UsageError(`unknown command ${spec.name}`);
  }
}

function checkPositionals(args: ParsedArgs, count: number | 'some', what: string): void {
  const n = args.positionals.length;
  if (count === 'some' ? n === 0 : n !== count) {
    throw new UsageError(
      count === 0 ? `unexpected argument ${args.positionals[0]}` : `expected ${what}, got ${n}`,
    );
  }
}

function out(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value)}\n`);
}

function warn(ctx: Context, text: string): void {
  ctx.io.stderr.write(`chatctl: warning: ${text}\n`);
}

async function help(ctx: Context): Promise<ExitCodeValue> {
  const topic = ctx.args.positionals[0];
  if (topic === undefined) {
    out(ctx, generalHelp());
    return ExitCode.OK;
  }
  const spec = findCommand(topic);
  if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
  out(ctx, commandHelp(spec));
  return ExitCode.OK;
}

async function token(ctx: Context): Promise<ExitCodeValue> {
  checkPositionals(ctx.args, 2, '<user> <device>');
  const [user, device] = ctx.args.positionals as [string, string];
  for (const [what, id] of [
    ['user', user],
    ['device', device],
  ] as const) {
    if (!isValidId(id)) throw new UsageError(`${what} id must be 1-64 of [A-Za-z0-9._-]`);
  }
  const ttl = positiveOption(ctx.args, 'ttl') ?? 3600;
  let secret = ctx.io.env['CHAT_AUTH_SECRET'];
  if (secret === undefined || secret === '') {
    if (!flagBoolean(ctx.args, 'dev')) {
      throw new UsageError('CHAT_AUTH_SECRET is not set (use --dev for a local cluster)');
    }
    warn(ctx, `CHAT_AUTH_SECRET is not set: signing with the dev secret "${DEV_SECRET}"`);
    secret = DEV_SECRET;
  }
  const iat = Math.floor(ctx.io.now() / 1000);
  const exp = Math.floor(ctx.io.now() / 1000 + ttl);
  out(ctx, signToken({ sub: user, dev: device, iat, exp }, secret));
  return ExitCode.OK;
}

type ClusterCommand = (ctx: Context, conn: ClusterConnection) => Promise<ExitCodeValue>;

async function withCluster(
  ctx: Context,
  positionals: number | 'some',
  command: ClusterCommand,
): Promise<ExitCodeValue> {
  checkPositionals(ctx.args, positionals, positionals === 'some' ? 'node ids' : 'an argument');
  const raw = flagString(ctx.args, 'etcd') ?? ctx.io.env['CHAT_ETCD_ENDPOINTS'] ?? '';
  const endpoints = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (endpoints.length === 0) {
    throw new UsageError(
      'CHAT_ETCD_ENDPOINTS is not set: give the etcd endpoints (comma-separated, e.g. the ' +
        'etcd= of the READY line of npm start) or --etcd',
    );
  }
  const prefix = flagString(ctx.args, 'prefix') ?? ctx.io.env['CHAT_ETCD_PREFIX'] ?? '/chat';
  if (prefix.replace(/\/+$/, '') === '') throw new UsageError('the prefix must not be empty');
  let security: EtcdSecurity;
  try {
    security = etcdSecurityFromEnv(ctx.io.env, endpoints);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const conn = await connectCluster({ endpoints, prefix, security, timeoutMs: ETCD_TIMEOUT_MS });
  try {
    return await command(ctx, conn);
  } finally {
    await conn.close();
  }
}

async function status(ctx: Context, conn: ClusterConnection): Promise<ExitCodeValue> {
  const snapshot = conn.view.snapshot;
  const report = statusReport(snapshot, await collectStats(snapshot), ctx.io.now());
  out(
    ctx,
    flagBoolean(ctx.args, 'json') ? { prefix: conn.prefix, ...report } : renderStatus(report),
  );
  return ExitCode.OK;
}

async function ring(ctx: Context, conn: ClusterConnection): Promise<ExitCodeValue> {
  const snapshot = conn.view.snapshot;
  const report = ringReport(snapshot, await collectStats(snapshot));
  out(ctx, flagBoolean(ctx.args, 'json') ? report : renderRing(report));
  return ExitCode.OK;
}

async function route(ctx: Context, conn: ClusterConnection): Promise<ExitCodeValue> {
  const user = ctx.args.positionals[0] as string;
  if (!isValidId(user)) throw new UsageError('user id must be 1-64 of [A-Za-z0-9._-]');
  const report = routeReport(conn.view.snapshot, user);
  out(ctx, flagBoolean(ctx.args, 'json') ? report : renderRoute(report));
  return report.node === null ? ExitCode.ERROR : ExitCode.OK;
}

// The ring commands check their options before connecting: a usage error needs no cluster.

function scaleOut(ctx: Context): ClusterCommand {
  const rate = positiveOption(ctx.args, 'rate');
  const weight = flagNumber(ctx.args, 'weight');
  const timeoutS = waitOptions(ctx);
  return async (_, conn) => {
    const current = await conn.store.readRing();
    const change = planScaleOut({
      current,
      nodes: conn.view.snapshot.nodes,
      ids: ctx.args.positionals,
      now: ctx.io.now(),
      ...(rate === undefined ? {} : { ratePerSec: rate }),
      ...(weight === undefined ? {} : { weight }),
    });
    return apply(ctx, conn, change, timeoutS);
  };
}

function scaleIn(ctx: Context): ClusterCommand {
  const rate = positiveOption(ctx.args, 'rate');
  const timeoutS = waitOptions(ctx);
  return async (_, conn) => {
    const current = await conn.store.readRing();
    const change = planScaleIn({
      current,
      nodes: conn.view.snapshot.nodes,
      ids: ctx.args.positionals,
      now: ctx.io.now(),
      ...(rate === undefined ? {} : { ratePerSec: rate }),
    });
    return apply(ctx, conn, change, timeoutS);
  };
}

function drainRate(ctx: Context): ClusterCommand {
  const raw = ctx.args.positionals[0] ?? '';
  const rate = Number(raw);
  if (
    ctx.args.positionals.length === 1 &&
    (raw.trim() === '' || !(rate > 0) || !Number.isFinite(rate))
  ) {
    throw new UsageError(`the rate must be a positive number, got ${JSON.stringify(raw)}`);
  }
  const timeoutS = waitOptions(ctx);
  return async (_, conn) => {
    const change = planDrainRate({ current: await conn.store.readRing(), ratePerSec: rate });
    return apply(ctx, conn, change, timeoutS);
  };
}

/** --timeout only makes sense with --wait; returns the timeout in seconds if any. */
function waitOptions(ctx: Context): number | undefined {
  const timeoutS = positiveOption(ctx.args, 'timeout');
  if (timeoutS !== undefined && !flagBoolean(ctx.args, 'wait')) {
    throw new UsageError('--timeout needs --wait');
  }
  return timeoutS;
}

function describeChange(change: RingChange, previousEpoch: number): string {
  const next = change.next;
  const delta = [...change.added.map((id) => `+${id}`), ...change.removed.map((id) => `-${id}`)];
  const members = next.members.map((m) => (m.weight === 1 ? m.id : `${m.id}(w${m.weight})`));
  const rate =
    next.transition === undefined ? '' : `; drain rate ${formatRate(next.transition.ratePerSec)}`;
  return (
    `wrote ring epoch ${next.epoch} (was ${previousEpoch})` +
    `${delta.length > 0 ? ` ${delta.join(' ')}` : ''}: members ${members.join(', ')}${rate}`
  );
}

async function apply(
  ctx: Context,
  conn: ClusterConnection,
  change: RingChange,
  timeoutS: number | undefined,
): Promise<ExitCodeValue> {
  for (const warning of change.warnings) warn(ctx, warning);
  await pauseHook(ctx);
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
  out(ctx, describeChange(change, change.next.epoch - 1));
  if (!flagBoolean(ctx.args, 'wait')) return ExitCode.OK;
  if (change.next.transition === undefined) {
    out(ctx, 'nothing to drain');
    return ExitCode.OK;
  }
  return follow(ctx, conn, change.next, timeoutS);
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

/** Follows the drain of `next` until done, timeout or Ctrl-C. */
function follow(
  ctx: Context,
  conn: ClusterConnection,
  next: RingConfig,
  timeoutS: number | undefined,
): Promise<ExitCodeValue> {
  const { io } = ctx;
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
    const finish = (code: ExitCodeValue, message?: () => void): void => {
      for (const dispose of disposers.splice(0)) dispose();
      clearLine();
      message?.();
      resolve(code);
    };
    const check = (snapshot: ClusterSnapshot): void => {
      const update = follower.update(drainInput(snapshot));
      if (update.notes.length > 0) {
        clearLine();
        for (const note of update.notes) io.stderr.write(`chatctl: ${note}\n`);
      }
      if (update.status.finished) {
        draw();
        finish(ExitCode.OK, () => out(ctx, renderSummary(follower.summary(io.now()))));
      } else if (tty) draw();
    };
    disposers.push(conn.view.onChange(({ snapshot }) => check(snapshot)));
    const ticker = setInterval(draw, 1_000);
    disposers.push(() => clearInterval(ticker));
    if (timeoutS !== undefined) {
      const timer = setTimeout(() => {
        finish(ExitCode.TIMEOUT, () =>
          io.stderr.write(
            `chatctl: timeout: the drain to epoch ${follower.status.epoch} is not done after ` +
              `${timeoutS}s; still draining: ${describePending(follower.status)}. The ring ` +
              'change stays in place; follow it with chatctl status.\n',
          ),
        );
      }, timeoutS * 1_000);
      disposers.push(() => clearTimeout(timer));
    }
    disposers.push(
      io.onInterrupt(() =>
        finish(ExitCode.INTERRUPTED, () =>
          io.stderr.write(
            `chatctl: stopped following; the ring change (epoch ${next.epoch}) stays in place\n`,
          ),
        ),
      ),
    );
    check(conn.view.snapshot);
  });
}
