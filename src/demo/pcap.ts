// Reading what tcpdump wrote (-w FILE, classic pcap) and decoding one
// flannel udp datagram by hand: link header, outer IPv4, UDP, then the inner
// IPv4 packet (and its ICMP header) that is the whole UDP payload. No tcpdump
// decoding is used: every field is read from the bytes here.

export interface PcapRecord {
  /** Capture time, seconds since the epoch (fractional). */
  time: number;
  /** Bytes captured (at most the snapshot length). */
  data: Buffer;
  /** Length of the packet on the wire. */
  origLen: number;
}

export interface PcapFile {
  linkType: number;
  snapLen: number;
  records: PcapRecord[];
}

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

/** Parses a classic pcap file (either byte order, micro- or nanosecond stamps). */
export function readPcap(buf: Buffer): PcapFile {
  if (buf.length < 24) throw new Error(`not a pcap file: ${buf.length} bytes`);
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else {
    throw new Error(`not a pcap file (magic 0x${buf.readUInt32BE(0).toString(16)}; pcapng is not read here)`);
  }
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const file: PcapFile = { snapLen: u32(16), linkType: u32(20) & 0x0fffffff, records: [] };
  let o = 24;
  while (o + 16 <= buf.length) {
    const sec = u32(o);
    const frac = u32(o + 4);
    const incl = u32(o + 8);
    const orig = u32(o + 12);
    if (o + 16 + incl > buf.length) break; // a record cut short: tcpdump was stopped mid-write
    file.records.push({ time: sec + frac / (nano ? 1e9 : 1e6), data: buf.subarray(o + 16, o + 16 + incl), origLen: orig });
    o += 16 + incl;
  }
  return file;
}

/** RFC 1071 one's-complement sum of 16-bit words (not complemented). */
export function onesSum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (i < end) sum += b[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const ip4 = (b: Uint8Array, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const mac = (b: Uint8Array, o: number) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

export interface Ipv4Header {
  offset: number;
  version: number;
  ihl: number;
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  checksumOk: boolean;
  src: string;
  dst: string;
}

export interface UdpHeader {
  offset: number;
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
  /**
   * 'ok': verifies; 'partial': only the pseudo-header sum is there, the rest
   * was left to the device (checksum offload: captured before a device that
   * never completes it, as on a veth); 'none': 0 (no checksum); 'bad'.
   */
  checksumState: 'ok' | 'partial' | 'none' | 'bad';
}

export interface IcmpHeader {
  offset: number;
  type: number;
  code: number;
  checksum: number;
  checksumOk: boolean;
  id?: number;
  seq?: number;
  dataLength: number;
}

export interface LinkHeader {
  kind: 'ethernet' | 'sll' | 'sll2' | 'raw';
  length: number;
  dst?: string;
  src?: string;
  etherType: number;
}

export interface VxlanHeader {
  offset: number;
  flags: number;
  vni: number;
}

export interface FlannelDatagram {
  frame: Buffer;
  link: LinkHeader;
  outer: Ipv4Header;
  udp: UdpHeader;
  /** vxlan only: the VXLAN header and the inner Ethernet header (at innerLink.offset) that follow UDP. */
  vxlan?: VxlanHeader;
  innerLink?: LinkHeader & { offset: number };
  inner: Ipv4Header;
  icmp?: IcmpHeader;
}

export function decodeIpv4(b: Uint8Array, o: number): Ipv4Header {
  if (b.length < o + 20) throw new Error(`IPv4 header at ${o} cut short (${b.length - o} bytes)`);
  const version = b[o] >> 4;
  if (version !== 4) throw new Error(`not IPv4 at byte ${o} (version ${version})`);
  const ihl = b[o] & 0x0f;
  const flagsFrag = (b[o + 6] << 8) | b[o + 7];
  return {
    offset: o,
    version,
    ihl,
    headerLength: ihl * 4,
    tos: b[o + 1],
    totalLength: (b[o + 2] << 8) | b[o + 3],
    id: (b[o + 4] << 8) | b[o + 5],
    dontFragment: (flagsFrag & 0x4000) !== 0,
    moreFragments: (flagsFrag & 0x2000) !== 0,
    fragmentOffset: (flagsFrag & 0x1fff) * 8,
    ttl: b[o + 8],
    protocol: b[o + 9],
    checksum: (b[o + 10] << 8) | b[o + 11],
    checksumOk: onesSum(b, o, o + ihl * 4) === 0xffff,
    src: ip4(b, o + 12),
    dst: ip4(b, o + 16),
  };
}

function decodeUdp(b: Uint8Array, ip: Ipv4Header): UdpHeader {
  const o = ip.offset + ip.headerLength;
  if (b.length < o + 8) throw new Error('UDP header cut short');
  const length = (b[o + 4] << 8) | b[o + 5];
  const checksum = (b[o + 6] << 8) | b[o + 7];
  // Pseudo header: source, destination, zero + protocol, UDP length.
  let pseudo = onesSum(b, ip.offset + 12, ip.offset + 20);
  pseudo = onesSum(Uint8Array.of(0, 17, length >> 8, length & 0xff), 0, 4, pseudo);
  let state: UdpHeader['checksumState'];
  if (checksum === 0) state = 'none';
  else if (b.length >= o + length && onesSum(b, o, o + length, pseudo) === 0xffff) state = 'ok';
  else if (checksum === pseudo) state = 'partial';
  else state = 'bad';
  return { offset: o, srcPort: (b[o] << 8) | b[o + 1], dstPort: (b[o + 2] << 8) | b[o + 3], length, checksum, checksumState: state };
}

function decodeIcmp(b: Uint8Array, ip: Ipv4Header): IcmpHeader | undefined {
  const o = ip.offset + ip.headerLength;
  const end = Math.min(b.length, ip.offset + ip.totalLength);
  if (end < o + 8) return undefined;
  const type = b[o];
  const h: IcmpHeader = { offset: o, type, code: b[o + 1], checksum: (b[o + 2] << 8) | b[o + 3], checksumOk: onesSum(b, o, end) === 0xffff, dataLength: end - o - 8 };
  if (type === 0 || type === 8) {
    h.id = (b[o + 4] << 8) | b[o + 5];
    h.seq = (b[o + 6] << 8) | b[o + 7];
  }
  return h;
}

function decodeLink(b: Uint8Array, linkType: number): LinkHeader {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return { kind: 'ethernet', length: 14, dst: mac(b, 0), src: mac(b, 6), etherType: (b[12] << 8) | b[13] };
    case LINKTYPE_LINUX_SLL:
      return { kind: 'sll', length: 16, etherType: (b[14] << 8) | b[15] };
    case LINKTYPE_LINUX_SLL2:
      return { kind: 'sll2', length: 20, etherType: (b[0] << 8) | b[1] };
    case LINKTYPE_RAW:
      return { kind: 'raw', length: 0, etherType: 0x0800 };
    default:
      throw new Error(`pcap link type ${linkType} is not decoded here`);
  }
}

/** Decodes a captured frame as a flannel udp datagram: IPv4 in UDP in IPv4. */
export function decodeFlannelDatagram(frame: Buffer, linkType: number): FlannelDatagram {
  const link = decodeLink(frame, linkType);
  if (link.etherType !== 0x0800) throw new Error(`captured frame is not IPv4 (EtherType 0x${link.etherType.toString(16)})`);
  const outer = decodeIpv4(frame, link.length);
  if (outer.protocol !== 17) throw new Error(`outer packet is not UDP (protocol ${outer.protocol})`);
  const udp = decodeUdp(frame, outer);
  const inner = decodeIpv4(frame, udp.offset + 8);
  const icmp = inner.protocol === 1 ? decodeIcmp(frame, inner) : undefined;
  return { frame, link, outer, udp, inner, icmp };
}

/**
 * Decodes a captured frame as a vxlan datagram (RFC 7348): UDP, then the
 * 8-byte VXLAN header (flags, 24-bit VNI), then the inner Ethernet frame.
 */
export function decodeVxlanDatagram(frame: Buffer, linkType: number): FlannelDatagram {
  const link = decodeLink(frame, linkType);
  if (link.etherType !== 0x0800) throw new Error(`captured frame is not IPv4 (EtherType 0x${link.etherType.toString(16)})`);
  const outer = decodeIpv4(frame, link.length);
  if (outer.protocol !== 17) throw new Error(`outer packet is not UDP (protocol ${outer.protocol})`);
  const udp = decodeUdp(frame, outer);
  const v = udp.offset + 8;
  if (frame.length < v + 8 + 14) throw new Error('VXLAN header or inner Ethernet cut short');
  const vxlan = { offset: v, flags: frame[v], vni: (frame[v + 4] << 16) | (frame[v + 5] << 8) | frame[v + 6] };
  const e = v + 8;
  const innerLink = { kind: 'ethernet' as const, length: 14, offset: e, dst: mac(frame, e), src: mac(frame, e + 6), etherType: (frame[e + 12] << 8) | frame[e + 13] };
  if (innerLink.etherType !== 0x0800) throw new Error(`inner frame is not IPv4 (EtherType 0x${innerLink.etherType.toString(16)})`);
  const inner = decodeIpv4(frame, e + 14);
  const icmp = inner.protocol === 1 ? decodeIcmp(frame, inner) : undefined;
  return { frame, link, outer, udp, vxlan, innerLink, inner, icmp };
}
