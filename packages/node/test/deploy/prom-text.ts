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
