/**
 * The processes a process started, read from /proc (Linux): Postgres forks one backend per
 * connection plus its background workers, and a fault that should hit "the server" (SIGSTOP,
 * or waiting until a SIGKILLed postmaster's orphans are gone) must reach all of them.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The parent pid in the text of /proc/<pid>/stat (the command name may hold spaces and parens). */
export function parentPidFromStat(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]);
}

/** Pids whose parent is `pid`, now. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (parentPidFromStat(stat) === pid) children.push(Number(entry));
  }
  return children;
}

/** Whether a process with this pid still exists (a zombie counts as gone). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Resident memory of a process, bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) * 1024;
}

/**
 * SIGKILLs `pid` (a postmaster) and waits until it and the processes it had started are gone:
 * orphaned backends exit once they notice, and a restart while one of them still holds the
 * shared memory would be refused.
 */
export async function killTreeAndWait(pid: number, timeoutMs = 20_000): Promise<void> {
  const children = childPids(pid);
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  while ([pid, ...children].some(isRunning)) {
    if (Date.now() > deadline) throw new Error(`processes of ${pid} outlived it`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
}

/**
 * SIGSTOPs `pid`, then every process it started; returns them, `pid` first. The parent goes
 * first, so that it forks nothing new while its children are being stopped.
 */
export function stopTree(pid: number): number[] {
  process.kill(pid, 'SIGSTOP');
  const stopped = [pid, ...childPids(pid)];
  for (const child of stopped.slice(1)) process.kill(child, 'SIGSTOP');
  return stopped;
}

/**
 * SIGCONTs what stopTree stopped, children first: a postmaster that wakes up before them may
 * take them for hung.
 */
export function continueTree(stopped: readonly number[]): void {
  for (const pid of stopped.slice().reverse()) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone meanwhile
    }
  }
}
