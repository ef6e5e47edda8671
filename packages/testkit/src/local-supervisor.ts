/**
 * Ctrl-C in a terminal sends SIGINT to every process of the foreground process group: without
 * care, Postgres, etcd, the nodes and the registry would all stop at once, in no order, while
 * the launcher still talks to them (pg's "the database system is shutting down"). So `npm start`
 * runs the launcher in a process group of its own, under a small supervisor that stays in the
 * terminal's group: the supervisor alone gets the terminal's signals and hands them to the
 * launcher, which stops what it started in order. The launcher also stops everything when the
 * supervisor goes away without a word (killed), as its IPC channel then closes.
 */
import { spawn } from 'node:child_process';

/** Whether this process is the launcher a supervisor started (it has the IPC channel). */
export function isSupervised(): boolean {
  return process.channel !== undefined;
}

/**
 * Restarts this script (same Node options and arguments) as the launcher in a process group of
 * its own, forwards SIGINT, SIGTERM and SIGHUP to it, and exits with its exit code.
 */
export function superviseThisScript(): void {
  const launcher = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  const forward = (signal: NodeJS.Signals): void => {
    if (launcher.exitCode === null && launcher.signalCode === null) launcher.kill(signal);
  };
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  // The terminal went away: stop as on SIGTERM.
  process.on('SIGHUP', () => forward('SIGTERM'));
  launcher.on('exit', (code) => process.exit(code ?? 1));
}

/**
 * Calls `stop` once, on the first of SIGINT, SIGTERM or the supervisor's going away.
 *
 * @example onStopRequest(() => void stopAll());
 */
export function onStopRequest(stop: () => void): void {
  let requested = false;
  const once = (): void => {
    if (requested) return;
    requested = true;
    stop();
  };
  process.on('SIGINT', once);
  process.on('SIGTERM', once);
  process.on('disconnect', once);
}
