/** `npm start` with a bad command line: one line naming the option, exit 2, nothing started. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/node-process';

function npmStart(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'packages/testkit/src/local-cluster.ts'), ...args],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

// One case: every bad command line takes the same way out (the messages are local-args.unit's).
test('npm start --tls exits 2 with one line naming the option', async () => {
  const { code, stderr } = await npmStart(['--tls']);
  expect(stderr).toContain('npm start: unknown option --tls; usage: npm start --');
  expect(stderr).not.toContain('    at ');
  expect(code).toBe(2);
});
