// A captured datagram drawn as nested, labelled boxes (each header beside the
// payload that holds the next layer), a table of every field with its value
// and meaning, and the hex of the frame. Pointing at a header or a field
// lights up its bytes in the hex.

import type { CaptureView, Layer } from '../api.js';
import { h } from './dom.js';
import type { Labels } from './i18n.js';

const field = (l: Layer, name: string) => l.fields.find((f) => f.name === name)?.value ?? '';

/** The one line a box shows for its header. */
function summary(l: Layer): [string, string] {
  switch (l.layer) {
    case 'ethernet':
      return ['Ethernet', `${field(l, 'Source MAC')} → ${field(l, 'Destination MAC')}`];
    case 'innerEthernet':
      return ['Ethernet', `${field(l, 'Source MAC')} → ${field(l, 'Destination MAC')}`];
    case 'outer':
    case 'inner':
      return ['IPv4', `${field(l, 'Source')} → ${field(l, 'Destination')}`];
    case 'udp':
      return ['UDP', `${field(l, 'Source Port')} → ${field(l, 'Destination Port')}`];
    case 'vxlan':
      return ['VXLAN', `VNI ${field(l, 'VNI')}`];
    case 'icmp':
      return ['ICMP', field(l, 'Type')];
    default:
      return [l.layer, ''];
  }
}

/** Renders one capture: its nested boxes into `nestRow` (the rows of both backends sit together), its fields and hex into `root`. */
export function renderCapture(root: HTMLElement, nestRow: HTMLElement, c: CaptureView | undefined, title: string, L: Labels): void {
  root.replaceChildren(h('h3', {}, title));
  nestRow.replaceChildren(h('div', {}, title));
  if (!c) {
    nestRow.replaceChildren();
    root.append(h('p', { class: 'muted' }, L.noCapture));
    return;
  }
  root.dataset.backend = c.backend;
  const bytes = c.hex.match(/../g)!.map((x) => parseInt(x, 16));
  const hexCells: HTMLElement[] = [];
  const highlight = (start: number, length: number) => {
    hexCells.forEach((e, i) => {
      e.classList.toggle('hl', i >= start && i < start + length);
    });
  };
  const clear = () => {
    for (const e of hexCells) e.classList.remove('hl');
  };

  // Nested boxes: the innermost first, each wrapped by its header's box.
  let inner: HTMLElement | undefined;
  const last = c.layers[c.layers.length - 1];
  const dataStart = last.start + last.length;
  if (dataStart < bytes.length) {
    inner = h('div', { class: 'box l-data' }, h('div', { class: 'hdr' }, h('b', {}, 'data'), h('span', {}, `${bytes.length - dataStart} B`)));
    inner.firstElementChild!.addEventListener('mouseenter', () => highlight(dataStart, bytes.length - dataStart));
  }
  for (const l of [...c.layers].reverse()) {
    const [name, line] = summary(l);
    const hdr = h('div', { class: 'hdr', title: l.title }, h('b', {}, name), h('span', {}, line));
    const box = h('div', { class: `box l-${l.layer}`, 'data-layer': l.layer }, hdr, inner);
    hdr.addEventListener('mouseenter', () => highlight(l.start, l.length));
    hdr.addEventListener('mouseleave', clear);
    inner = box;
  }
  const boxes = h('div', { class: 'nest' }, inner);
  boxes.addEventListener('mouseleave', clear);

  const table = h('table', { class: 'fields' }, h('tr', {}, h('th', {}, L.field), h('th', {}, L.value), h('th', {}, L.meaning)));
  for (const l of c.layers) {
    const t = h('tr', { class: `title l-${l.layer}` }, h('td', { colspan: 3 }, l.title));
    t.addEventListener('mouseenter', () => highlight(l.start, l.length));
    table.append(t);
    for (const f of l.fields) {
      const row = h('tr', { 'data-layer': l.layer, 'data-field': f.name }, h('td', {}, f.name), h('td', { class: 'value' }, f.value), h('td', {}, f.meaning));
      row.addEventListener('mouseenter', () => highlight(f.start, f.length));
      table.append(row);
    }
  }
  table.addEventListener('mouseleave', clear);

  const layerAt = (i: number) => [...c.layers].reverse().find((l) => i >= l.start && i < l.start + l.length)?.layer ?? 'data';
  const hex = h('div', { class: 'hex' });
  for (let row = 0; row < bytes.length; row += 16) {
    const line = h('div', { class: 'hexrow' }, h('span', { class: 'off' }, row.toString(16).padStart(4, '0')));
    for (let i = row; i < Math.min(bytes.length, row + 16); i++) {
      const cell = h('span', { class: `b l-${layerAt(i)}`, 'data-i': i }, bytes[i].toString(16).padStart(2, '0'));
      hexCells.push(cell);
      line.append(cell);
    }
    hex.append(line);
  }
  nestRow.append(boxes);
  root.append(hex, table);
}
