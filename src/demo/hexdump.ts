// A hexdump with its regions marked: each region (Ethernet, outer IPv4, UDP,
// inner IPv4, ICMP...) starts under its own label, and its bytes stay at
// their true columns, so the offset column is read as in `xxd`/`tcpdump -X`.
//
//   -- outer IPv4 header  bytes 14-33 (20)
//   0000                                             45 00  |              E.|
//   0010  00 70 6a 0f 40 00 40 11  44 45 c6 12 00 01 c6 12  |.pj.@.@.DE......|

import type { Style } from './ui';

export interface Region {
  start: number;
  /** Exclusive. */
  end: number;
  label: string;
  style: Style;
}

export function hexdump(bytes: Uint8Array, regions: Region[], style: (s: Style, t: string) => string, marker = '--'): string[] {
  const out: string[] = [];
  for (const r of regions) {
    out.push(style(r.style, `${marker} ${r.label}`));
    const firstRow = r.start - (r.start % 16);
    for (let row = firstRow; row < r.end; row += 16) {
      let hex = '';
      let ascii = '';
      for (let i = row; i < row + 16; i++) {
        const inside = i >= r.start && i < r.end && i < bytes.length;
        const sep = i === row + 8 ? ' ' : '';
        hex += `${sep}${inside ? style(r.style, bytes[i].toString(16).padStart(2, '0')) : '  '} `;
        ascii += inside ? (bytes[i] >= 0x20 && bytes[i] < 0x7f ? String.fromCharCode(bytes[i]) : '.') : ' ';
      }
      out.push(`${row.toString(16).padStart(4, '0')}  ${hex} |${ascii}|`);
    }
  }
  return out;
}
