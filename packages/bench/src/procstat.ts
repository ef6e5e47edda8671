/**
 * CPU time and memory of processes from /proc (Linux only): a process's own utime + stime, and
 * for Postgres the postmaster plus every child of it, plus what its exited children used
 * (cutime + cstime, which the postmaster collects when it reaps them).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (usually 100). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, ticks. */
  readonly ownTicks: number;
  /** cutime + cstime: waited-for children, ticks. */
  readonly childTicks: number;
}

/** Parses the text of /proc/<pid>/stat; the command name may contain spaces and parens. */
export function parseStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf(' ')));
  // Fields after the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const field = (n: number): number => Number(rest[n - 3]);
  return {
    pid,
    ppid: field(4),
    ownTicks: field(14) + field(15),
    childTicks: field(16) + field(17),
  };
}

export function readStat(pid: number): ProcStat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null; // gone
  }
}

/** CPU seconds (user + system) a process has used so far; 0 if it is gone. */
export function processCpuSeconds(pid: number): number {
  const stat = readStat(pid);
  return stat === null ? 0 : stat.ownTicks / ticksPerSecond();
}

/** The parent pid of a process, or null if it is gone. */
export function parentPid(pid: number): number | null {
  return readStat(pid)?.ppid ?? null;
}

/**
 * CPU seconds used so far by a process tree one level deep: the root (own + reaped children)
 * plus its live children. Used for the postmaster and its backends and auxiliary processes.
 */
export function treeCpuSeconds(rootPid: number): number {
  const root = readStat(rootPid);
  if (root === null) return 0;
  let ticks = root.ownTicks + root.childTicks;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat !== null && stat.ppid === rootPid) ticks += stat.ownTicks;
  }
  return ticks / ticksPerSecond();
}

/** Resident set size of a process in bytes (VmRSS), or null if it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
