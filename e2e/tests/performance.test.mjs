// The performance page in a real browser: numbers ingested through the API show up as tiles,
// tables and drawn charts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, withPage } from '../harness.mjs';

let server;
let browser;

const api = (method, path, body, token) => apiCall(server, method, path, body, token);

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const key = await api('POST', '/api/keys', { name: 'e2e ingest', scope: 'ingest' });
  const records = [];
  for (let i = 0; i < 300; i++) {
    records.push({ service: 'shop', method: 'GET', route: '/items/{id}', status: 200, duration_ms: 20 + (i % 50) });
    if (i % 3 === 0) records.push({ service: 'shop', method: 'POST', route: '/checkout', status: i % 30 === 0 ? 502 : 201, duration_ms: 800 + i });
  }
  // A second app service without errors, for the service selector.
  for (let i = 0; i < 20; i++) {
    records.push({ service: 'billing', method: 'GET', route: '/invoices', status: 200, duration_ms: 15 });
  }
  const res = await api('POST', '/api/ingest/requests', records, key.body.token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  // A release of the shop, marked on the charts and listed with its verification.
  const deploy = await api('POST', '/api/deployments',
    { service: 'shop', version: 'v2.4.0', commit: '0123456789abcdef', description: 'checkout <b>rework</b>' },
    key.body.token);
  assert.equal(deploy.status, 201, JSON.stringify(deploy.body));
  // Five days of an instance whose disk fills 3 points a day (buffered readings, then a live
  // one): the instances table calls it out.
  const now = Date.now();
  for (let hour = 5 * 24; hour >= 0; hour -= 4) {
    const day = (5 * 24 - hour) / 24;
    const reading = {
      service: 'shop', instance: 'web-1',
      cpu: { percent: 30, count: 2 },
      memory: { total_mb: 2048, used_mb: 1024, percent: 50 },
      disk: { total_gb: 100, used_gb: 60 + 3 * day, percent: 60 + 3 * day },
      process_rss_mb: 80,
    };
    if (hour > 0) reading.timestamp = new Date(now - hour * 3_600_000).toISOString();
    const sent = await api('POST', '/api/ingest/system', reading, key.body.token);
    assert.equal(sent.status, 204, JSON.stringify(sent.body));
  }
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

describe('performance page', () => {
  test('shows ingested traffic as tiles, charts and tables', () =>
    withPage(browser, server, 'performance page', async ({ page }) => {
      await signIn(page, server, '/performance');
      assert.equal(await page.locator('h1').textContent(), 'Performance');
      // Liftoff's own requests (service `liftoff`) are never counted with the apps.
      const total = Number(await page.locator('#perf-requests').textContent());
      assert.equal(total, 420, `requests tile shows ${total}`);
      await page.locator('#latency-chart .uplot').waitFor();
      assert.equal(await page.locator('.chart-target .uplot canvas').count(), 3, 'three charts drawn');
      const busiest = await page.locator('#busiest tbody tr').first().textContent();
      assert.match(busiest, /GET \/items\/\{id\}/);
      assert.match(await page.locator('#slowest tbody tr').first().textContent(), /POST \/checkout/);
      assert.match(await page.locator('#failing').textContent(), /\/checkout/);
      const codes = await page.locator('#status-codes tbody tr td:first-child').allTextContents();
      for (const c of ['200', '201', '502']) assert.ok(codes.includes(c), `status ${c} listed: ${codes}`);
      // 300 requests at 20–69 ms and 100 at 800–1097 ms: the histogram's rows add up and the
      // slow ones sit in the (500 ms, 1 s] and (1 s, 2.5 s] rows.
      const rows = await page.locator('#latency-histogram tbody tr').evaluateAll((trs) =>
        trs.map((tr) => [tr.children[0].textContent, Number(tr.children[1].textContent)]));
      const counted = rows.reduce((n, [, c]) => n + c, 0);
      assert.ok(counted >= 400, `histogram counts ${counted}`);
      const slow = rows.filter(([label]) => /^500\.0 ms – 1\.00 s$|^1\.00 s – 2\.50 s$/.test(label))
        .reduce((n, [, c]) => n + c, 0);
      assert.equal(slow, 100, `slow rows: ${JSON.stringify(rows)}`);
      // The deployment: a marker on each chart and a row with its verification, which waits
      // for the 30 minutes after the release.
      const spec = JSON.parse(await page.locator('#latency-chart').getAttribute('data-chart'));
      assert.deepEqual(spec.markers.map((m) => m.label), ['shop v2.4.0']);
      const row = page.locator('#deployments tbody tr');
      assert.equal(await row.count(), 1);
      assert.match(await row.textContent(), /shop\s*v2\.4\.0.*0123456789ab/s);
      assert.match(await row.locator('td.verification').textContent(), /verifying/);
      // The instance's 7-day trend: disk rising about 21 points a week, full within a month.
      const trend = page.locator('#instances tbody tr', { hasText: 'web-1' }).locator('td.trend .badge-crit');
      assert.match(await trend.textContent(), /^disk ↑ \+2\d\.\d pts\/week, full in \d+ days; CPU, memory stable$/);
    }));

  test('the service selector shows one service at a time and keeps it across windows', () =>
    withPage(browser, server, 'performance service selector', async ({ page }) => {
      await signIn(page, server, '/performance');
      assert.equal(await page.locator('#service').inputValue(), '', 'all app services by default');
      const options = await page.locator('#service option').allTextContents();
      assert.deepEqual(options, ['All app services', 'billing', 'shop', "Liftoff's own API traffic"]);

      await Promise.all([page.waitForURL(/service=billing/), page.selectOption('#service', 'billing')]);
      assert.equal(await page.locator('#perf-requests').textContent(), '20');
      assert.equal((await page.locator('#failing-empty').textContent()).trim(), 'No errors in this window.');
      assert.match(await page.locator('#busiest tbody tr').first().textContent(), /billing.*GET \/invoices/);

      // Changing the window keeps the service.
      await Promise.all([page.waitForURL(/window=4h/), page.selectOption('#window', '4h')]);
      assert.match(page.url(), /service=billing/);
      assert.equal(await page.locator('#service').inputValue(), 'billing');

      await Promise.all([page.waitForURL(/service=liftoff/), page.selectOption('#service', 'liftoff')]);
      assert.equal(await page.locator('#service').inputValue(), 'liftoff');
      const shown = await page.locator('#main').textContent();
      assert.ok(!/billing|\/invoices|\/checkout/.test(await page.locator('#busiest, #busiest-empty').first().textContent()),
        `only Liftoff's own endpoints: ${shown.slice(0, 400)}`);
    }));
});
