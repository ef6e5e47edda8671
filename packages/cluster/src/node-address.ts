/**
 * Checks of the addresses a node publishes about itself. Everyone who can write to etcd can
 * publish a node record; the registry hands its `wsUrl` to clients (who send their token there)
 * and peers dial its `rpcAddress`, so a record is used only when its addresses are plain
 * network locations: no script or file URLs, no credentials, nothing but a host and a port.
 * Pure: no I/O.
 */

/** URL schemes a node's client URL may use. */
export const CLIENT_URL_SCHEMES: readonly string[] = Object.freeze(['ws:', 'wss:']);
/** URL schemes of a node's internal (operator) listener. */
export const INTERNAL_URL_SCHEMES: readonly string[] = Object.freeze(['http:', 'https:']);

/**
 * Why `raw` is not a usable node URL with one of `schemes`, or undefined when it is.
 *
 * @example nodeUrlProblem('javascript:alert(1)', CLIENT_URL_SCHEMES) // 'scheme javascript: ...'
 */
export function nodeUrlProblem(raw: string, schemes: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (!schemes.includes(url.protocol)) {
    return `scheme ${url.protocol} is not one of ${schemes.join(' ')}`;
  }
  if (url.username !== '' || url.password !== '') return 'carries credentials';
  if (url.hostname === '') return 'has no host';
  if (url.hash !== '') return 'carries a fragment';
  return undefined;
}

/** Why `raw` is not `host:port` or `[v6]:port` (port 1-65535), or undefined when it is. */
export function hostPortProblem(raw: string): string | undefined {
  const match = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[1]);
  return match !== null && port > 0 && port < 65536 ? undefined : 'not host:port';
}
