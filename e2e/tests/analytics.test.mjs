// The analytics page in a real browser: product events ingested through the API show up as
// tiles, a drawn DAU chart and tables, and the funnel builder's form answers with bars.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, withPage } from '../harness.mjs';

let server;
let browser;

const api = (method, path, body, token) => apiCall(server, method, path, body, token);

const DAY = 86_400_000;

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const key = await api('POST', '/api/keys', { name: 'e2e ingest', scope: 'ingest' });
  const now = Date.now();
  const today = Math.floor(now / DAY) * DAY;
  // Seconds apart in the last minutes, never before today (UTC) began.
  const at = (secsAgo) => Math.max(now - secsAgo * 1000, today);
  const journeys = [
    ['u1', ['signup', 'search', 'view_item', 'purchase']],
    ['u2', ['signup', 'search', 'view_item']],
    ['u3', ['signup', 'search', 'view_item']],
    ['u4', ['signup', 'search']],
    ['u5', ['signup', '<img src=x onerror=alert(1)>']],
  ];
  const events = [];
  for (const [user, steps] of journeys) {
    steps.forEach((event, i) =>
      events.push({ user_id: user, event, timestamp: at(600 - 20 * i), session_id: `s-${user}`, properties: { plan: user === 'u1' ? 'pro' : 'free' } }));
  }
  events.push({ user_id: 'u2', event: '$exception', timestamp: at(30), properties: { $exception_type: 'TypeError', $exception_message: 'x is undefined' } });
  // u6 was first seen three days ago and came back today.
  events.push({ user_id: 'u6', event: 'page_view', timestamp: today - 3 * DAY + 3_600_000 });
  events.push({ user_id: 'u6', event: 'page_view', timestamp: at(10) });
  const res = await api('POST', '/api/ingest/events', events, key.body.token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

describe('analytics page', () => {
  test('shows tiles, charts, tables and answers the funnel form', () =>
    withPage(browser, server, 'analytics page', async ({ page }) => {
      const problems = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && !/Failed to load resource: .*404/.test(m.text())) problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      // The browser asks for /favicon.ico by itself; Liftoff has none (a 404 it logs as an error).
      page.on('response', (r) => {
        if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`);
      });
      page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });

      await signIn(page, server, '/analytics');
      assert.equal(await page.locator('h1').textContent(), 'Analytics');
      // The engine refreshes its table every two seconds at most.
      for (let i = 0; i < 20 && (await page.locator('#analytics-empty').count()) > 0; i++) {
        await page.waitForTimeout(250);
        await page.reload();
      }
      assert.equal(await page.locator('#au-dau').textContent(), '6');
      assert.equal(await page.locator('#au-mau').textContent(), '6');
      assert.equal(await page.locator('#au-now').textContent(), '6');
      assert.equal(await page.locator('#au-errors').textContent(), '1');
      assert.equal(await page.locator('#au-sessions').textContent(), '6');

      await page.locator('#dau-chart .uplot canvas').waitFor();
      await page.locator('#new-returning-chart .uplot canvas').waitFor();
      const drawn = await page.locator('#dau-chart canvas').evaluate((c) => c.width > 0 && c.height > 0);
      assert.ok(drawn, 'the DAU chart has a canvas with a size');

      const top = await page.locator('#top-events tbody tr td:first-child').allTextContents();
      assert.equal(top[0], 'signup', `top events: ${top}`);
      assert.ok(top.includes('<img src=x onerror=alert(1)>'), 'the odd name is shown as text');
      assert.equal(await page.locator('#top-events img').count(), 0, 'and not as markup');
      assert.ok((await page.locator('#retention tbody tr').count()) >= 2, 'two cohorts');
      assert.ok((await page.locator('#retention td.heat-10').count()) >= 1, 'day 0 is 100 %');
      assert.equal((await page.locator('#retention td.heat-10').first().textContent()), '100.0\u00a0%');
      assert.match(await page.locator('#recent-errors').textContent(), /x is undefined/);
      assert.ok((await page.locator('#transitions tbody tr').count()) >= 1);
      assert.ok((await page.locator('#milestones tbody tr').count()) >= 1);

      // The default funnel is there before any query.
      const users = () => page.locator('#funnel-steps tbody td.users').allTextContents();
      assert.deepEqual(await users(), ['5', '4', '3', '1']);
      // The API answers fractions (0.8); every page shows percent in one format.
      const conversion = await page.locator('#funnel-steps tbody td:nth-child(5)').allTextContents();
      assert.deepEqual(conversion, ['—', '80.0\u00a0%', '75.0\u00a0%', '33.3\u00a0%']);
      const dropoff = await page.locator('#funnel-steps tbody td:nth-child(6)').allTextContents();
      assert.deepEqual(dropoff, ['—', '20.0\u00a0%', '25.0\u00a0%', '66.7\u00a0%']);

      // Build another: signup → view_item → purchase, broken down by plan.
      const steps = page.locator('#funnel-form input[name=step]');
      await steps.nth(0).fill('signup');
      await steps.nth(1).fill('view_item');
      await steps.nth(2).fill('purchase');
      await steps.nth(3).fill('');
      await page.fill('#funnel-form input[name=conversion_window_days]', '7');
      await page.fill('#funnel-form input[name=breakdown]', 'plan');
      await Promise.all([page.waitForURL(/step=view_item/), page.click('#funnel-form button[type=submit]')]);
      assert.deepEqual(await users(), ['5', '3', '1']);
      const widths = await page.locator('#funnel-steps tbody .bar .fill').evaluateAll((els) =>
        els.map((e) => Math.round(e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width * 100)));
      assert.deepEqual(widths, [100, 60, 20], 'bars have the funnel\'s shape');
      assert.match(await page.locator('#funnel-overall').textContent(), /20\.0\u00a0%/);
      const breakdown = await page.locator('#funnel-breakdown tbody tr').allTextContents();
      assert.equal(breakdown.length, 2, `breakdown rows: ${breakdown}`);

      // One step is not a funnel: a message, not an error page.
      await steps.nth(1).fill('');
      await steps.nth(2).fill('');
      await page.click('#funnel-form button[type=submit]');
      await page.locator('#funnel-error').waitFor();
      assert.match(await page.locator('#funnel-error').textContent(), /2 to 10 steps/);
      assert.equal(await page.locator('h1').textContent(), 'Analytics');

      assert.deepEqual(problems, [], 'no console errors');
    }));
});
