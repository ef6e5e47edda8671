/**
 * A small-multiples SVG of per-minute series: one panel per series, its values as a line, the
 * least-squares line of the judged span (flatness.ts) dashed over it, min and max on the axis.
 * Plain text, no dependencies: it is written by the bench itself.
 *
 * @example
 * writeFileSync('soak.svg', renderPanels([{ title: 'node-1 RSS', unit: 'MiB', values, flat: true }]));
 */
import { judgedSpan, leastSquaresSlope } from './flatness';

export interface PanelSeries {
  readonly title: string;
  readonly unit: string;
  /** One value per minute (NaN: no sample). */
  readonly values: readonly number[];
  /** The verdict shown in the panel's title: flat, not flat, or unknown (null). */
  readonly flat: boolean | null;
  /** When not flat: whether it grows (red) or falls. */
  readonly rising?: boolean;
}

const PANEL_W = 300;
const PANEL_H = 150;
const COLUMNS = 3;
const PAD = { left: 52, right: 10, top: 24, bottom: 22 };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A tick label that keeps 3 significant digits at most. */
export function shortNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const digits = (x: number): string => Number(x.toPrecision(3)).toString();
  if (a >= 1e6) return `${digits(v / 1e6)}M`;
  if (a >= 1e4) return `${digits(v / 1e3)}k`;
  return digits(v);
}

function panel(series: PanelSeries, x0: number, y0: number): string {
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const finite = series.values.filter((v) => Number.isFinite(v));
  let lo = finite.length === 0 ? 0 : Math.min(...finite);
  let hi = finite.length === 0 ? 1 : Math.max(...finite);
  // A flat line sits in the middle of a band of ±5 % (or ±1) instead of on an edge.
  if (hi - lo < 1e-9) {
    const pad = Math.max(Math.abs(hi) * 0.05, 1);
    lo -= pad;
    hi += pad;
  }
  const n = series.values.length;
  const px = (i: number): number => x0 + PAD.left + (n <= 1 ? w / 2 : (i * w) / (n - 1));
  const py = (v: number): number => y0 + PAD.top + h - ((v - lo) / (hi - lo)) * h;
  const grows = series.flat === false && series.rising !== false;
  const verdict =
    series.flat === null ? '' : series.flat ? ' — flat' : grows ? ' — GROWS' : ' — falls';
  const parts = [
    `<rect x="${x0 + PAD.left}" y="${y0 + PAD.top}" width="${w}" height="${h}" fill="#fafafa" stroke="#ccc"/>`,
    `<text x="${x0 + PAD.left}" y="${y0 + 15}" font-size="12" fill="${grows ? '#b00' : '#222'}">${escapeXml(`${series.title} (${series.unit})${verdict}`)}</text>`,
    `<text x="${x0 + PAD.left - 4}" y="${y0 + PAD.top + 9}" font-size="10" text-anchor="end">${shortNumber(hi)}</text>`,
    `<text x="${x0 + PAD.left - 4}" y="${y0 + PAD.top + h}" font-size="10" text-anchor="end">${shortNumber(lo)}</text>`,
    `<text x="${x0 + PAD.left}" y="${y0 + PAD.top + h + 14}" font-size="10">min 1</text>`,
    `<text x="${x0 + PAD.left + w}" y="${y0 + PAD.top + h + 14}" font-size="10" text-anchor="end">min ${n}</text>`,
  ];
  const points = series.values
    .map((v, i) => (Number.isFinite(v) ? `${px(i).toFixed(1)},${py(v).toFixed(1)}` : ''))
    .filter((p) => p !== '');
  if (points.length > 0) {
    parts.push(
      `<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="${points.join(' ')}"/>`,
    );
  }
  const span = judgedSpan(series.values);
  if (span.length >= 2 && span.every((v) => Number.isFinite(v))) {
    const first = n - span.length;
    const slope = leastSquaresSlope(span);
    const mean = span.reduce((s, v) => s + v, 0) / span.length;
    const mid = (span.length - 1) / 2;
    const at = (k: number): number => mean + slope * (k - mid);
    parts.push(
      `<line x1="${px(first).toFixed(1)}" y1="${py(at(0)).toFixed(1)}" x2="${px(n - 1).toFixed(1)}" y2="${py(at(span.length - 1)).toFixed(1)}" stroke="#e08000" stroke-width="1" stroke-dasharray="4 3"/>`,
    );
  }
  return parts.join('\n');
}

export function renderPanels(series: readonly PanelSeries[], caption = ''): string {
  const rows = Math.max(1, Math.ceil(series.length / COLUMNS));
  const captionH = caption === '' ? 0 : 22;
  const width = COLUMNS * PANEL_W;
  const height = rows * PANEL_H + captionH;
  const body = series.map((s, i) =>
    panel(s, (i % COLUMNS) * PANEL_W, captionH + Math.floor(i / COLUMNS) * PANEL_H),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    caption === '' ? '' : `<text x="8" y="15" font-size="12">${escapeXml(caption)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
