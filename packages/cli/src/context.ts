/** What every command gets: the process's I/O, its parsed arguments, and how to print. */
import type { ParsedArgs } from './argv';

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

export interface Context {
  readonly io: CliIo;
  readonly args: ParsedArgs;
  /** `--json`: stdout gets exactly one JSON document, whatever happens. */
  readonly json: boolean;
}

/** The command's result: `document` as one line of JSON with --json, else `text`. */
export function out(ctx: Context, text: () => string, document: unknown): void {
  ctx.io.stdout.write(ctx.json ? `${JSON.stringify(document)}\n` : `${text()}\n`);
}

/** For the operator's eyes only (stderr), also with --json. */
export function warn(ctx: Context, text: string): void {
  ctx.io.stderr.write(`chatctl: warning: ${text}\n`);
}
