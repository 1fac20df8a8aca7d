// The web view's page: loads the live state every two seconds and redraws
// the cluster, sends pings and follows their first echo request hop by hop,
// shows the captured datagrams layer by layer (udp and vxlan side by side),
// the per-peer counters, the udp/vxlan comparison, and the buttons that
// change the cluster (delete a lease, stop or start a flanneld).

import type { CaptureView, JourneyView, MeasureView, PeerCounters, StateView } from '../api.js';
import { byId, h } from './dom.js';
import { get, post } from './http.js';
import { labels } from './i18n.js';
import { JourneyView_ } from './journey.js';
import { renderCapture } from './layers.js';
import { drawChart } from './chart.js';
import { type Box, drawTopology } from './topology.js';

const params = new URLSearchParams(location.search);
const lang = params.get('lang') === 'zh' ? 'zh' : 'en';
const L = labels(lang);
document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';

const topo = byId('topo') as unknown as SVGSVGElement;
let boxes = new Map<string, Box>();
let state: StateView | undefined;
const journey = new JourneyView_(topo, () => boxes, L);
const captures: { udp?: CaptureView; vxlan?: CaptureView } = {};
let busy = false;

function applyLabels(): void {
  document.title = L.title;
  for (const e of document.querySelectorAll<HTMLElement>('[data-l]')) {
    const v = L[e.dataset.l as keyof typeof L];
    if (typeof v === 'string') e.textContent = v;
  }
  const other = new URLSearchParams(location.search);
  other.set('lang', lang === 'zh' ? 'en' : 'zh');
  (byId('lang') as HTMLAnchorElement).href = `?${other.toString()}${location.hash}`;
}

function status(text: string, error = false): void {
  const s = byId('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function fillPods(s: StateView): void {
  const pods = s.hosts.flatMap((h) => h.pods);
  for (const [id, def] of [
    ['src', 0],
    ['dst', 1],
  ] as const) {
    const sel = byId('sel-' + id) as HTMLSelectElement;
    if (sel.options.length === pods.length) continue;
    const keep = sel.value;
    sel.replaceChildren(...pods.map((p) => h('option', { value: p.name }, `${p.name} (${p.ip}, ${p.backend})`)));
    const udp = pods.filter((p) => p.backend === 'udp');
    sel.value = keep || (def === 0 ? udp[0]?.name : udp[udp.length - 1]?.name) || pods[0].name;
  }
}

function hostActions(s: StateView): void {
  const row = byId('host-actions');
  row.replaceChildren(
    ...s.hosts.map((hv) => {
      const btn = (label: string, act: () => Promise<unknown>, cls = '') => {
        const b = h('button', { class: cls, 'data-host': hv.name }, label);
        b.addEventListener('click', () => void action(act));
        return b;
      };
      return h(
        'div',
        { class: 'hostact' },
        h('b', {}, hv.name),
        btn(L.routes, async () => showRoutes(hv.name), 'routes'),
        btn(L.deleteLease, () => post('/api/lease/delete', { host: hv.name }), 'del-lease'),
        hv.flanneld.running
          ? btn(L.stopFlanneld, () => post('/api/flanneld', { host: hv.name, action: 'stop' }), 'stop')
          : btn(L.startFlanneld, () => post('/api/flanneld', { host: hv.name, action: 'start' }), 'start'),
      );
    }),
  );
}

async function showRoutes(host: string): Promise<void> {
  const r = await get<{ host: string; cmd: string; output: string }>('/api/routes', { host });
  byId('routes').replaceChildren(h('h3', {}, L.routingTable(host)), h('pre', { 'data-host': host }, r.output));
}

async function action(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    await refresh();
  } catch (e) {
    status(`${L.error}: ${(e as Error).message}`, true);
  }
}

async function refresh(): Promise<void> {
  try {
    state = await get<StateView>('/api/state');
    boxes = drawTopology(topo, state, L);
    fillPods(state);
    hostActions(state);
    journey.render();
    status(L.updated(new Date(state.time).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB')));
    document.body.dataset.stateTime = state.time;
  } catch (e) {
    status(`${L.error}: ${(e as Error).message}`, true);
  }
}

async function refreshCounters(): Promise<void> {
  const rows = await get<PeerCounters[]>('/api/counters').catch(() => []);
  const t = h('table', { class: 'counters' }, h('tr', {}, h('th', {}, L.host), h('th', {}, L.peer), h('th', {}, 'tx pkts'), h('th', {}, 'rx pkts'), h('th', {}, 'tx bytes'), h('th', {}, 'rx bytes')));
  for (const r of rows)
    t.append(
      h(
        'tr',
        {},
        h('td', {}, r.host),
        h('td', {}, `${r.subnet} @ ${r.publicIp}`),
        h('td', {}, String(r.txPackets)),
        h('td', {}, String(r.rxPackets)),
        h('td', {}, String(r.txBytes)),
        h('td', {}, String(r.rxBytes)),
      ),
    );
  byId('counters').replaceChildren(t);
}

function showCaptures(): void {
  renderCapture(byId('cap-udp'), byId('nest-udp'), captures.udp, L.udpCapture, L);
  renderCapture(byId('cap-vxlan'), byId('nest-vxlan'), captures.vxlan, L.vxCapture, L);
}

async function ping(): Promise<void> {
  if (busy) return;
  busy = true;
  const button = byId('ping') as HTMLButtonElement;
  button.disabled = true;
  button.textContent = L.pinging;
  try {
    const src = (byId('sel-src') as HTMLSelectElement).value;
    const dst = (byId('sel-dst') as HTMLSelectElement).value;
    const j = await post<JourneyView>('/api/journey', { src, dst, lang });
    if (j.capture) captures[j.backend] = j.capture;
    journey.show(j, 1);
    // The other backend's datagram, for the side-by-side layers.
    const other = j.backend === 'udp' ? 'vxlan' : 'udp';
    const o = await post<JourneyView>('/api/journey', { backend: other, lang });
    if (o.capture) captures[other] = o.capture;
    showCaptures();
    document.body.dataset.journey = 'done';
  } catch (e) {
    status(`${L.error}: ${(e as Error).message}`, true);
  } finally {
    busy = false;
    button.disabled = false;
    button.textContent = L.ping;
  }
}

async function measure(throughput: boolean): Promise<void> {
  const b = byId(throughput ? 'measure-tput' : 'measure-rtt') as HTMLButtonElement;
  b.disabled = true;
  const was = b.textContent;
  b.textContent = L.measuring;
  try {
    const ms = await post<MeasureView[]>('/api/measure', { throughput });
    drawChart(byId('chart') as unknown as SVGSVGElement, ms, L);
  } catch (e) {
    status(`${L.error}: ${(e as Error).message}`, true);
  } finally {
    b.disabled = false;
    b.textContent = was;
  }
}

async function start(): Promise<void> {
  applyLabels();
  byId('ping').addEventListener('click', () => void ping());
  byId('prev').addEventListener('click', () => journey.go(journey.step - 1));
  byId('next').addEventListener('click', () => journey.go(journey.step + 1));
  byId('measure-rtt').addEventListener('click', () => void measure(false));
  byId('measure-tput').addEventListener('click', () => void measure(true));
  addEventListener('keydown', (e) => {
    if ((e.target as HTMLElement).tagName === 'SELECT') return;
    if (e.key === 'ArrowRight') journey.go(journey.step + 1);
    if (e.key === 'ArrowLeft') journey.go(journey.step - 1);
  });
  addEventListener('hashchange', () => journey.go(JourneyView_.stepFromHash() ?? 1, false));
  await refresh();
  journey.render();
  showCaptures();
  // A URL with #step=N opens that hop of the demo's own ping.
  const step = JourneyView_.stepFromHash();
  if (step !== undefined) {
    await ping();
    journey.go(step, false);
  }
  setInterval(() => void refresh(), 2000);
  setInterval(() => void refreshCounters(), 3000);
  void refreshCounters();
  document.body.dataset.ready = 'yes';
}

void start();
