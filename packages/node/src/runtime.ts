/**
 * Which Node.js the chat node runs on. The WebSocket server is uWebSockets.js, a native addon:
 * the pinned build (`@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0`, see README "Node.js
 * support") ships binaries for Node ABI 93, 108 and 115 (Node.js 16, 18, 20) only, and on any
 * other Node it falls back to a slow JavaScript server. Node.js 16 and 18 are below what the
 * repository supports, so Node.js 20 is the one line that runs; this says so before anything
 * loads, instead of the addon's warning and loadNativeUws' refusal.
 */

/** The fields of `process.versions` that decide it. */
export interface RuntimeVersions {
  readonly node: string;
  /** The Node ABI (NODE_MODULE_VERSION) native addons are built for. */
  readonly modules: string;
}

/** Node.js lines the chat node supports, with the ABI the pinned uWebSockets.js binary needs. */
export const SUPPORTED_RUNTIMES: readonly { readonly major: number; readonly abi: string }[] = [
  { major: 20, abi: '115' },
];

/** Node ABIs the pinned uWebSockets.js ships binaries for, by Node.js line. */
const UWS_BINARY_ABIS = '93 (Node.js 16), 108 (18) and 115 (20)';

/**
 * Why this Node.js cannot run the chat node, or undefined when it can.
 *
 * @example const problem = checkRuntime(process.versions); if (problem) exit(problem);
 */
export function checkRuntime(versions: RuntimeVersions): string | undefined {
  const major = Number(versions.node.split('.')[0]);
  const supported = SUPPORTED_RUNTIMES.find((r) => r.major === major);
  const lines = SUPPORTED_RUNTIMES.map((r) => r.major).join(', ');
  const what = `Node.js ${versions.node} (ABI ${versions.modules})`;
  if (supported === undefined) {
    return `${what} is not supported: the chat node runs on Node.js ${lines}, the line${
      SUPPORTED_RUNTIMES.length > 1 ? 's' : ''
    } the pinned uWebSockets.js build (@trufflesuite/uws-js-unofficial 20.30.0, binaries for ABI ${UWS_BINARY_ABIS}) loads natively on; see README "Node.js support" for Node.js 22 and 24`;
  }
  if (versions.modules !== supported.abi) {
    return `${what} is not supported: Node.js ${major} should have ABI ${supported.abi}, the one the pinned uWebSockets.js binary is built for`;
  }
  return undefined;
}
