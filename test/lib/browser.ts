// Debian's chromium, headless, driven by puppeteer-core (no browser download:
// puppeteer-core never fetches one, it is pointed at /usr/bin/chromium).
// As root, chromium needs --no-sandbox; the browser only ever loads the
// web view on 127.0.0.1.

import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--font-render-hinting=none'],
  });
}
