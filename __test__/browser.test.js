'use strict';
// End to end: the demo page of `npm start`, opened in a real headless Chromium, echoes through ferrows.
const test = require('ava');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startEcho } = require('./helpers.js');

// Debian's package, which `npm test`'s pretest step installs when it is missing.
const CHROMIUM = '/usr/bin/chromium';

test('the demo page connects and shows the echo of a typed message', async (t) => {
  t.timeout(60000);
  t.true(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium`);
  const { chromium } = require('playwright-core');
  const { port } = await startEcho(t);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  t.is(await page.title(), 'ferrows echo');
  await page.waitForSelector('#status.open', { timeout: 10000 });
  await page.fill('#text', 'héllo from Chromium ✓');
  await page.click('#send');
  const echo = await page.waitForSelector('li.echo', { timeout: 10000 });
  t.is(await echo.textContent(), 'echo: héllo from Chromium ✓');
  await page.screenshot({ path: path.join(os.tmpdir(), 'ferrows-demo.png') });
});
