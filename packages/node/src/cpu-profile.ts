/**
 * A CPU profile of a running node, for finding where its time goes under load:
 * `CHAT_CPU_PROFILE=<dir>:<delayMs>:<durationMs>` starts the V8 profiler `delayMs` after start
 * and writes `<dir>/<nodeId>.cpuprofile` after `durationMs` (open it in Chrome's DevTools, or
 * summarize it with packages/bench/src/profile/cpu-top.ts). Node refuses `--cpu-prof` in
 * NODE_OPTIONS, hence the inspector module.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export function scheduleCpuProfile(spec: string | undefined, nodeId: string, log: Logger): void {
  if (spec === undefined || spec === '') return;
  const [dir = '', delay = '0', duration = '10000'] = spec.split(':');
  const delayMs = Number(delay);
  const durationMs = Number(duration);
  if (dir === '' || !(delayMs >= 0) || !(durationMs > 0)) {
    log.warn({ spec }, 'CHAT_CPU_PROFILE must be <dir>:<delayMs>:<durationMs>; not profiling');
    return;
  }
  const run = async (): Promise<void> => {
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    const { profile } = await session.post('Profiler.stop');
    const file = join(dir, `${nodeId}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
    log.info({ file }, 'cpu profile written');
  };
  setTimeout(() => {
    run().catch((err: unknown) => log.warn({ err }, 'cpu profile failed'));
  }, delayMs).unref();
}
