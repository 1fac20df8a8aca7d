// The captured datagram, field by field: one table per header, each row a
// field as RFC 791 / 768 / 792 name it, its value read from the bytes, and
// what it means here (who an address belongs to, why the TTL is what it is,
// whether a checksum verifies). Plus the regions for the marked hexdump.

import type { FlannelDatagram, Ipv4Header } from './pcap';
import type { Region } from './hexdump';
import type { Text } from './text';

export interface HeaderTable {
  title: string;
  rows: [string, string, string][];
}

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
  if (d.link.kind === 'ethernet') {
    tables.push({
      title: `${T.pkt.ethernet}  ${span(0, 14)}`,
      rows: [
        ['Destination MAC', d.link.dst!, names.who(d.link.dst!) ?? ''],
        ['Source MAC', d.link.src!, names.who(d.link.src!) ?? ''],
        ['EtherType', `0x${d.link.etherType.toString(16).padStart(4, '0')}`, 'IPv4'],
      ],
    });
  }
  tables.push({ title: `${T.pkt.outerIp}  ${span(d.outer.offset, d.outer.headerLength)}`, rows: ipRows(d.outer, T, names, T.pkt.outerTtl) });
  const u = d.udp;
  const hostOf = (ip: string) => (names.who(ip) ?? ip).replace(/ eth0$/, '');
  const innerLen = u.length - 8;
  const checksumNote = { ok: T.pkt.checksumOk, partial: T.pkt.udpPartial, none: T.pkt.udpNone, bad: T.pkt.checksumBad }[u.checksumState];
  tables.push({
    title: `${T.pkt.udp}  ${span(u.offset, 8)}`,
    rows: [
      ['Source Port', String(u.srcPort), T.pkt.srcPort(hostOf(d.outer.src))],
      ['Destination Port', String(u.dstPort), T.pkt.dstPort(hostOf(d.outer.dst))],
      ['Length', String(u.length), T.pkt.udpLength(innerLen, d.inner.totalLength)],
      ['Checksum', hex4(u.checksum), checksumNote],
    ],
  });
  tables.push({ title: `${T.pkt.innerIp}  ${span(d.inner.offset, d.inner.headerLength)}`, rows: ipRows(d.inner, T, names, T.pkt.innerTtl(d.inner.ttl)) });
  if (d.icmp) {
    const i = d.icmp;
    const type = i.type === 8 ? 'echo request' : i.type === 0 ? 'echo reply' : '';
    const rows: [string, string, string][] = [
      ['Type', `${i.type}${type ? ` (${type})` : ''}`, ''],
      ['Code', String(i.code), ''],
      ['Checksum', hex4(i.checksum), i.checksumOk ? T.pkt.checksumOk : T.pkt.checksumBad],
    ];
    if (i.id !== undefined) rows.push(['Identifier', String(i.id), T.pkt.icmpId], ['Sequence Number', String(i.seq), T.pkt.icmpSeq]);
    rows.push(['Data', T.pkt.bytes(i.dataLength), T.pkt.icmpData]);
    tables.push({ title: `${T.pkt.icmp}  ${span(i.offset, 8)}`, rows });
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
