/** The commands chatctl knows, their options and their help text. Pure data. */
import type { FlagSpec } from './argv';
import { ExitCode } from './errors';

export interface CommandSpec {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  /** Longer explanation for `chatctl <command> --help`. */
  readonly details?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Whether the command talks to etcd (and takes --etcd / --prefix). */
  readonly cluster: boolean;
}

const json: FlagSpec = {
  type: 'boolean',
  description: 'print one JSON document on stdout (errors too) instead of text',
};
const dryRun: FlagSpec = {
  type: 'boolean',
  description: 'print the ring it would write and the users that would move; write nothing',
};
const rate: FlagSpec = {
  type: 'number',
  valueName: 'N',
  description: 'reconnects per second per draining node (default: each node its own)',
};
const wait: FlagSpec = {
  type: 'boolean',
  description: 'follow the drain until every node reports done, then print a summary',
};
const timeout: FlagSpec = {
  type: 'number',
  valueName: 'S',
  description: `with --wait: give up after S seconds (exit ${ExitCode.TIMEOUT}); default: no limit`,
};

/** Options every cluster command takes. */
export const clusterFlags: Readonly<Record<string, FlagSpec>> = Object.freeze({
  etcd: {
    type: 'string',
    valueName: 'URLS',
    description: 'etcd endpoints, comma-separated (default $CHAT_ETCD_ENDPOINTS)',
  },
  prefix: {
    type: 'string',
    valueName: 'P',
    description: 'cluster key prefix (default $CHAT_ETCD_PREFIX or /chat)',
  },
});

export const helpFlag: FlagSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** Options chatctl takes before any command. */
export const globalFlags: Readonly<Record<string, FlagSpec>> = Object.freeze({
  help: { type: 'boolean', short: 'h', description: 'list the commands and their options' },
  version: {
    type: 'boolean',
    description: "chatctl's version and the wire protocol it knows (with --json: as JSON)",
  },
  json,
});

const commandList: CommandSpec[] = [
  {
    name: 'status',
    usage: 'chatctl status [--json]',
    summary: 'nodes, liveness, membership, users, ring epoch, transition and drain progress',
    details:
      "USERS and CONNS come from each live node's GET /v1/stats (its internal listener, at the\n" +
      'internalUrl of its etcd record); "?" means it did not answer.\n' +
      'MEMBER is "joining" or "removed" for nodes the open transition adds or removes.\n' +
      'DRAIN is moved/total of the node\'s last published drain ("@E" when it is for epoch E).',
    flags: { json },
    cluster: true,
  },
  {
    name: 'ring',
    usage: 'chatctl ring [--json]',
    summary: "each member's share of the hash space and of the connected users",
    flags: { json },
    cluster: true,
  },
  {
    name: 'route',
    usage: 'chatctl route <user> [--json]',
    summary: 'the node that owns a user now and, during a transition, the one before',
    flags: { json },
    cluster: true,
  },
  {
    name: 'scale-out',
    usage:
      'chatctl scale-out <nodeId>... [--rate N] [--weight W] [--wait] [--timeout S] [--dry-run] [--json]',
    summary: 'add running (registered) nodes to the ring',
    details:
      'Writes one ring configuration (epoch + 1, with a transition from the current ring) by\n' +
      'compare-and-swap: if the ring changed since it was read nothing is written (exit 3).',
    flags: {
      rate,
      weight: {
        type: 'number',
        valueName: 'W',
        description: 'ring weight of the new members (default: the weight each node registered)',
      },
      wait,
      timeout,
      'dry-run': dryRun,
      json,
    },
    cluster: true,
  },
  {
    name: 'scale-in',
    usage: 'chatctl scale-in <nodeId>... [--rate N] [--wait] [--timeout S] [--dry-run] [--json]',
    summary: 'remove members from the ring; their users drain to the others',
    details:
      'Stop the removed nodes once the drain is done (--wait tells you). Refuses to remove the\n' +
      'last member or to leave no live member.',
    flags: { rate, wait, timeout, 'dry-run': dryRun, json },
    cluster: true,
  },
  {
    name: 'drain-rate',
    usage: 'chatctl drain-rate <n> [--wait] [--timeout S] [--dry-run] [--json]',
    summary: 'change the reconnect rate of the open transition',
    flags: { wait, timeout, 'dry-run': dryRun, json },
    cluster: true,
  },
  {
    name: 'token',
    usage: 'chatctl token <user> <device> [--ttl S] [--dev] [--json]',
    summary: 'print a device token signed with $CHAT_AUTH_SECRET',
    details:
      'Without CHAT_AUTH_SECRET it refuses, unless --dev: then it signs with "dev-secret",\n' +
      'which only local clusters accept.',
    flags: {
      ttl: { type: 'number', valueName: 'S', description: 'lifetime in seconds (default 3600)' },
      dev: { type: 'boolean', description: 'sign with the local default secret "dev-secret"' },
      json,
    },
    cluster: false,
  },
  {
    name: 'help',
    usage: 'chatctl help [command] [--json]',
    summary: 'show help for chatctl or a command',
    flags: { json },
    cluster: false,
  },
];

export const commands: readonly CommandSpec[] = Object.freeze(commandList);

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name);
}

const exitCodeHelp = [
  [ExitCode.OK, 'ok'],
  [ExitCode.ERROR, 'error (etcd unreachable, failed write, unexpected)'],
  [ExitCode.USAGE, 'usage or configuration error (nothing done)'],
  [ExitCode.CONFLICT, 'the ring changed concurrently (nothing written; run it again)'],
  [ExitCode.TIMEOUT, '--wait timed out (the change stays in place)'],
  [ExitCode.VALIDATION, 'change refused: unknown node, not alive, already a member, ...'],
  [ExitCode.INTERRUPTED, 'interrupted while waiting (the change stays in place)'],
] as const;

/** Every option a command takes: its own, the cluster options, and --help. */
export function commandFlags(spec: CommandSpec): Readonly<Record<string, FlagSpec>> {
  return { ...spec.flags, ...(spec.cluster ? clusterFlags : {}), help: helpFlag };
}

function flagLines(flags: Readonly<Record<string, FlagSpec>>, indent = '  '): string[] {
  const entries = Object.entries(flags).map(([name, f]) => [
    `${f.short === undefined ? '' : `-${f.short}, `}--${name}${f.valueName === undefined ? '' : ` ${f.valueName}`}`,
    f.description,
  ]);
  const width = Math.max(0, ...entries.map(([left]) => (left ?? '').length));
  return entries.map(([left, right]) => `${indent}${(left ?? '').padEnd(width)}  ${right}`);
}

/** Every command with its own options; `chatctl <command> --help` says more. */
export function generalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'chatctl: operate a chat cluster (see the ring, change it, follow drains, mint tokens)',
    '',
    'Usage: chatctl <command> [options]   (chatctl <command> --help for details)',
    '       chatctl --version [--json]',
    '',
    'Options before any command:',
    ...flagLines(globalFlags),
    '',
    'Commands:',
    ...commands.flatMap((c) => [
      `  ${c.name.padEnd(width)}  ${c.summary}`,
      `    ${c.usage}`,
      ...flagLines(c.flags, '      '),
    ]),
    '',
    'Cluster options (every command that reads the cluster):',
    ...flagLines(clusterFlags),
    '',
    'Environment: CHAT_ETCD_ENDPOINTS (comma list), CHAT_ETCD_PREFIX (default /chat),',
    '             CHAT_ETCD_USERNAME and CHAT_ETCD_PASSWORD (etcd auth, both or neither),',
    '             CHAT_ETCD_TLS_CA (PEM file; https:// endpoints need it), CHAT_ETCD_TLS_CERT',
    '             and CHAT_ETCD_TLS_KEY (client certificate, both or neither),',
    '             CHAT_AUTH_SECRET (token)',
    '',
    'Exit codes:',
    ...exitCodeHelp.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`),
  ].join('\n');
}

export function commandHelp(spec: CommandSpec): string {
  return [
    `Usage: ${spec.usage}`,
    '',
    spec.summary,
    ...(spec.details === undefined ? [] : ['', spec.details]),
    '',
    'Options:',
    ...flagLines(commandFlags(spec)),
  ].join('\n');
}

/** An option as `help --json` lists it. */
export interface OptionHelp {
  readonly name: string;
  readonly short: string | null;
  readonly type: FlagSpec['type'];
  readonly value: string | null;
  readonly description: string;
}

export interface CommandHelp {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  readonly details: string | null;
  readonly options: readonly OptionHelp[];
}

function optionHelp(flags: Readonly<Record<string, FlagSpec>>): OptionHelp[] {
  return Object.entries(flags).map(([name, f]) => ({
    name,
    short: f.short ?? null,
    type: f.type,
    value: f.valueName ?? null,
    description: f.description,
  }));
}

export function commandHelpDocument(spec: CommandSpec): CommandHelp {
  return {
    name: spec.name,
    usage: spec.usage,
    summary: spec.summary,
    details: spec.details ?? null,
    options: optionHelp(commandFlags(spec)),
  };
}

/** What `chatctl help --json` prints: the same content as the text help. */
export function generalHelpDocument(): {
  globalOptions: OptionHelp[];
  commands: CommandHelp[];
  exitCodes: { code: number; meaning: string }[];
} {
  return {
    globalOptions: optionHelp(globalFlags),
    commands: commands.map(commandHelpDocument),
    exitCodes: exitCodeHelp.map(([code, meaning]) => ({ code, meaning })),
  };
}
