// Browser test: Debian's Chromium, headless, driven by playwright-core.
// A seller and a buyer in two browser contexts; the seller watches the ticket
// leave the listing live (Server-Sent Events, no reload) when the buyer
// reserves it, the buyer pays with the fake provider's test card, and a
// screenshot of every main page is saved as an artefact.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, uniqueEmail } from './lib/server.mjs';

const CHROMIUM = process.env.TBS_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.TBS_ARTIFACTS || join(process.cwd(), 'artifacts');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  chromium = null;
}
const skip = !chromium ? 'playwright-core is not installed (npm ci)'
  : !existsSync(CHROMIUM) ? `no browser at ${CHROMIUM}` : false;

let server;
let browser;
const pageErrors = [];

before(async () => {
  if (skip) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    const status = await server.stop();
    assert.deepEqual(status, { code: 0, signal: null }, `server exit\n${server.stderr}`);
  }
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // 4xx answers the test provokes on purpose are logged by Chromium as "Failed to load resource".
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) pageErrors.push(msg.text());
  });
  return page;
}

async function shot(page, name) {
  await page.waitForTimeout(250); // let transitions settle
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function signUp(page, email, screenshot) {
  await page.goto(`${server.base}/#/signup`);
  await page.getByTestId('email').fill(email);
  await page.getByTestId('password').fill('correct horse battery');
  if (screenshot) await shot(page, screenshot);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('account-email').filter({ hasText: email }).waitFor();
}

test('two browsers: sell, buy live, pay', { skip, timeout: 90000 }, async () => {
  const seller = await newPage();
  const buyer = await newPage();
  const sellerEmail = uniqueEmail('seller');
  const buyerEmail = uniqueEmail('buyer');

  // A visitor sees the empty market and the sign-in page.
  await seller.goto(`${server.base}/`);
  await seller.locator('.live.on').waitFor();
  await shot(seller, '01-browse-empty');
  await seller.goto(`${server.base}/#/signin`);
  await shot(seller, '02-signin');

  await signUp(seller, sellerEmail, '03-signup');
  await signUp(buyer, buyerEmail);

  // The seller lists a ticket at a price that float arithmetic would get wrong.
  await seller.goto(`${server.base}/#/sell`);
  await seller.getByTestId('title-input').fill('Coldplay — Wembley Stadium, Sat 14 June');
  await seller.getByTestId('price-input').fill('19.99');
  await shot(seller, '04-sell');
  await seller.getByTestId('sell-submit').click();
  await seller.getByTestId('my-ticket').first().waitFor();
  const ticketId = await seller.getByTestId('my-ticket').first().getAttribute('data-ticket-id');
  assert.match(await seller.getByTestId('my-tickets').innerText(), /\$19\.99/);
  await seller.goto(`${server.base}/#/sell`);
  await seller.getByTestId('title-input').fill('Glastonbury 2026 — weekend ticket');
  await seller.getByTestId('price-input').fill('335');
  await seller.getByTestId('sell-submit').click();
  await seller.getByTestId('my-ticket').nth(1).waitFor();
  await shot(seller, '05-my-tickets-selling');

  // Both see the ticket on the browse page; the seller stays there, watching.
  await seller.goto(`${server.base}/`);
  const sellerCard = seller.locator(`[data-testid="ticket-card"][data-ticket-id="${ticketId}"]`);
  await sellerCard.waitFor();
  await seller.evaluate(() => { window.__noReload = true; });
  await buyer.goto(`${server.base}/`);
  const buyerCard = buyer.locator(`[data-testid="ticket-card"][data-ticket-id="${ticketId}"]`);
  await buyerCard.waitFor();
  assert.equal(await buyerCard.getByTestId('ticket-price').innerText(), '$19.99');
  await shot(buyer, '06-browse');

  // The ticket's own page.
  await buyer.goto(`${server.base}/#/tickets/${ticketId}`);
  await buyer.getByTestId('ticket-title').waitFor();
  await shot(buyer, '07-ticket');

  // The buyer reserves it: checkout with a running countdown.
  await buyer.getByTestId('buy').click();
  await buyer.waitForURL(/#\/orders\/[0-9a-f-]{36}$/);
  await buyer.getByTestId('countdown').waitFor();
  const first = await buyer.getByTestId('countdown').innerText();
  assert.match(first, /^1[45]:\d\d$/, `a 15-minute lock shows as mm:ss, got ${first}`);
  await buyer.waitForTimeout(1300);
  assert.notEqual(await buyer.getByTestId('countdown').innerText(), first, 'the countdown runs');
  await shot(buyer, '08-checkout');

  // The seller's page drops the ticket by itself: no reload happened.
  await sellerCard.waitFor({ state: 'detached', timeout: 5000 });
  assert.equal(await seller.evaluate(() => window.__noReload), true, 'the seller page was not reloaded');

  // Pay with the fake provider's succeeding test card.
  await buyer.getByTestId('token').selectOption('tok_visa');
  await buyer.getByTestId('pay').click();
  await buyer.locator('[data-testid="checkout-state"][data-state="success"]').waitFor();
  await shot(buyer, '09-paid');

  // My orders, and the bought ticket among my tickets, not listed; relist it.
  await buyer.goto(`${server.base}/#/orders`);
  await buyer.locator('[data-testid="order-status"][data-status="complete"]').waitFor();
  await shot(buyer, '10-orders');
  await buyer.goto(`${server.base}/#/mine`);
  const owned = buyer.locator(`[data-testid="my-ticket"][data-ticket-id="${ticketId}"]`);
  await owned.getByText('Not listed').waitFor();
  await shot(buyer, '11-my-tickets-bought');
  await owned.getByTestId('relist').click();
  await owned.getByText('For sale').waitFor();

  // ...and it reappears on the seller's browse page, live again.
  await sellerCard.waitFor({ timeout: 5000 });
  assert.equal(await seller.evaluate(() => window.__noReload), true);

  // A declined card: the order is cancelled with the provider's message.
  const glasto = seller.locator('[data-testid="ticket-card"]', { hasText: 'Glastonbury' });
  const glastoId = await glasto.getAttribute('data-ticket-id');
  await buyer.goto(`${server.base}/#/tickets/${glastoId}`);
  await buyer.getByTestId('buy').click();
  await buyer.getByTestId('countdown').waitFor();
  await buyer.getByTestId('token').selectOption('tok_chargeDeclined');
  await buyer.getByTestId('pay').click();
  await buyer.locator('[data-testid="checkout-state"][data-state="danger"]').waitFor();
  await buyer.locator('.toast.error').waitFor();
  await shot(buyer, '12-declined');

  assert.deepEqual(pageErrors, [], 'no errors in the browser console');
});
