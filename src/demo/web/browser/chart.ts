// udp against vxlan as two small bar charts (RTT, throughput), drawn in SVG
// from the server's measurements (POST /api/measure).

import type { MeasureView } from '../api.js';
import { svg } from './dom.js';
import type { Labels } from './i18n.js';

export function drawChart(root: SVGSVGElement, ms: MeasureView[], L: Labels): void {
  root.replaceChildren();
  root.setAttribute('viewBox', '0 0 660 170');
  const panels: { title: string; value: (m: MeasureView) => number | undefined; fmt: (v: number) => string }[] = [
    { title: L.rtt, value: (m) => m.rttAvgMs, fmt: (v) => `${v.toFixed(3)} ms` },
    { title: L.tput, value: (m) => m.mbps, fmt: (v) => `${v.toFixed(0)} Mbit/s` },
  ];
  panels.forEach((p, pi) => {
    const x0 = 10 + pi * 330;
    root.append(svg('text', { x: x0, y: 16, class: 'charttitle' }, p.title));
    const vals = ms.map(p.value);
    const max = Math.max(1e-9, ...vals.filter((v): v is number => v !== undefined));
    ms.forEach((m, i) => {
      const v = vals[i];
      const y = 34 + i * 58;
      root.append(svg('text', { x: x0, y: y + 22, class: 'chartlabel' }, m.backend));
      if (v === undefined) {
        root.append(svg('text', { x: x0 + 60, y: y + 22, class: 'chartvalue' }, '—'));
        return;
      }
      const w = Math.max(2, (v / max) * 140);
      root.append(svg('rect', { x: x0 + 56, y, width: w, height: 32, rx: 4, class: `bar ${m.backend}`, 'data-backend': m.backend, 'data-value': v }));
      root.append(svg('text', { x: x0 + 62 + w, y: y + 22, class: 'chartvalue' }, p.fmt(v)));
    });
  });
}
