// flannel's iptables rules, as flannel's pkg/trafficmngr/iptables builds
// them, and the text forms iptables-restore reads and iptables-save prints.
//
// Rule specs are written in the canonical order iptables-save prints them
// (source, destination, matches, target), so a rule read back from
// `iptables-save` tokenizes to exactly the spec we applied; `ruleKey` is the
// comparison key for both.

/** The kube-proxy mark flannel never masquerades (trafficmngr.KubeProxyMark). */
export const KUBE_PROXY_MARK = '0x4000/0x4000';
export const MASQ_CHAIN = 'FLANNEL-POSTRTG';
export const FORWARD_CHAIN = 'FLANNEL-FWD';
export const MASQ_COMMENT = 'flanneld masq';
export const FORWARD_COMMENT = 'flanneld forward';

export type Table = 'nat' | 'filter';

export interface IptablesRule {
  table: Table;
  chain: string;
  /** The rule after `-A <chain>`, one argv word per element (no shell quoting). */
  spec: string[];
}

/**
 * flannel's masquerade rules for IPv4 (iptables.go masqRules), in order:
 *  - POSTROUTING jumps to FLANNEL-POSTRTG;
 *  - packets marked by kube-proxy are left alone (no double NAT);
 *  - pod subnet → Network and Network → pod subnet: no NAT (pod-to-pod keeps pod sources);
 *  - outside → pod subnet (traffic arriving from a node that owns the pod IP): no NAT;
 *  - Network → anything but multicast: MASQUERADE (pods reaching the outside world);
 *  - not-Network → Network: MASQUERADE (the host talking to remote pods).
 * `network` is the whole overlay (FLANNEL_NETWORK), `subnet` this node's lease,
 * both as CIDR text ("198.19.0.0/16", "198.19.7.0/24").
 */
export function masqRules(network: string, subnet: string, randomFully: boolean): IptablesRule[] {
  const c = ['-m', 'comment', '--comment', MASQ_COMMENT];
  const masq = randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE'];
  return [
    { table: 'nat', chain: 'POSTROUTING', spec: [...c, '-j', MASQ_CHAIN] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['-m', 'mark', '--mark', KUBE_PROXY_MARK, ...c, '-j', 'RETURN'] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['-s', subnet, '-d', network, ...c, '-j', 'RETURN'] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['-s', network, '-d', subnet, ...c, '-j', 'RETURN'] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['!', '-s', network, '-d', subnet, ...c, '-j', 'RETURN'] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['-s', network, '!', '-d', '224.0.0.0/4', ...c, ...masq] },
    { table: 'nat', chain: MASQ_CHAIN, spec: ['!', '-s', network, '-d', network, ...c, ...masq] },
  ];
}

/** flannel's FORWARD accept rules (iptables.go forwardRules): anything from or to the Network. */
export function forwardRules(network: string): IptablesRule[] {
  const c = ['-m', 'comment', '--comment', FORWARD_COMMENT];
  return [
    { table: 'filter', chain: 'FORWARD', spec: [...c, '-j', FORWARD_CHAIN] },
    { table: 'filter', chain: FORWARD_CHAIN, spec: ['-s', network, ...c, '-j', 'ACCEPT'] },
    { table: 'filter', chain: FORWARD_CHAIN, spec: ['-d', network, ...c, '-j', 'ACCEPT'] },
  ];
}

/** Quotes one word for iptables-restore (its own tokenizer, not a shell's: double quotes only). */
export function quoteWord(w: string): string {
  if (w !== '' && /^[A-Za-z0-9_./:!+=,@%^-]+$/.test(w)) return w;
  if (/["\n]/.test(w)) throw new Error(`an iptables rule word cannot hold a double quote or newline: ${JSON.stringify(w)}`);
  return `"${w}"`;
}

/** The line iptables-restore reads for `action` (-A, -D, -I) on a rule. */
export function ruleLine(action: '-A' | '-D' | '-I', r: IptablesRule): string {
  return [action, r.chain, ...r.spec].map(quoteWord).join(' ');
}

/** Splits an iptables-save rule line into words, honouring its double quotes (and \" inside them). */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && line[i] === ' ') i++;
    if (i >= line.length) break;
    let w = '';
    while (i < line.length && line[i] !== ' ') {
      if (line[i] === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          w += line[i++];
        }
        i++; // closing quote
      } else {
        w += line[i++];
      }
    }
    out.push(w);
  }
  return out;
}

/** A rule's identity: table, chain and spec words. */
export function ruleKey(table: string, chain: string, spec: string[]): string {
  return JSON.stringify([table, chain, ...spec]);
}

/** What `iptables-save` shows: per table, its chains and its rules (as ruleKey, in order, with repeats). */
export interface SavedState {
  chains: Map<string, Set<string>>;
  rules: string[];
}

/** Parses `iptables-save` output (all tables). Comments and counters are ignored. */
export function parseSave(text: string): SavedState {
  const chains = new Map<string, Set<string>>();
  const rules: string[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      if (!chains.has(table)) chains.set(table, new Set());
    } else if (line.startsWith(':')) {
      chains.get(table)?.add(line.slice(1).split(' ')[0]);
    } else if (line.startsWith('-A ')) {
      const words = tokenize(line);
      rules.push(ruleKey(table, words[1], words.slice(2)));
    }
  }
  return { chains, rules };
}

export function hasChain(s: SavedState, table: string, chain: string): boolean {
  return s.chains.get(table)?.has(chain) ?? false;
}

/** How many times the rule appears (0 when absent). */
export function countRule(s: SavedState, r: IptablesRule): number {
  const k = ruleKey(r.table, r.chain, r.spec);
  let n = 0;
  for (const x of s.rules) if (x === k) n++;
  return n;
}

/** flannel's ipTablesRulesExist: every rule is present (order and extra rules not checked). */
export function allPresent(s: SavedState, rules: IptablesRule[]): boolean {
  return rules.every((r) => countRule(s, r) > 0);
}

/**
 * The iptables-restore --noflush payload that (re)installs a rule set as
 * flannel's bootstrap does, in one transaction: each flannel chain is declared
 * (created, or flushed if it exists), the jump rules into it that already
 * exist are deleted (every copy) and everything is appended in order, so the
 * jump ends up once, at the end of the built-in chain.
 */
export function bootstrapPayload(s: SavedState, rules: IptablesRule[]): string {
  const byTable = new Map<Table, string[]>();
  const own = new Set<string>(); // table/chain pairs flannel owns (the non-built-in ones)
  for (const r of rules) if (r.chain.startsWith('FLANNEL-')) own.add(`${r.table}/${r.chain}`);
  for (const r of rules) {
    const lines = byTable.get(r.table) ?? [];
    byTable.set(r.table, lines);
    if (lines.length === 0) {
      for (const tc of own) {
        const [t, c] = tc.split('/');
        if (t === r.table) lines.push(`:${c} - [0:0]`);
      }
    }
    if (!own.has(`${r.table}/${r.chain}`)) {
      // A rule in a built-in chain (the jump): remove existing copies first.
      for (let n = countRule(s, r); n > 0; n--) lines.push(ruleLine('-D', r));
    }
    lines.push(ruleLine('-A', r));
  }
  return payload(byTable);
}

/**
 * The payload that removes a rule set: the rules in built-in chains (every
 * copy), then flannel's own chains (flushed and deleted). Only what exists is
 * named, so the transaction cannot fail on a missing rule.
 */
export function teardownPayload(s: SavedState, rules: IptablesRule[]): string {
  const byTable = new Map<Table, string[]>();
  const chains = new Set<string>();
  for (const r of rules) {
    if (r.chain.startsWith('FLANNEL-')) {
      chains.add(`${r.table}/${r.chain}`);
      continue;
    }
    const lines = byTable.get(r.table) ?? [];
    byTable.set(r.table, lines);
    for (let n = countRule(s, r); n > 0; n--) lines.push(ruleLine('-D', r));
  }
  for (const tc of chains) {
    const [t, c] = tc.split('/') as [Table, string];
    if (!hasChain(s, t, c)) continue;
    const lines = byTable.get(t) ?? [];
    byTable.set(t, lines);
    lines.push(`-F ${c}`, `-X ${c}`);
  }
  return payload(byTable);
}

function payload(byTable: Map<Table, string[]>): string {
  let out = '';
  for (const [table, lines] of byTable) {
    if (lines.length === 0) continue;
    out += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
  }
  return out;
}

/** go-iptables' HasRandomFully: iptables 1.6.2 or later. `versionText` is `iptables --version`'s output. */
export function supportsRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const [maj, min, mic] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 6 || (min === 6 && mic >= 2)));
}
