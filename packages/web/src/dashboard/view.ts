/**
 * The dashboard's DOM, updated in place: elements are made once per node and kept in maps by
 * node id, so a new state only changes text, attributes and widths (no flicker, no lost
 * hover). Elements carry data attributes the tests read: `data-node` on table rows,
 * `data-arc` on ring paths, `data-drain` with `data-percent` and `data-done` on drain bars.
 */
import type {
  DashboardDrain,
  DashboardNode,
  DashboardRing,
  DashboardState,
} from '@chat/protocol/dashboard-feed';
import type { ColourBook } from './colours';
import { compareIds } from '@chat/protocol';
import type { FeedStatus } from './feed';
import {
  UNKNOWN,
  drainSummary,
  formatClock,
  formatConnections,
  formatCount,
  formatDuration,
  formatPercent,
  formatRate,
  formatShare,
} from './format';
import type { Circle } from './ring-svg';
import { arcShares, ringPaths } from './ring-svg';
import { el } from '../dom';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The routed ring outside, the ring users move away from inside (viewBox 0 0 400 400). */
const OUTER: Circle = { cx: 200, cy: 200, r: 158 };
const INNER: Circle = { cx: 200, cy: 200, r: 112 };

function byId<T extends HTMLElement | SVGElement>(doc: Document, id: string): T {
  const el = doc.getElementById(id);
  if (el === null) throw new Error(`dashboard.html has no #${id}`);
  return el as T;
}

/** Sets text only when it differs (keeps text selection and avoids needless layout). */
function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node: Element, name: string, value: string): void {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/** Puts `children` into `parent` in this order, moving only what is out of place. */
function arrange(parent: Element, children: readonly Element[]): void {
  children.forEach((child, i) => {
    if (parent.children[i] !== child) parent.insertBefore(child, parent.children[i] ?? null);
  });
}

interface Row {
  readonly tr: HTMLTableRowElement;
  readonly swatch: HTMLElement;
  readonly cells: Record<
    | 'live'
    | 'member'
    | 'leaving'
    | 'weight'
    | 'share'
    | 'users'
    | 'connections'
    | 'messages'
    | 'pushes',
    HTMLTableCellElement
  >;
}

interface DrainBar {
  readonly root: HTMLElement;
  readonly swatch: HTMLElement;
  readonly fill: HTMLElement;
  readonly percent: HTMLElement;
  readonly detail: HTMLElement;
}

interface LegendItem {
  readonly li: HTMLLIElement;
  readonly swatch: HTMLElement;
  readonly share: HTMLElement;
}

export class DashboardView {
  private readonly rows = new Map<string, Row>();
  private readonly drains = new Map<string, DrainBar>();
  private readonly legend = new Map<string, LegendItem>();
  private readonly outerPaths = new Map<string, SVGPathElement>();
  private readonly innerPaths = new Map<string, SVGPathElement>();
  private ring: DashboardRing | undefined;
  private state: DashboardState | undefined;

  constructor(
    private readonly doc: Document,
    private readonly colours: ColourBook,
  ) {}

  /** Brings one node's arcs forward on the ring (hovering its row or legend entry); null: none. */
  focus(nodeId: string | null): void {
    const svg = byId<SVGSVGElement>(this.doc, 'ring');
    if (nodeId === null) svg.removeAttribute('data-focus');
    else setAttr(svg, 'data-focus', nodeId);
    for (const paths of [this.outerPaths, this.innerPaths]) {
      for (const [node, path] of paths) path.classList.toggle('focused', node === nodeId);
    }
  }

  showStatus(status: FeedStatus): void {
    const box = byId<HTMLElement>(this.doc, 'connection');
    setAttr(box, 'data-state', status);
    setAttr(this.doc.body, 'data-connection', status);
    setText(box.querySelector('.label') ?? box, status);
  }

  showRing(ring: DashboardRing): void {
    this.ring = ring;
    this.colours.see(ring.arcs.map((a) => a.node));
    this.drawRing(byId<SVGGElement>(this.doc, 'ring-current'), this.outerPaths, OUTER, ring.arcs);
    const inner = byId<SVGGElement>(this.doc, 'ring-previous');
    this.drawRing(inner, this.innerPaths, INNER, ring.previousArcs ?? []);
    setAttr(inner, 'data-visible', String(ring.previousArcs !== null));
    this.renderLegend();
    this.renderCentre();
  }

  showState(state: DashboardState): void {
    this.state = state;
    this.colours.see(state.nodes.map((n) => n.nodeId));
    this.renderHeader(state);
    this.renderNodes(state.nodes);
    this.renderDrains(state);
    this.renderLegend();
    this.renderCentre();
  }

  private drawRing(
    group: SVGGElement,
    paths: Map<string, SVGPathElement>,
    circle: Circle,
    arcs: DashboardRing['arcs'],
  ): void {
    const next = ringPaths(circle, arcs);
    for (const [node, path] of paths) {
      if (!next.has(node)) {
        path.remove();
        paths.delete(node);
      }
    }
    for (const node of [...next.keys()].sort(compareIds)) {
      let path = paths.get(node);
      if (path === undefined) {
        path = this.doc.createElementNS(SVG_NS, 'path');
        path.setAttribute('data-arc', node);
        path.setAttribute('class', 'arc');
        path.appendChild(this.doc.createElementNS(SVG_NS, 'title'));
        group.appendChild(path);
        paths.set(node, path);
      }
      setAttr(path, 'd', next.get(node) ?? '');
      setAttr(path, 'stroke', this.colours.of(node));
    }
    const shares = arcShares(arcs);
    for (const [node, path] of paths) {
      const title = path.firstElementChild;
      if (title !== null) setText(title, `${node}: ${formatShare(shares.get(node) ?? 0)}`);
    }
  }

  private renderCentre(): void {
    const epoch = this.state?.epoch ?? 0;
    const members = this.state?.nodes.filter((n) => n.member && n.live && !n.leaving).length ?? 0;
    setText(byId(this.doc, 'ring-epoch'), epoch === 0 ? 'no ring' : `epoch ${epoch}`);
    setText(byId(this.doc, 'ring-members'), `${members} live member${members === 1 ? '' : 's'}`);
  }

  private renderLegend(): void {
    const list = byId<HTMLUListElement>(this.doc, 'legend');
    const shares = arcShares(this.ring?.arcs ?? []);
    const previous = this.ring?.previousArcs ? arcShares(this.ring.previousArcs) : undefined;
    const ids = [...new Set([...shares.keys(), ...(previous?.keys() ?? [])])].sort(compareIds);
    for (const [id, item] of this.legend) {
      if (!ids.includes(id)) {
        item.li.remove();
        this.legend.delete(id);
      }
    }
    const items = ids.map((id) => {
      let item = this.legend.get(id);
      if (item === undefined) {
        const li = el(this.doc, 'li');
        li.setAttribute('data-legend', id);
        const swatch = el(this.doc, 'span', 'swatch');
        const share = el(this.doc, 'span', 'legend-share');
        li.append(swatch, el(this.doc, 'span', 'legend-id', id), share);
        this.hoverable(li, id);
        item = { li, swatch, share };
        this.legend.set(id, item);
      }
      item.swatch.style.background = this.colours.of(id);
      const now = formatShare(shares.get(id) ?? 0);
      const before = previous?.get(id);
      setText(
        item.share,
        previous === undefined
          ? now
          : `${before === undefined ? '0.0 %' : formatShare(before)} → ${now}`,
      );
      return item.li;
    });
    arrange(list, items);
  }

  private renderHeader(state: DashboardState): void {
    setText(byId(this.doc, 'epoch'), state.epoch === 0 ? 'no ring yet' : `epoch ${state.epoch}`);
    const badge = byId<HTMLElement>(this.doc, 'transition-badge');
    const t = state.transition;
    badge.hidden = t === null;
    if (t !== null) {
      const change = [...t.added.map((id) => `+${id}`), ...t.removed.map((id) => `−${id}`)];
      setText(
        badge,
        `rebalancing ${t.fromEpoch} → ${state.epoch}` +
          (change.length > 0 ? ` (${change.join(' ')})` : ''),
      );
    }
    const polled = state.polledAt === null ? '' : ` · figures ${formatClock(state.polledAt)}`;
    setText(
      byId(this.doc, 'updated'),
      `updated ${formatClock(state.at)} · etcd revision ${state.revision}${polled}`,
    );
  }

  private renderNodes(nodes: readonly DashboardNode[]): void {
    const tbody = byId<HTMLTableElement>(this.doc, 'nodes').tBodies[0];
    if (tbody === undefined) return;
    const seen = new Set(nodes.map((n) => n.nodeId));
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    const trs = nodes.map((node) => {
      const row = this.rows.get(node.nodeId) ?? this.makeRow(node.nodeId);
      this.fillRow(row, node);
      return row.tr;
    });
    arrange(tbody, trs);
    byId<HTMLElement>(this.doc, 'nodes-empty').hidden = nodes.length > 0;
  }

  private makeRow(nodeId: string): Row {
    const tr = el(this.doc, 'tr');
    tr.setAttribute('data-node', nodeId);
    const name = el(this.doc, 'td', 'node-name');
    const swatch = el(this.doc, 'span', 'swatch');
    name.append(swatch, el(this.doc, 'span', 'node-id', nodeId));
    const cell = (className: string): HTMLTableCellElement => el(this.doc, 'td', className);
    const cells = {
      live: cell('flag'),
      member: cell('flag'),
      leaving: cell('flag'),
      weight: cell('num'),
      share: cell('num'),
      users: cell('num'),
      connections: cell('num'),
      messages: cell('num'),
      pushes: cell('num'),
    };
    for (const [key, td] of Object.entries(cells)) td.setAttribute('data-col', key);
    tr.append(name, ...Object.values(cells));
    this.hoverable(tr, nodeId);
    const row = { tr, swatch, cells };
    this.rows.set(nodeId, row);
    return row;
  }

  private hoverable(target: HTMLElement, nodeId: string): void {
    target.addEventListener('mouseenter', () => this.focus(nodeId));
    target.addEventListener('mouseleave', () => this.focus(null));
  }

  private fillRow(row: Row, node: DashboardNode): void {
    row.swatch.style.background = this.colours.of(node.nodeId);
    setAttr(row.tr, 'data-live', String(node.live));
    setAttr(row.tr, 'data-member', String(node.member));
    setAttr(row.tr, 'data-leaving', String(node.leaving));
    row.tr.classList.toggle('down', !node.live);
    row.tr.title = node.url ?? 'not registered';
    const flag = (td: HTMLTableCellElement, on: boolean, yes: string, no = UNKNOWN): void => {
      setText(td, on ? yes : no);
      td.classList.toggle('on', on);
    };
    flag(row.cells.live, node.live, 'live', 'down');
    row.cells.live.classList.toggle('bad', !node.live);
    const joining = node.member && !node.previousMember && this.state?.transition != null;
    const removed = !node.member && node.previousMember;
    flag(
      row.cells.member,
      node.member,
      joining ? 'joining' : 'member',
      removed ? 'removed' : UNKNOWN,
    );
    flag(row.cells.leaving, node.leaving, 'leaving');
    setText(row.cells.weight, String(node.weight));
    setText(row.cells.share, node.member ? formatShare(node.share) : UNKNOWN);
    setText(row.cells.users, formatCount(node.users));
    setText(row.cells.connections, formatConnections(node.connections, node.movingOut));
    setText(row.cells.messages, formatRate(node.messagesPerSec));
    setText(row.cells.pushes, formatRate(node.pushesPerSec));
  }

  private renderDrains(state: DashboardState): void {
    const box = byId<HTMLElement>(this.doc, 'drains');
    const seen = new Set(state.drains.map((d) => d.nodeId));
    for (const [id, bar] of this.drains) {
      if (!seen.has(id)) {
        bar.root.remove();
        this.drains.delete(id);
      }
    }
    const bars = state.drains.map((drain) => {
      const bar = this.drains.get(drain.nodeId) ?? this.makeDrain(drain.nodeId);
      this.fillDrain(bar, drain);
      return bar.root;
    });
    arrange(box, bars);
    setText(byId(this.doc, 'drain-summary'), drainSummary(state));
  }

  private makeDrain(nodeId: string): DrainBar {
    const root = el(this.doc, 'div', 'drain');
    root.setAttribute('data-drain', nodeId);
    const head = el(this.doc, 'div', 'drain-head');
    const swatch = el(this.doc, 'span', 'swatch');
    const percent = el(this.doc, 'span', 'drain-percent');
    head.append(swatch, el(this.doc, 'span', 'drain-node', nodeId), percent);
    const track = el(this.doc, 'div', 'bar');
    track.setAttribute('role', 'progressbar');
    track.setAttribute('aria-valuemin', '0');
    track.setAttribute('aria-valuemax', '100');
    const fill = el(this.doc, 'div', 'bar-fill');
    track.append(fill);
    const detail = el(this.doc, 'div', 'drain-detail');
    root.append(head, track, detail);
    const bar = { root, swatch, fill, percent, detail };
    this.drains.set(nodeId, bar);
    return bar;
  }

  private fillDrain(bar: DrainBar, drain: DashboardDrain): void {
    const colour = this.colours.of(drain.nodeId);
    bar.swatch.style.background = colour;
    bar.fill.style.background = colour;
    bar.fill.style.width = `${Math.min(100, Math.max(0, drain.percent))}%`;
    setAttr(bar.root, 'data-percent', String(drain.percent));
    setAttr(bar.root, 'data-done', String(drain.done));
    setAttr(bar.root, 'data-epoch', String(drain.epoch));
    bar.root.classList.toggle('done', drain.done);
    bar.fill.parentElement?.setAttribute('aria-valuenow', String(drain.percent));
    setText(
      bar.percent,
      drain.done ? `${formatPercent(drain.percent)} ✓` : formatPercent(drain.percent),
    );
    const took = formatDuration(drain.updatedAt - drain.startedAt);
    setText(
      bar.detail,
      `${formatCount(drain.moved)} / ${formatCount(drain.total)} moved` +
        (drain.done ? ` in ${took}` : `, ${formatCount(drain.remaining)} left`) +
        ` · rate ${formatRate(drain.ratePerSec)}/s, peak ${formatCount(drain.peakPerSec)}/s` +
        ` · epoch ${drain.epoch}`,
    );
  }
}
