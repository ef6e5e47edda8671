/**
 * Loads uWebSockets.js and insists on its native binding. The package silently falls back to a
 * slow JavaScript implementation when the binary does not match this Node.js; a node running on
 * that would miss every performance budget, so it refuses to start instead.
 */
import uws from 'uWebSockets.js';

export function loadNativeUws(): typeof uws {
  // Only the native binding exports the compressor constants and getParts.
  const native =
    typeof (uws as unknown as Record<string, unknown>).getParts === 'function' &&
    'SHARED_COMPRESSOR' in uws;
  if (!native) {
    throw new Error(
      `uWebSockets.js native binding did not load for Node ${process.version} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}); refusing to run on the JavaScript fallback`,
    );
  }
  return uws;
}
