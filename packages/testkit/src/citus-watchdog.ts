/**
 * Stops a test Citus cluster's servers when its owner dies: started by startCitus() with a pipe
 * on stdin, it reads one data dir per line (each server as it starts) and, when stdin closes
 * (the owner exited, crashed or was killed), stops every server still running (immediate
 * mode) and removes the cluster's temp dir. A clean close() stops the servers first; then this
 * finds nothing left to do.
 *
 * Run as `node --import tsx citus-watchdog.ts <root dir> <pg bindir> <run as postgres: 0|1>`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [root, bindir, asPostgres] = process.argv.slice(2);
const dataDirs: string[] = [];

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== '') dataDirs.push(line.trim());
});
process.stdin.on('end', () => {
  for (const dir of dataDirs) {
    if (!existsSync(join(dir, 'postmaster.pid'))) continue;
    const pgCtl = join(bindir!, 'pg_ctl');
    const args = ['-D', dir, '-m', 'immediate', '-w', 'stop'];
    try {
      if (asPostgres === '1') execFileSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args]);
      else execFileSync(pgCtl, args);
    } catch {
      // Already stopping: nothing more to do for this one.
    }
  }
  if (root !== undefined && root !== '') rmSync(root, { recursive: true, force: true });
  process.exit(0);
});
// The owner's signals are not ours to act on: only a closed stdin ends the watch.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
