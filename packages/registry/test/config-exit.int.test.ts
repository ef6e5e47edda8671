/**
 * The registry process itself, started with one bad setting at a time: it exits 2 and says on
 * stderr which variable is wrong and what it takes, before it opens any connection (no etcd is
 * running at the endpoint it is given).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '@chat/testkit';
import { BAD_REGISTRY_SETTINGS } from './bad-settings';

interface Exit {
  readonly code: number | null;
  readonly stderr: string;
}

function runRegistry(env: Record<string, string>): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'packages/registry/src/main.ts')],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
        timeout: 30_000,
      },
      (err, _stdout, stderr) => resolve({ code: err === null ? 0 : (err.code as number), stderr }),
    );
  });
}

// Three at a time: each is a tsx start, and the machine is shared.
const PARALLEL = 3;

describe('registry process: a bad setting stops it with the variable named', () => {
  it('exits 2 with a configuration error for a bad value of each setting', async () => {
    const base = { CHAT_ETCD_ENDPOINTS: 'http://127.0.0.1:9' };
    const results: { readonly env: Record<string, string>; readonly exit: Exit }[] = [];
    for (let i = 0; i < BAD_REGISTRY_SETTINGS.length; i += PARALLEL) {
      const batch = BAD_REGISTRY_SETTINGS.slice(i, i + PARALLEL);
      const exits = await Promise.all(batch.map((bad) => runRegistry({ ...base, ...bad.env })));
      batch.forEach((bad, j) => results.push({ env: bad.env, exit: exits[j]! }));
    }
    for (const [i, { env, exit }] of results.entries()) {
      const bad = BAD_REGISTRY_SETTINGS[i]!;
      expect({ env, code: exit.code }).toEqual({ env, code: 2 });
      expect(exit.stderr).toMatch(/^configuration error: /);
      for (const says of bad.says) expect(exit.stderr).toMatch(says);
      expect(exit.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  }, 180_000);
});
