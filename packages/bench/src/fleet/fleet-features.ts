/**
 * The protocol features the fleet's devices ask for: the SDK's (no echo of own sends, receipts as
 * watermark frames, moves without a gap), so that they behave like the SDK.
 */

/** Set (to 1) by `npm run bench -- ... --legacy-moves`: devices move as clients before
 * `overlap-moves` did (close on `moved`, then reconnect), for before/after figures. */
export const LEGACY_MOVES_ENV = 'CHAT_BENCH_LEGACY_MOVES';

export const FLEET_FEATURES: readonly string[] = Object.freeze([
  'no-echo',
  'receipt-marks',
  ...(process.env[LEGACY_MOVES_ENV] === '1' ? [] : ['overlap-moves']),
]);
