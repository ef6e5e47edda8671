/**
 * `npm start` as a test runs it: scripts/start.sh with arguments, in a process group of its own,
 * its output collected, until the READY line. Tests then use what it printed and stop it with
 * Ctrl-C (SIGINT), as a user would; `kill()` in afterAll ends a run a failed test left behind.
 *
 * @example
 * const run = await LocalRun.start(['--citus']);
 * const registry = run.readyField('registry');
 * ...
 * expect(await run.interrupt()).toBe(0);
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { REPO_ROOT } from './node-process';
import { waitFor } from './wait';

export class LocalRun {
  private text = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly launcher: ChildProcess) {
    launcher.stdout!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    launcher.stderr!.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    this.exited = new Promise((resolve) => launcher.on('exit', resolve));
  }

  /** Starts `npm start -- <args>` and waits (up to `readyMs`) for its READY line. */
  static async start(args: readonly string[], readyMs = 90_000): Promise<LocalRun> {
    const launcher = spawn('bash', ['scripts/start.sh', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so that a hung run can be ended whole
    });
    const run = new LocalRun(launcher);
    try {
      await waitFor(() => {
        if (!/^READY registry=\S+ etcd=\S+ prefix=\S+$/m.test(run.output))
          throw new Error(`no READY line yet; output so far:\n${run.output}`);
      }, readyMs);
    } catch (err) {
      await run.kill();
      throw err;
    }
    return run;
  }

  /** Everything it printed so far (stdout and stderr). */
  get output(): string {
    return this.text;
  }

  /** The value of `name=` in the READY line. */
  readyField(name: string): string {
    const line = this.text.split('\n').find((l) => l.startsWith('READY '))!;
    return new RegExp(`${name}=(\\S+)`).exec(line)![1]!;
  }

  /** SIGINT to the launcher alone; resolves with the exit code. */
  interrupt(): Promise<number | null> {
    this.launcher.kill('SIGINT');
    return this.exited;
  }

  /**
   * Ctrl-C as a terminal sends it: SIGINT to every process of the run's process group; resolves
   * with the exit code.
   */
  ctrlC(): Promise<number | null> {
    process.kill(-this.launcher.pid!, 'SIGINT');
    return this.exited;
  }

  /**
   * For afterAll: Ctrl-C if it still runs, then SIGKILL to the whole process group if it has
   * not gone within `graceMs`.
   */
  async kill(graceMs = 30_000): Promise<void> {
    const pid = this.launcher.pid;
    if (pid === undefined || this.launcher.exitCode !== null || this.launcher.signalCode !== null)
      return;
    this.launcher.kill('SIGINT');
    const timer = setTimeout(() => process.kill(-pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
