/**
 * SVG geometry of the ring: 0 is 12 o'clock, fractions grow clockwise (SVG's y axis points
 * down, so sweep flag 1 is clockwise on screen). Pure: strings in, strings out.
 */
import type { RingArc } from '@chat/protocol/dashboard-feed';

export interface Circle {
  readonly cx: number;
  readonly cy: number;
  readonly r: number;
}

function point(c: Circle, fraction: number): string {
  const angle = fraction * 2 * Math.PI;
  const x = c.cx + c.r * Math.sin(angle);
  const y = c.cy - c.r * Math.cos(angle);
  return `${x.toFixed(2)} ${y.toFixed(2)}`;
}

/**
 * Path data of one arc from `start` to `end` (fractions, start < end). A whole circle is drawn
 * as two halves: an SVG arc whose ends coincide draws nothing.
 *
 * @example
 * arcPath({ cx: 200, cy: 200, r: 150 }, 0, 0.25); // 'M 200.00 50.00 A 150 150 0 0 1 350.00 200.00'
 */
export function arcPath(c: Circle, start: number, end: number): string {
  if (end - start >= 1) return `${arcPath(c, 0, 0.5)} ${arcPath(c, 0.5, 1)}`;
  const large = end - start > 0.5 ? 1 : 0;
  return `M ${point(c, start)} A ${c.r} ${c.r} 0 ${large} 1 ${point(c, end)}`;
}

/** One path per node (all its arcs), in the order nodes first appear on the ring. */
export function ringPaths(c: Circle, arcs: readonly RingArc[]): Map<string, string> {
  const parts = new Map<string, string[]>();
  for (const arc of arcs) {
    if (!(arc.end > arc.start)) continue;
    let list = parts.get(arc.node);
    if (list === undefined) {
      list = [];
      parts.set(arc.node, list);
    }
    list.push(arcPath(c, arc.start, arc.end));
  }
  return new Map([...parts].map(([node, list]) => [node, list.join(' ')]));
}

/** How much of the circle each node's arcs cover, 0..1. */
export function arcShares(arcs: readonly RingArc[]): Map<string, number> {
  const shares = new Map<string, number>();
  for (const arc of arcs) shares.set(arc.node, (shares.get(arc.node) ?? 0) + arc.end - arc.start);
  return shares;
}
