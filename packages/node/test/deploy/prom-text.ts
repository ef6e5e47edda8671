/** A minimal reader of the Prometheus text format, for tests that scrape `/metrics`. */
export type Scrape = ReadonlyMap<string, number>;

/** `name{labels} value` lines -> map from `name{labels}` (as written) to value. */
export function parsePromText(text: string): Scrape {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** Sum of every series of a metric, optionally only those whose labels contain `having`. */
export function total(scrape: Scrape, name: string, having = ''): number {
  let sum = 0;
  for (const [series, value] of scrape) {
    const bare = series.split('{')[0];
    if (bare === name && series.includes(having)) sum += value;
  }
  return sum;
}

/** Whether any series of the metric exists. */
export function has(scrape: Scrape, name: string): boolean {
  for (const series of scrape.keys()) if (series.split('{')[0] === name) return true;
  return false;
}

export async function scrape(httpUrl: string): Promise<Scrape> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/plain'))
    throw new Error(`/metrics content-type ${res.headers.get('content-type')}`);
  return parsePromText(await res.text());
}

/**
 * What breaks Prometheus' naming conventions in a `/metrics` text, by its `# TYPE` lines: a
 * counter of ours (`chat_*`) not ending in `_total`, a gauge of ours ending in it, any series
 * with an `instance` label (Prometheus adds `instance`, the scraped target, itself).
 * prom-client's own `nodejs_active_{handles,requests,resources}_total` gauges are its names, kept
 * as every Node.js dashboard knows them.
 */
export function conventionProblems(text: string): string[] {
  const problems: string[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null && type[1]!.startsWith('chat_')) {
      const [, name, kind] = type;
      if (kind === 'counter' && !name!.endsWith('_total'))
        problems.push(`counter ${name} does not end in _total`);
      if (kind === 'gauge' && name!.endsWith('_total'))
        problems.push(`gauge ${name} ends in _total`);
    } else if (type === null && !line.startsWith('#') && /[{,]instance="/.test(line)) {
      problems.push(`series with an instance label: ${line}`);
    }
  }
  return problems;
}

/** The `/metrics` text of a node's or the registry's internal listener. */
export async function scrapeText(httpUrl: string): Promise<string> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}
