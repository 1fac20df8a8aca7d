// The captured datagram, field by field: one table per header, each row a
// field as RFC 791 / 768 / 792 name it, its value read from the bytes, and
// what it means here (who an address belongs to, why the TTL is what it is,
// whether a checksum verifies). Plus the regions for the marked hexdump.

import type { FlannelDatagram, Ipv4Header } from './pcap';
import type { Region } from './hexdump';
import type { Text } from './text';

export interface HeaderTable {
  /** Which layer: ethernet, outer, udp, vxlan, innerEthernet, inner, icmp (the web view colours by it). */
  layer: string;
  title: string;
  /** Where the header lies in the frame: first byte and length. */
  start: number;
  length: number;
  rows: [string, string, string][];
  /** Per row: its bytes in the frame, first byte and length (the web view highlights them). */
  spans: [number, number][];
}

/** Byte offset and length of each IPv4 header field, relative to the header, in ipRows' order. */
const IP_SPANS: [number, number][] = [
  [0, 1],
  [0, 1],
  [1, 1],
  [2, 2],
  [4, 2],
  [6, 1],
  [6, 2],
  [8, 1],
  [9, 1],
  [10, 2],
  [12, 4],
  [16, 4],
];
const at = (o: number, spans: [number, number][]) => spans.map(([s, l]) => [o + s, l] as [number, number]);

const PROTO: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };
const hex4 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

export interface Names {
  /** Address (IPv4 or MAC) → who it is ("h1 eth0", "h1-pod1"). */
  who(addr: string): string | undefined;
}

function ipRows(h: Ipv4Header, T: Text, names: Names, ttlNote: string): [string, string, string][] {
  const flags = [h.dontFragment ? 'DF' : '', h.moreFragments ? 'MF' : ''].filter(Boolean).join(' ') || '-';
  return [
    ['Version', String(h.version), ''],
    ['IHL', `${h.ihl}`, T.pkt.ihl(h.headerLength)],
    ['DSCP / ECN', `0x${h.tos.toString(16).padStart(2, '0')}`, ''],
    ['Total Length', String(h.totalLength), T.pkt.totalLength],
    ['Identification', hex4(h.id), ''],
    ['Flags', flags, h.dontFragment ? T.pkt.df : ''],
    ['Fragment Offset', String(h.fragmentOffset), ''],
    ['TTL', String(h.ttl), ttlNote],
    ['Protocol', `${h.protocol} (${PROTO[h.protocol] ?? '?'})`, ''],
    ['Header Checksum', hex4(h.checksum), h.checksumOk ? T.pkt.checksumOk : T.pkt.checksumBad],
    ['Source', h.src, names.who(h.src) ?? ''],
    ['Destination', h.dst, names.who(h.dst) ?? ''],
  ];
}

export function headerTables(d: FlannelDatagram, T: Text, names: Names): HeaderTable[] {
  const tables: HeaderTable[] = [];
  const span = (start: number, len: number) => T.pkt.span(start, start + len - 1, len);
  const table = (layer: string, name: string, start: number, length: number, rows: [string, string, string][], spans: [number, number][]) =>
    tables.push({ layer, title: `${name}  ${span(start, length)}`, start, length, rows, spans });
  const vx = d.vxlan !== undefined;
  if (d.link.kind === 'ethernet') {
    table(
      'ethernet',
      T.pkt.ethernet,
      0,
      14,
      [
        ['Destination MAC', d.link.dst!, names.who(d.link.dst!) ?? ''],
        ['Source MAC', d.link.src!, names.who(d.link.src!) ?? ''],
        ['EtherType', `0x${d.link.etherType.toString(16).padStart(4, '0')}`, 'IPv4'],
      ],
      [
        [0, 6],
        [6, 6],
        [12, 2],
      ],
    );
  }
  table('outer', T.pkt.outerIp, d.outer.offset, d.outer.headerLength, ipRows(d.outer, T, names, T.pkt.outerTtl), at(d.outer.offset, IP_SPANS));
  const u = d.udp;
  const hostOf = (ip: string) => (names.who(ip) ?? ip).replace(/ eth0$/, '');
  const innerLen = u.length - 8;
  const checksumNote = { ok: T.pkt.checksumOk, partial: T.pkt.udpPartial, none: T.pkt.udpNone, bad: T.pkt.checksumBad }[u.checksumState];
  const innerTotal = vx ? d.inner.totalLength + 22 : d.inner.totalLength;
  table(
    'udp',
    T.pkt.udp,
    u.offset,
    8,
    [
      ['Source Port', String(u.srcPort), vx ? T.pkt.vxSrcPort : T.pkt.srcPort(hostOf(d.outer.src))],
      ['Destination Port', String(u.dstPort), vx ? T.pkt.vxDstPort : T.pkt.dstPort(hostOf(d.outer.dst))],
      ['Length', String(u.length), vx ? `8 + ${innerLen}` : T.pkt.udpLength(innerLen, innerTotal)],
      ['Checksum', hex4(u.checksum), checksumNote],
    ],
    at(u.offset, [
      [0, 2],
      [2, 2],
      [4, 2],
      [6, 2],
    ]),
  );
  if (d.vxlan && d.innerLink) {
    const v = d.vxlan;
    table(
      'vxlan',
      T.pkt.vxlan,
      v.offset,
      8,
      [
        ['Flags', `0x${v.flags.toString(16).padStart(2, '0')}`, v.flags & 0x08 ? T.pkt.vxFlags : ''],
        ['VNI', String(v.vni), T.pkt.vni(v.vni)],
      ],
      at(v.offset, [
        [0, 1],
        [4, 3],
      ]),
    );
    const e = d.innerLink;
    table(
      'innerEthernet',
      T.pkt.innerEthernet,
      e.offset,
      14,
      [
        ['Destination MAC', e.dst!, names.who(e.dst!) ?? T.pkt.innerMacDst],
        ['Source MAC', e.src!, names.who(e.src!) ?? T.pkt.innerMacSrc],
        ['EtherType', `0x${e.etherType.toString(16).padStart(4, '0')}`, 'IPv4'],
      ],
      at(e.offset, [
        [0, 6],
        [6, 6],
        [12, 2],
      ]),
    );
  }
  table('inner', T.pkt.innerIp, d.inner.offset, d.inner.headerLength, ipRows(d.inner, T, names, vx ? T.pkt.vxInnerTtl(d.inner.ttl) : T.pkt.innerTtl(d.inner.ttl)), at(d.inner.offset, IP_SPANS));
  if (d.icmp) {
    const i = d.icmp;
    const type = i.type === 8 ? 'echo request' : i.type === 0 ? 'echo reply' : '';
    const rows: [string, string, string][] = [
      ['Type', `${i.type}${type ? ` (${type})` : ''}`, ''],
      ['Code', String(i.code), ''],
      ['Checksum', hex4(i.checksum), i.checksumOk ? T.pkt.checksumOk : T.pkt.checksumBad],
    ];
    const spans: [number, number][] = [
      [0, 1],
      [1, 1],
      [2, 2],
    ];
    if (i.id !== undefined) {
      rows.push(['Identifier', String(i.id), T.pkt.icmpId], ['Sequence Number', String(i.seq), T.pkt.icmpSeq]);
      spans.push([4, 2], [6, 2]);
    }
    rows.push(['Data', T.pkt.bytes(i.dataLength), T.pkt.icmpData]);
    spans.push([8, i.dataLength]);
    table('icmp', T.pkt.icmp, i.offset, 8, rows, at(i.offset, spans));
  }
  return tables;
}

export function regions(d: FlannelDatagram, T: Text): Region[] {
  const r: Region[] = [];
  const span = (start: number, len: number) => T.pkt.span(start, start + len - 1, len);
  const add = (start: number, len: number, name: string, style: Region['style']) => {
    if (len > 0) r.push({ start, end: start + len, label: `${name}  ${span(start, len)}`, style });
  };
  if (d.link.length > 0) add(0, d.link.length, d.link.kind === 'ethernet' ? T.pkt.ethernet : T.pkt.link, 'c6');
  add(d.outer.offset, d.outer.headerLength, T.pkt.outerIp, 'c1');
  add(d.udp.offset, 8, T.pkt.udp, 'c2');
  if (d.vxlan && d.innerLink) {
    add(d.vxlan.offset, 8, T.pkt.vxlan, 'c2');
    add(d.innerLink.offset, 14, T.pkt.innerEthernet, 'c6');
  }
  add(d.inner.offset, d.inner.headerLength, T.pkt.innerIp, 'c3');
  const innerEnd = Math.min(d.frame.length, d.inner.offset + d.inner.totalLength);
  if (d.icmp) {
    add(d.icmp.offset, 8, T.pkt.icmp, 'c4');
    add(d.icmp.offset + 8, innerEnd - d.icmp.offset - 8, T.pkt.icmpDataRegion, 'c5');
  } else {
    add(d.inner.offset + d.inner.headerLength, innerEnd - d.inner.offset - d.inner.headerLength, T.pkt.innerPayload, 'c5');
  }
  return r;
}
