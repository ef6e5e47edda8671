/** Runs scripts/build-sdk.mjs into a fresh temporary directory, for the SDK packaging tests. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const run = promisify(execFile);

export interface SdkBuild {
  /** Directory holding `protocol/` and `client/`, the package directories as published. */
  readonly out: string;
  /** Tarballs of `npm pack`, when asked for. */
  readonly tarballs: { readonly protocol: string; readonly client: string } | undefined;
  remove(): void;
}

export async function buildSdk(options: { readonly pack: boolean }): Promise<SdkBuild> {
  const out = mkdtempSync(join(tmpdir(), 'chat-sdk-'));
  const argv = [join(REPO_ROOT, 'scripts/build-sdk.mjs'), '--out', out];
  if (options.pack) argv.push('--tarballs', out);
  const { stdout } = await run(process.execPath, argv, { cwd: REPO_ROOT, timeout: 120_000 });
  return {
    out,
    tarballs: options.pack ? JSON.parse(stdout) : undefined,
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}
