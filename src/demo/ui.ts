// Terminal output for the demo: headings, narration wrapped to the terminal,
// commands shown with why they are run and their real output, aligned tables
// (CJK-aware widths), and a progress line while waiting.
//
// Colour and the progress line are for a person at a terminal: both are off
// with --plain or when stdout is not a TTY (colour also with NO_COLOR).

export interface UiOptions {
  color: boolean;
  progress: boolean;
  /** Wrap narration at this width (default: the terminal's, at most 100). */
  width?: number;
  /** Where lines go (default: stdout). The web view writes the narration to a log file. */
  write?: (s: string) => void;
}

const ESC = '\x1b[';
const STYLES = {
  bold: '1',
  dim: '2',
  heading: '1;36',
  sub: '1;34',
  prompt: '1;32',
  comment: '33',
  ok: '32',
  warn: '1;33',
  err: '1;31',
  c1: '36',
  c2: '35',
  c3: '33',
  c4: '32',
  c5: '34',
  c6: '37',
} as const;
export type Style = keyof typeof STYLES;

/** East Asian wide characters take two columns (enough for Chinese narration). */
function charWidth(cp: number): number {
  if (cp < 0x1100) return 1;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the ANSI colour sequences this strips.
const ANSI = /\x1b\[[0-9;]*m/g;

/** Columns `s` takes on a terminal (ANSI escapes ignored). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s.replace(ANSI, '')) w += charWidth(ch.codePointAt(0)!);
  return w;
}

export function padEnd(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}

/**
 * Wraps `text` to `width` columns: breaks at spaces, and between any two wide
 * (CJK) characters, never before CJK closing punctuation.
 */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    // Tokens: runs of non-space narrow characters, single wide characters, spaces.
    const tokens = para.match(/ +|[^\s\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60]+|./gu) ?? [];
    let line = '';
    let w = 0;
    for (const t of tokens) {
      const tw = displayWidth(t);
      const noBreakBefore = /^[，。、；：！？）」』》】,.;:!?)]/.test(t);
      if (w + tw > width && w > 0 && !t.startsWith(' ') && !noBreakBefore) {
        out.push(line.replace(/ +$/, ''));
        line = '';
        w = 0;
      }
      if (w === 0 && t.startsWith(' ')) continue;
      line += t;
      w += tw;
    }
    out.push(line.replace(/ +$/, ''));
  }
  return out;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private readonly started = Date.now();

  constructor(
    private readonly ui: Ui,
    private text: string,
  ) {
    if (ui.opts.progress) {
      this.draw();
      this.timer = setInterval(() => this.draw(), 80);
    }
  }

  set(text: string): void {
    this.text = text;
    if (this.timer) this.draw();
  }

  /** Seconds since the progress line started. */
  get elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  /** Clears the line; prints `final` (with a check mark) if given, also in plain mode. */
  done(final?: string): void {
    this.clear();
    if (final !== undefined) this.ui.line(`  ${this.ui.style('ok', '✓')} ${final}`);
  }

  /** Clears the line without a message (an error or Ctrl-C follows). */
  clear(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      process.stdout.write(`\r${ESC}2K`);
    }
    this.ui.active = undefined;
  }

  private draw(): void {
    const s = `  ${this.ui.style('c1', SPINNER[this.frame++ % SPINNER.length])} ${this.text} ${this.ui.style('dim', `${this.elapsed.toFixed(1)} s`)}`;
    process.stdout.write(`\r${ESC}2K${s}`);
  }
}

export class Ui {
  readonly width: number;
  /** The progress line being drawn, if any (cleared on Ctrl-C or an error). */
  active: Progress | undefined;

  constructor(readonly opts: UiOptions) {
    this.width = opts.width ?? Math.min(100, Math.max(60, (process.stdout.isTTY && process.stdout.columns) || 80));
  }

  style(s: Style, text: string): string {
    return this.opts.color ? `${ESC}${STYLES[s]}m${text}${ESC}0m` : text;
  }

  private lastBlank = true;

  line(s = ''): void {
    if (this.opts.write) this.opts.write(`${s}\n`);
    else process.stdout.write(`${s}\n`);
    this.lastBlank = s === '';
  }

  /** A blank line, unless the last line printed was one. */
  gap(): void {
    if (!this.lastBlank) this.line();
  }

  title(s: string): void {
    const bar = '═'.repeat(Math.min(this.width, displayWidth(s) + 4));
    this.line();
    this.line(this.opts.color ? this.style('heading', bar) : bar.replace(/═/g, '='));
    this.line(this.style('heading', `  ${s}`));
    this.line(this.opts.color ? this.style('heading', bar) : bar.replace(/═/g, '='));
  }

  /** A numbered step: "== 3. The leases in etcd". */
  heading(s: string): void {
    this.gap();
    this.line(this.opts.color ? this.style('heading', `━━ ${s} ${'━'.repeat(Math.max(2, this.width - displayWidth(s) - 4))}`) : `== ${s}`);
  }

  /** A hop inside a step: "-- 5.3 h1's routing table picks flannel0". */
  sub(s: string): void {
    this.gap();
    this.line(this.opts.color ? this.style('sub', `▸ ${s}`) : `-- ${s}`);
  }

  /** Narration, wrapped. */
  para(s: string, indent = 0): void {
    this.gap();
    const pad = ' '.repeat(indent);
    for (const l of wrap(s, this.width - indent)) this.line(l === '' ? '' : pad + l);
  }

  /** A note set apart from the narration (seeds' v2 commands, caveats). */
  note(s: string): void {
    const lines = wrap(s, this.width - 4);
    for (const [i, l] of lines.entries()) this.line(`  ${this.style('dim', i === 0 ? '※ ' : '  ')}${this.style('dim', l)}`);
  }

  /**
   * A command as typed at `where` (h1, h1-pod1...), after a one-line reason,
   * then its real output indented under it.
   */
  cmd(where: string, command: string, why: string, output?: string): void {
    this.gap();
    for (const l of wrap(why, this.width - 4)) this.line(`  ${this.style('comment', `# ${l}`)}`);
    this.line(`  ${this.style('prompt', `${where}#`)} ${this.style('bold', command)}`);
    if (output !== undefined) this.output(output);
  }

  /** A comment line before output that is not a command's (a trace's, tcpdump's). */
  comment(s: string): void {
    this.gap();
    for (const l of wrap(s, this.width - 4)) this.line(`  ${this.style('comment', `# ${l}`)}`);
  }

  /** Command output, verbatim, indented. */
  output(text: string): void {
    const lines = text.replace(/\n+$/, '').split('\n');
    if (lines.length === 1 && lines[0] === '') return;
    for (const l of lines) this.line(`    ${l.replace(/\s+$/, '')}`);
  }

  /** An aligned table: the header in bold, a rule under it, columns padded to the widest cell. */
  table(header: string[], rows: string[][], indent = 2): void {
    const widths = header.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
    const pad = ' '.repeat(indent);
    const fmt = (r: string[]) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : padEnd(c, widths[i])))
        .join('  ')
        .replace(/\s+$/, '');
    this.line(pad + this.style('bold', fmt(header)));
    this.line(
      pad +
        this.style(
          'dim',
          widths
            .filter((w) => w > 0)
            .map((w) => (this.opts.color ? '─' : '-').repeat(w))
            .join('  '),
        ),
    );
    for (const r of rows) this.line(pad + fmt(r));
  }

  progress(text: string): Progress {
    this.active?.clear();
    this.active = new Progress(this, text);
    return this.active;
  }
}
