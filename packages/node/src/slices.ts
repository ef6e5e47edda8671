/**
 * Work done every interval, cut into slices: a key's slice is a small string hash of it, spread
 * evenly enough over a handful of slices, so that each slice of the interval writes about its
 * share of the keys instead of all of them at once.
 */
export interface Slice {
  readonly index: number;
  readonly of: number;
}

export function sliceOf(key: string, slices: number): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return (h >>> 0) % slices;
}

/** Whether `key` belongs to `slice` (every key does when there is no slice: a full write). */
export function inSlice(key: string, slice: Slice | undefined): boolean {
  return slice === undefined || sliceOf(key, slice.of) === slice.index;
}
