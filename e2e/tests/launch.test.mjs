// The Launch page in a real browser: a production launch with two seats and three users
// shows the cap, the waitlist and the feedback; raising the limit and switching maintenance
// on from the page change what apps are answered. The feedback widget, embedded in a page of
// another origin, posts feedback through CORS with an ingest key.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, watchProblems, withPage } from '../harness.mjs';

let server;
let browser;
let ingest;

const api = (method, path, body, token) => apiCall(server, method, path, body, token);

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const key = await api('POST', '/api/keys', { name: 'e2e ingest', scope: 'ingest' });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  ingest = key.body.token;
  const init = await api('POST', '/api/launch/initialize', { environment: 'production', user_limit: 2 });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  for (const user of ['ann', 'bob', 'cyd']) {
    const ask = await api('GET', `/api/launch/user-limit?user_id=${user}`, undefined, ingest);
    assert.equal(ask.status, 200);
  }
  const fb = await api('POST', '/api/launch/feedback',
    { user_id: 'ann', rating: 5, category: 'ux', message: 'Love the <i>new</i> checkout', request: 'Dark mode' }, ingest);
  assert.equal(fb.status, 201, JSON.stringify(fb.body));
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

const login = (page, next) => signIn(page, server, next);

describe('launch page', () => {
  test('shows the cap, waitlist and feedback, and steers the launch', () =>
    withPage(browser, server, 'launch page', async ({ page }) => {
      const problems = watchProblems(page);
      await login(page, '/launch');
      assert.equal(await page.locator('h1').textContent(), 'Launch');
      assert.match(await page.locator('#launch-seats').textContent(), /2 of 2 seats taken/);
      assert.equal(await page.locator('#launch-waitlist tbody tr').count(), 1);
      assert.match(await page.locator('#launch-waitlist').textContent(), /cyd/);
      assert.ok(await page.locator('#launch-readiness tbody tr').count() >= 8, 'every readiness check is listed');
      assert.match(await page.locator('#launch-feedback').textContent(), /Love the <i>new<\/i> checkout/,
        'feedback is shown as text, not markup');
      assert.equal(await page.locator('#launch-feedback i').count(), 0);

      await page.fill('#launch-limit input[name=user_limit]', '3');
      await page.fill('#launch-limit input[name=reason]', 'one more seat');
      await Promise.all([page.waitForLoadState('load'), page.click('#launch-limit button[type=submit]')]);
      await page.locator('p.flash.ok').waitFor();
      assert.match(await page.locator('p.flash.ok').textContent(), /1 admitted from the waitlist/);
      assert.match(await page.locator('#launch-seats').textContent(), /3 of 3 seats taken/);
      const cyd = await api('GET', '/api/launch/user-limit?user_id=cyd', undefined, ingest);
      assert.equal(cyd.body.allowed, true);

      await page.fill('#launch-maintenance input[name=message]', 'Back at 14:00 UTC');
      await Promise.all([page.waitForLoadState('load'), page.click('#launch-maintenance button[type=submit]')]);
      await page.locator('#launch-maintenance-on').waitFor();
      const status = await api('GET', '/api/launch/status', undefined, ingest);
      assert.equal(status.body.maintenance, true);
      assert.equal(status.body.message, 'Back at 14:00 UTC');

      // Schedule a window with notices: listed with its lead time.
      await page.fill('#launch-schedule input[name=starts_at]', '2030-01-01T02:00');
      await page.fill('#launch-schedule input[name=ends_at]', '2030-01-01T03:00');
      await page.fill('#launch-schedule input[name=notify_before_minutes]', '60');
      await Promise.all([page.waitForLoadState('load'), page.click('#launch-schedule button[type=submit]')]);
      await page.locator('p.flash.ok').waitFor();
      assert.match(await page.locator('#launch-windows').textContent(), /60 min ahead, at start and end/);

      // The report downloads as Markdown with the session.
      const href = await page.locator('#launch-report').getAttribute('href');
      const report = await page.evaluate(async (url) => {
        const r = await fetch(url);
        return { type: r.headers.get('content-type'), text: await r.text() };
      }, href);
      assert.match(report.type, /^text\/markdown/);
      assert.match(report.text, /^# Launch report/);
      assert.match(report.text, /\| Dark mode \| 1 \|/, 'the most requested feature is in it');
      assert.deepEqual(problems, [], 'no console errors');
    }));
});

// A customer's page on its own origin that embeds the widget.
function hostPage(liftoffUrl, key) {
  const html = `<!doctype html><html><head><title>Shop</title>
<style>button { background: red !important; }</style></head>
<body><h1>Shop</h1>
<script src="${liftoffUrl}/widget/feedback.js" data-key="${key}" data-user="widget-user" defer></script>
</body></html>`;
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('feedback widget', () => {
  test('posts rated feedback from another origin', async () => {
    const shop = await hostPage(server.url, ingest);
    try {
      await withPage(browser, server, 'feedback widget', async ({ page }) => {
        const problems = watchProblems(page);
        await page.goto(`http://localhost:${shop.address().port}/shop/cart`);
        await page.locator('#liftoff-feedback-button').click();
        await page.locator('#liftoff-feedback-panel').waitFor();
        // Sending without a rating is caught in the page.
        await page.locator('#liftoff-feedback-send').click();
        assert.match(await page.locator('#liftoff-feedback-status').textContent(), /rating/);
        await page.locator('#liftoff-feedback-star-4').click();
        await page.locator('#liftoff-feedback-category').selectOption('feature');
        await page.locator('#liftoff-feedback-request').fill('Wishlist');
        await page.locator('#liftoff-feedback-message').fill('Let me save items for later');
        await page.locator('#liftoff-feedback-send').click();
        await page.locator('#liftoff-feedback-status.ok').waitFor();
        assert.deepEqual(problems, [], 'no console errors and no refused requests');
      });
      const list = await api('GET', '/api/launch/feedback?category=feature');
      assert.equal(list.status, 200);
      const item = list.body.find((f) => f.user_id === 'widget-user');
      assert.ok(item, JSON.stringify(list.body));
      assert.equal(item.rating, 4);
      assert.equal(item.request, 'Wishlist');
      assert.equal(item.message, 'Let me save items for later');
      assert.equal(item.page, '/shop/cart');
    } finally {
      shop.close();
    }
  });
});
