/**
 * Node colours that stay put: a node keeps the colour it was first given for as long as the
 * page is open, so node-4 appearing does not repaint node-1..3. Ids first seen together get
 * colours in id order, so every page opened on the same cluster agrees.
 */
import { compareIds } from '@chat/protocol';

/** Tableau 10, readable on the dashboard's dark background. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
] as const;

/** The n-th colour: the palette, then hues spread by the golden angle. */
export function colourAt(n: number): string {
  const fixed = PALETTE[n];
  if (fixed !== undefined) return fixed;
  const hue = Math.round((n * 137.508) % 360);
  return `hsl(${hue}, 55%, 60%)`;
}

/**
 * @example
 * const colours = new ColourBook();
 * colours.see(['node-2', 'node-1']);
 * colours.of('node-1'); // '#4e79a7'
 */
export class ColourBook {
  private readonly colours = new Map<string, string>();

  /** Gives colours to the ids not seen before, in id order. */
  see(ids: Iterable<string>): void {
    const fresh = [...new Set(ids)].filter((id) => !this.colours.has(id)).sort(compareIds);
    for (const id of fresh) this.colours.set(id, colourAt(this.colours.size));
  }

  of(id: string): string {
    this.see([id]);
    return this.colours.get(id) ?? colourAt(0);
  }
}
