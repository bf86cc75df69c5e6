// Drives the stock board in headless Chromium (playwright-core, the machine's /usr/bin/chromium) the
// way a hospital user uses it; run by tests/api/test_web_client.py, which starts the API and the
// static server and causes the shortage alert.
//
// Env: PAGE_URL (the served index.html), API (GraphQL endpoint), TOKEN (a hospital's token),
// SHOTS (folder for screenshots), ALERT_KEY (site|group|component of the alert the test causes),
// CHROMIUM (default /usr/bin/chromium). Prints one JSON object a line on stdout:
// {"event":"subscribed"} once the page's subscription is acknowledged (the test then sends the
// mutation), then {"event":"done", ...what the page showed}. Exits non-zero on any failed wait.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { PAGE_URL, API, TOKEN, SHOTS, ALERT_KEY } = process.env;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WAIT = 30_000;
const say = (event, data = {}) => console.log(JSON.stringify({ event, ...data }));

const profile = mkdtempSync(join(tmpdir(), 'bloodbank-chromium-'));
const problems = []; // page errors and console lines that must not happen
let context;
let page;
let step = 'launch'; // named in the failure message
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors', // the local stack's self-signed certificate (tests only)
    ],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(WAIT);
  page = context.pages()[0] ?? (await context.newPage());
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));

  step = 'bad token';
  // A token the API refuses: the form says so by the error's code.
  await page.goto(`${PAGE_URL}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#token', 'not-a-token');
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#signin-error:not([hidden])[data-code]');
  const badToken = {
    code: await page.getAttribute('#signin-error', 'data-code'),
    text: (await page.textContent('#signin-error')).replace(/\s+/g, ' ').trim(),
    formShown: await page.isVisible('#signin-form'),
  };

  step = 'sign in';
  // Sign in with #token= (the fragment never reaches a server); the page removes it from the URL.
  await page.goto(`${PAGE_URL}?api=${encodeURIComponent(API)}#token=${encodeURIComponent(TOKEN)}`);
  await page.waitForSelector('body[data-ready="true"]');
  const readBoard = () =>
    page.$$eval('#board tbody tr[data-key]', (rows) =>
      rows.map((row) => ({
        key: row.dataset.key,
        status: row.dataset.status,
        statusText: row.querySelector('.status').lastChild.textContent.trim(), // the words, not the icon
        site: row.closest('tbody').querySelector('tr.site-row th').textContent,
        group: row.querySelector('th[scope="row"]').textContent,
        available: Number(row.querySelector('td.available').textContent),
      })),
    );
  await page.waitForSelector('#board tbody tr[data-key]');
  const board = await readBoard();
  const boardStatus = await page.textContent('#board-status');
  const urlAfterSignIn = page.url();
  step = 'filters';
  // The filters: every level, then one site's.
  await page.check('#show-unstocked');
  const allLevels = (await readBoard()).length;
  await page.selectOption('#site-filter', 'site-south');
  const southSites = [...new Set((await readBoard()).map((row) => row.key.split('|')[0]))];
  await page.selectOption('#site-filter', '');
  await page.uncheck('#show-unstocked');

  step = 'live alert';
  // Live alerts: wait until Amplify's subscription is acknowledged, then let the test cause one.
  await page.waitForSelector('#live[data-state="connected"]');
  say('subscribed');
  const alertItem = await page.waitForSelector(`#alerts li[data-key="${ALERT_KEY}"]`, { timeout: 45_000 });
  const alert = {
    text: (await alertItem.textContent()).replace(/\s+/g, ' ').trim(),
    status: await alertItem.getAttribute('data-status'),
    liveRegion: await page.getAttribute('#alerts', 'aria-live'),
  };
  const row = page.locator(`#board tr[data-key="${ALERT_KEY}"]`);
  const rowAfterAlert = {
    status: await row.getAttribute('data-status'),
    threshold: Number(await row.locator('td.threshold').textContent()),
    statusText: await row.locator('.status').evaluate((badge) => badge.lastChild.textContent.trim()),
  };
  await page.screenshot({ path: join(SHOTS, 'desktop.png'), fullPage: true });

  step = 'order';
  // The request form: a valid order.
  await page.selectOption('#bloodGroup', 'A_POS');
  await page.selectOption('#component', 'RED_CELLS');
  await page.fill('#quantity', '2');
  await page.selectOption('#urgency', 'URGENT');
  await page.click('#request-submit');
  await page.waitForSelector('#request-result .request-id');
  const created = {
    id: await page.textContent('#request-result .request-id'),
    status: await page.textContent('#request-result .request-status'),
    text: (await page.textContent('#request-result')).replace(/\s+/g, ' ').trim(),
  };

  step = 'refused order';
  // An order the browser cannot refuse but the API does: needed in 120 days (the limit is 90).
  const late = new Date(Date.now() + 120 * 86_400_000);
  const local = new Date(late.getTime() - late.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await page.selectOption('#bloodGroup', 'O_NEG');
  await page.selectOption('#component', 'PLATELETS');
  await page.fill('#quantity', '1');
  await page.fill('#neededBy', local);
  await page.click('#request-submit');
  await page.waitForSelector('#request-error:not([hidden])[data-code]');
  const rejected = {
    code: await page.getAttribute('#request-error', 'data-code'),
    text: (await page.textContent('#request-error')).replace(/\s+/g, ' ').trim(),
    role: await page.getAttribute('#request-error', 'role'),
    fieldInvalid: await page.getAttribute('#neededBy', 'aria-invalid'),
    fieldMessage: await page.textContent('#neededBy-error'),
  };

  step = 'client-side check';
  // And one the page catches itself (no blood group), without a request.
  await page.selectOption('#bloodGroup', '');
  await page.click('#request-submit');
  await page.waitForSelector('#bloodGroup[aria-invalid="true"]');
  const clientSide = await page.textContent('#bloodGroup-error');

  step = 'phone';
  // Phone width: no horizontal page scroll, the board as cards.
  await page.setViewportSize({ width: 375, height: 800 });
  await page.waitForFunction(() => getComputedStyle(document.querySelector('#board thead')).position === 'absolute');
  const phone = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    rowDisplay: getComputedStyle(document.querySelector('#board tr[data-key]')).display,
    widestPanel: Math.max(...[...document.querySelectorAll('.panel')].map((p) => p.getBoundingClientRect().right)),
  }));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, 'phone.png') });
  await page.screenshot({ path: join(SHOTS, 'phone-full.png'), fullPage: true });

  const leaked = consoleLines.filter((line) => line.includes(TOKEN));
  if (leaked.length) problems.push(`the token appeared in ${leaked.length} console line(s)`);
  say('done', {
    badToken, board, boardStatus, allLevels, southSites, tokenInUrl: urlAfterSignIn.includes(TOKEN), alert, rowAfterAlert, created,
    rejected, clientSide, phone, problems,
  });
} catch (error) {
  const first = String(error.message).split('\n')[0];
  console.error(`e2e failed at ${step}: ${TOKEN ? first.replaceAll(TOKEN, '<token>') : first}`); // no token
  await page?.screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
}
