/**
 * Optional protocol features a client opts into when it connects: the WebSocket URL's
 * `features` query parameter, a comma-separated list (`/ws?token=...&features=no-echo,receipt-marks`).
 * A client that names none gets protocol v1 exactly as it was; unknown names are ignored, and
 * `welcome.features` lists the ones the node applies. Every feature only takes something away
 * from what the node sends, or replaces it, or changes its timing, for clients that can do with it.
 *
 * - `no-echo`: the device that sent a message gets no event for it (it has the `ok`); the
 *   user's other devices still do. Without it the sender's inbox gets every message they send.
 * - `receipt-marks`: receipts come as `receipts` frames (watermarks) only. Without it they come
 *   as `receipt` inbox events, one per message and moment, and no `receipts` frame is sent.
 * - `overlap-moves`: when the user moves to another node, `moved` carries `closeInMs` and the
 *   connection stays open, delivering, until the client closes it (once it is connected and
 *   synced at the new owner) or `closeInMs` passes (close 4001). Without it `moved` is
 *   followed by close 4001 at once.
 */
export const FEATURES = ['no-echo', 'receipt-marks', 'overlap-moves'] as const;
export type Feature = (typeof FEATURES)[number];

/** The URL query parameter that carries them. */
export const FEATURES_PARAM = 'features';

const KNOWN: ReadonlySet<string> = new Set(FEATURES);

/** The known features named in a `features` parameter value (null or absent: none). */
export function parseFeatures(value: string | null | undefined): ReadonlySet<Feature> {
  const found = new Set<Feature>();
  if (value === null || value === undefined) return found;
  for (const name of value.split(',')) {
    const trimmed = name.trim();
    if (KNOWN.has(trimmed)) found.add(trimmed as Feature);
  }
  return found;
}
