// Regenerates the README's picture of the web view (docs/web-demo.png): starts
// `flannel-ts demo --web --port 0`, opens the page in Debian's headless
// chromium at the demo's ping (#step=N), waits for the journey and the
// layers, takes the screenshot, then SIGTERM (the demo removes its cluster).
// Run as root: bash scripts/web-screenshot.sh [--lang zh] [--step N] [--out FILE] [--full]

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../src/lab/lab';
import { waitFor } from '../src/lab/sh';
import { launchChromium } from '../test/lib/browser';

declare const document: { body: { dataset: Record<string, string | undefined> } };

async function main(argv: string[]): Promise<void> {
  const opt = (k: string, d: string) => {
    const i = argv.indexOf(k);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : d;
  };
  const lang = opt('--lang', 'en');
  const step = Number(opt('--step', '6'));
  const out = path.resolve(opt('--out', path.join(REPO_ROOT, 'docs', lang === 'zh' ? 'web-demo-zh.png' : 'web-demo.png')));
  const demo = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/flannel-ts'), 'demo', '--web', '--port', '0', '--plain'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  demo.stdout.on('data', (d: Buffer) => {
    text += d;
    process.stdout.write(d);
  });
  try {
    await waitFor('the demo URL', () => /^http:\/\/127\.0\.0\.1:\S+$/m.test(text) || demo.exitCode !== null, 120_000);
    if (demo.exitCode !== null) throw new Error('the demo ended before serving its page');
    const url = /^(http:\/\/127\.0\.0\.1:\S+)$/m.exec(text)![1];
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1600, height: 1000 });
      await page.goto(`${url}${lang === 'zh' ? '&lang=zh' : ''}#step=${step}`, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(() => document.body.dataset.ready === 'yes' && document.body.dataset.journey === 'done', { timeout: 90_000 });
      await new Promise((r) => setTimeout(r, 800)); // the packet's move to its hop
      // The picture a class sees first: the cluster, the hop and the two datagrams' layers (--full: the whole page).
      await page.screenshot(argv.includes('--full') ? { path: out, fullPage: true } : { path: out, clip: { x: 0, y: 0, width: 1600, height: 1060 } });
      process.stdout.write(`screenshot: ${out}\n`);
    } finally {
      await browser.close();
    }
  } finally {
    if (demo.exitCode === null) {
      demo.kill('SIGTERM');
      await new Promise((r) => demo.once('exit', r));
    }
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
