/**
 * Summarizes a `.cpuprofile` (from `--cpu-prof`): self time by function and by where the code
 * lives (package, native, GC, idle).
 *
 * Run: npx tsx packages/bench/src/profile/cpu-top.ts <file.cpuprofile> [top=20]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, name: string): string {
  if (name === '(garbage collector)' || name === '(idle)' || name === '(program)') return name;
  if (url === '') return '(native / builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const pkg = /packages\/([^/]+)\/src\/(.*)$/.exec(url);
  if (pkg) return `@chat/${pkg[1]}`;
  if (url.startsWith('node:')) return 'node core';
  return url.replace(/^.*\//, '');
}

function main(): void {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: cpu-top.ts <file.cpuprofile> [top]');
  const top = Number(process.argv[3] ?? 20);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  let total = 0;
  let idle = 0;
  const fn = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    total += us;
    if (functionName === '(idle)') idle += us;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1)} %`;
  console.log(
    `profile ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (percentages of busy)`,
  );
  console.log('\nby area:');
  for (const [a, us] of [...areas]
    .filter(([a]) => a !== '(idle)')
    .sort((x, y) => y[1] - x[1])
    .slice(0, 15)) {
    console.log(`  ${pct(us).padStart(7)}  ${a}`);
  }
  console.log('\ntop functions (self):');
  for (const [k, us] of [...fn]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    console.log(`  ${pct(us).padStart(7)}  ${k}`);
  }
}

main();
