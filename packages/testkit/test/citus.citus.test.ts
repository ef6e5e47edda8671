import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from '../src/wait';

const REPO_ROOT = resolve(__dirname, '../../..');

test('the servers of a test Citus cluster stop when the process that started them is killed', async () => {
  const holder = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(__dirname, 'fixtures/hold-citus.ts')],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolveLine, reject) => {
    createInterface({ input: holder.stdout }).once('line', resolveLine);
    holder.once('exit', (code) => reject(new Error(`holder exited (${code}) before it was ready`)));
  });
  const { dataDirs } = JSON.parse(line) as { dataDirs: string[] };
  expect(dataDirs).toHaveLength(2);
  for (const dir of dataDirs) expect(existsSync(join(dir, 'postmaster.pid'))).toBe(true);

  holder.kill('SIGKILL');
  // The watchdog stops them and removes their data.
  await waitFor(() => expect(dataDirs.filter((dir) => existsSync(dir))).toEqual([]), 30_000);
});
