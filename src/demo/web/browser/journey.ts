// The packet's journey over the drawing: the path so far as a line through
// the elements it crossed, a dot that moves to the current hop, and beside
// it what decided the next step and the evidence (a command's output or the
// daemon's trace line). The step is in the URL (#step=N, from 1) so a slide
// or a test can open any hop.

import type { JourneyView } from '../api.js';
import { byId, h, svg } from './dom.js';
import type { Labels } from './i18n.js';
import { type Box, centre } from './topology.js';

export class JourneyView_ {
  journey: JourneyView | undefined;
  step = 0;
  private anim = 0;
  private from: { x: number; y: number } | undefined;

  constructor(
    private readonly topo: SVGSVGElement,
    private boxes: () => Map<string, Box>,
    private L: Labels,
  ) {}

  setLabels(L: Labels): void {
    this.L = L;
  }

  /** Step from the URL (#step=N), clamped to the journey's hops. */
  static stepFromHash(): number | undefined {
    const m = /step=(\d+)/.exec(location.hash);
    return m ? Number(m[1]) : undefined;
  }

  show(j: JourneyView | undefined, step?: number): void {
    this.journey = j;
    this.from = undefined;
    this.go(step ?? 1, false);
  }

  go(step: number, pushHash = true): void {
    const j = this.journey;
    const n = j?.hops.length ?? 0;
    this.step = n === 0 ? 0 : Math.min(Math.max(1, step), n);
    if (pushHash && n > 0) history.replaceState(null, '', `#step=${this.step}`);
    this.render();
  }

  /** Draws the path and the hop panel again (after the topology was redrawn too). */
  render(): void {
    const j = this.journey;
    const L = this.L;
    const layer = this.topo.querySelector('#overlay-layer');
    const under = this.topo.querySelector('#path-layer');
    for (const e of this.topo.querySelectorAll('.node.current, .node.visited')) e.classList.remove('current', 'visited');
    byId('hop-count').textContent = j ? L.hop(this.step, j.hops.length) : '';
    (byId('prev') as HTMLButtonElement).disabled = !j || this.step <= 1;
    (byId('next') as HTMLButtonElement).disabled = !j || this.step >= j.hops.length;
    const panel = byId('hop');
    if (!j || !layer) {
      panel.replaceChildren(h('p', { class: 'muted' }, L.noJourney));
      layer?.replaceChildren();
      under?.replaceChildren();
      return;
    }
    const boxes = this.boxes();
    const hops = j.hops.slice(0, this.step);
    // The switch is a long bar: the packet runs along it from the sender's port to the receiver's.
    const pts: { x: number; y: number }[] = [];
    hops.forEach((hp, i) => {
      const b = boxes.get(hp.at);
      if (!b) return;
      const c = centre(b);
      if (hp.at !== 'switch') {
        pts.push(c);
        return;
      }
      const prev = pts[pts.length - 1];
      const next = j.hops[i + 1] && boxes.get(j.hops[i + 1].at);
      if (prev) pts.push({ x: prev.x, y: c.y });
      if (next) pts.push({ x: centre(next).x, y: c.y });
      if (!prev && !next) pts.push(c);
    });
    layer.replaceChildren();
    under?.replaceChildren();
    if (pts.length > 1) under?.append(svg('polyline', { points: pts.map((p) => `${p.x},${p.y}`).join(' '), class: 'path' }));
    for (const hp of hops) this.topo.querySelector(`[data-id="${CSS.escape(hp.at)}"]`)?.classList.add('visited');
    const cur = j.hops[this.step - 1];
    this.topo.querySelector(`[data-id="${CSS.escape(cur.at)}"]`)?.classList.add(cur.drop ? 'dropped' : 'current', 'current');
    // The packet sits on the current box's left edge, so it does not hide the box's text.
    const curBox = cur.at === 'switch' ? undefined : boxes.get(cur.at);
    const target = curBox ? { x: curBox.x, y: centre(curBox).y } : pts[pts.length - 1];
    if (target) {
      const dot = svg('circle', { r: 9, class: cur.drop ? 'packet drop' : 'packet', cx: target.x, cy: target.y });
      layer.append(dot);
      this.animate(dot, this.from ?? target, target);
      this.from = target;
    }
    panel.replaceChildren(
      ...[
        h('div', { class: 'hoptitle' }, h('span', { class: 'hopno' }, String(this.step)), cur.title),
        cur.decided ? h('div', { class: cur.drop ? 'decided drop' : 'decided' }, h('span', { class: 'k' }, `${cur.drop ? L.dropped : L.decided}: `), cur.decided) : undefined,
        cur.evidence ? h('div', { class: 'evidence' }, h('div', { class: 'cmd' }, `# ${cur.evidence.cmd}`), h('pre', {}, cur.evidence.output)) : undefined,
      ].filter((x): x is HTMLDivElement => x !== undefined),
    );
    panel.dataset.step = String(this.step);
    panel.dataset.at = cur.at;
  }

  private animate(dot: SVGCircleElement, a: { x: number; y: number }, b: { x: number; y: number }): void {
    cancelAnimationFrame(this.anim);
    const t0 = performance.now();
    const frame = (t: number) => {
      const k = Math.min(1, (t - t0) / 450);
      const e = k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2;
      dot.setAttribute('cx', String(a.x + (b.x - a.x) * e));
      dot.setAttribute('cy', String(a.y + (b.y - a.y) * e));
      if (k < 1) this.anim = requestAnimationFrame(frame);
    };
    this.anim = requestAnimationFrame(frame);
  }
}
