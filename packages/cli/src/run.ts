/**
 * chatctl's commands: parse, read the cluster, decide with the pure modules, write, print.
 * Everything outside the process (streams, environment, clock, signals) comes in through
 * {@link CliIo}, so `run` never exits the process itself: it resolves with the exit code.
 */
import type { EtcdSecurity } from '@chat/cluster';
import { etcdSecurityFromEnv } from '@chat/cluster';
import { isValidId, signToken } from '@chat/protocol';
import type { ParsedArgs } from './argv';
import { flagBoolean, flagNumber, flagString, parseArgv, positiveOption, wantsJson } from './argv';
import type { CommandSpec } from './commands';
import {
  commandFlags,
  commandHelp,
  commandHelpDocument,
  findCommand,
  generalHelp,
  generalHelpDocument,
  globalFlags,
} from './commands';
import type { CliIo, Context } from './context';
import { out, warn } from './context';
import { ExitCode, UsageError } from './errors';
import type { ExitCodeValue } from './errors';
import { failureOf, renderFailure } from './failure';
import type { FailureDocument } from './failure';
import type { ClusterConnection } from './io';
import { collectStats, connectCluster } from './io';
import { planDrainRate, planScaleIn, planScaleOut } from './plan';
import {
  renderRing,
  renderRoute,
  renderStatus,
  ringReport,
  routeReport,
  statusReport,
} from './report';
import { applyChange } from './ring-change';
import type { ApplyOptions } from './ring-change';
import { renderVersion, versionInfo } from './version';

const ETCD_TIMEOUT_MS = 5_000;
const DEV_SECRET = 'dev-secret';

/**
 * Runs one chatctl invocation.
 * @example process.exitCode = await run(process.argv.slice(2), nodeIo());
 */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCodeValue> {
  const [name, ...rest] = argv;
  const json = wantsJson(argv);
  try {
    if (name === undefined) {
      io.stderr.write(`${generalHelp()}\n`);
      return ExitCode.USAGE;
    }
    if (name.startsWith('-')) return globalOptions(argv, io);
    const spec = findCommand(name);
    if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    const args = parseArgv(rest, commandFlags(spec));
    const ctx: Context = { io, args, json };
    if (flagBoolean(args, 'help')) {
      out(ctx, () => commandHelp(spec), commandHelpDocument(spec));
      return ExitCode.OK;
    }
    return await dispatch(spec, ctx);
  } catch (err) {
    return report(io, err, name, json);
  }
}

/** `chatctl --help`, `chatctl --version`, with or without `--json`. */
function globalOptions(argv: readonly string[], io: CliIo): ExitCodeValue {
  const args = parseArgv(argv, globalFlags);
  const [command] = args.positionals;
  if (command !== undefined) {
    throw new UsageError(`options go after the command: chatctl ${command} ${argv[0]}`);
  }
  const ctx: Context = { io, args, json: flagBoolean(args, 'json') };
  if (flagBoolean(args, 'version')) out(ctx, () => renderVersion(versionInfo()), versionInfo());
  else if (flagBoolean(args, 'help')) out(ctx, generalHelp, generalHelpDocument());
  else throw new UsageError('name a command');
  return ExitCode.OK;
}

function report(
  io: CliIo,
  err: unknown,
  command: string | undefined,
  json: boolean,
): ExitCodeValue {
  const failure = failureOf(err);
  if (json) {
    const document: FailureDocument = { error: failure };
    io.stdout.write(`${JSON.stringify(document)}\n`);
  } else {
    const hint = findCommand(command ?? '') ? `chatctl ${command} --help` : 'chatctl help';
    io.stderr.write(`${renderFailure(err, hint)}\n`);
  }
  return failure.exitCode;
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

async function help(ctx: Context): Promise<ExitCodeValue> {
  const topic = ctx.args.positionals[0];
  if (topic === undefined) {
    out(ctx, generalHelp, generalHelpDocument());
    return ExitCode.OK;
  }
  const spec = findCommand(topic);
  if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
  out(ctx, () => commandHelp(spec), commandHelpDocument(spec));
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
  const signed = signToken({ sub: user, dev: device, iat, exp }, secret);
  out(ctx, () => signed, { token: signed, user, device, issuedAt: iat, expiresAt: exp });
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
  out(ctx, () => renderStatus(report), { prefix: conn.prefix, ...report });
  return ExitCode.OK;
}

async function ring(ctx: Context, conn: ClusterConnection): Promise<ExitCodeValue> {
  const snapshot = conn.view.snapshot;
  const report = ringReport(snapshot, await collectStats(snapshot));
  out(ctx, () => renderRing(report), report);
  return ExitCode.OK;
}

async function route(ctx: Context, conn: ClusterConnection): Promise<ExitCodeValue> {
  const user = ctx.args.positionals[0] as string;
  if (!isValidId(user)) throw new UsageError('user id must be 1-64 of [A-Za-z0-9._-]');
  const report = routeReport(conn.view.snapshot, user);
  out(ctx, () => renderRoute(report), report);
  return report.node === null ? ExitCode.ERROR : ExitCode.OK;
}

// The ring commands check their options before connecting: a usage error needs no cluster.

function scaleOut(ctx: Context): ClusterCommand {
  const rate = positiveOption(ctx.args, 'rate');
  const weight = flagNumber(ctx.args, 'weight');
  const options = changeOptions(ctx, 'scale-out');
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
    return applyChange(ctx, conn, change, options);
  };
}

function scaleIn(ctx: Context): ClusterCommand {
  const rate = positiveOption(ctx.args, 'rate');
  const options = changeOptions(ctx, 'scale-in');
  return async (_, conn) => {
    const current = await conn.store.readRing();
    const change = planScaleIn({
      current,
      nodes: conn.view.snapshot.nodes,
      ids: ctx.args.positionals,
      now: ctx.io.now(),
      ...(rate === undefined ? {} : { ratePerSec: rate }),
    });
    return applyChange(ctx, conn, change, options);
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
  const options = changeOptions(ctx, 'drain-rate');
  return async (_, conn) => {
    const change = planDrainRate({ current: await conn.store.readRing(), ratePerSec: rate });
    return applyChange(ctx, conn, change, options);
  };
}

/** --timeout only makes sense with --wait, and --wait only with a write. */
function changeOptions(ctx: Context, command: string): ApplyOptions {
  const timeoutS = positiveOption(ctx.args, 'timeout');
  const wait = flagBoolean(ctx.args, 'wait');
  const dryRun = flagBoolean(ctx.args, 'dry-run');
  if (timeoutS !== undefined && !wait) throw new UsageError('--timeout needs --wait');
  if (dryRun && wait)
    throw new UsageError('--dry-run writes nothing: there is no drain to --wait for');
  return { command, dryRun, wait, timeoutS };
}
