// The Reports page and the HTML report in a real browser: 1,000 known requests and an
// incident, the weekly report previewed (its sections in order, its figures), the HTML report
// opened alone with no console error and no request beyond itself, a PDF downloaded, a report
// kept in the archive and a weekly schedule created from the page.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, watchProblems, withPage } from '../harness.mjs';

const SECTIONS = [
  'Executive summary',
  'Week over week',
  'Incidents',
  'Top endpoints by traffic',
  'Errors by status code',
  'Slowest endpoints',
  'Resources',
  'Recommendations',
];

let server;
let browser;
let channel;

const api = (method, path, body, token) => apiCall(server, method, path, body, token);

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const records = [];
  for (let i = 0; i < 1000; i++) {
    records.push({
      service: 'shop',
      method: i < 600 ? 'GET' : 'POST',
      route: i < 600 ? '/users' : '/orders',
      status: i % 50 === 0 ? 503 : 200,
      duration_ms: 40 + (i % 30),
    });
  }
  const sent = await api('POST', '/api/ingest/requests', records);
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const inc = await api('POST', '/api/incidents', {
    title: 'Orders <b>failing</b>',
    severity: 'major',
    started_at: new Date(Date.now() - 3_600_000).toISOString(),
  });
  assert.equal(inc.status, 201, JSON.stringify(inc.body));
  const ch = await api('POST', '/api/notifications/channels', {
    name: 'team hook',
    config: { kind: 'webhook', url: 'http://127.0.0.1:9/hook' },
  });
  assert.equal(ch.status, 201, JSON.stringify(ch.body));
  channel = ch.body;
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

describe('reports', () => {
  test('the HTML report renders alone with no console error and no outside request', () =>
    withPage(browser, server, 'html report alone', async ({ context, page: signedIn }) => {
      await signIn(signedIn, server, '/reports');
      // A page of its own, so nothing the Reports page still loads is counted.
      const page = await context.newPage();
      const requests = [];
      const problems = watchProblems(page);
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`${server.url}/reports/preview?kind=weekly`);
      assert.equal(await page.locator('h1').textContent(), 'Weekly health report');
      const headings = await page.locator('h2').allTextContents();
      assert.deepEqual(headings, SECTIONS, 'seed 003 sections in order');
      assert.match(await page.locator('table').first().textContent(), /1,000/);
      assert.equal(await page.locator('script').count(), 0);
      assert.ok(await page.locator('svg').count() >= 0);
      assert.match(await page.content(), /Orders &lt;b&gt;failing&lt;\/b&gt;/, 'titles are text, not markup');
      assert.deepEqual(requests, [`${server.url}/reports/preview?kind=weekly`], 'nothing fetched but the page');
      assert.deepEqual(problems, [], 'no console errors');
    }));

  test('preview, download, keep and schedule from the Reports page', () =>
    withPage(browser, server, 'reports page', async ({ page }) => {
      const problems = watchProblems(page);
      await signIn(page, server, '/reports');
      assert.equal(await page.locator('h1').textContent(), 'Reports');
      const frame = page.frameLocator('#report-preview');
      assert.equal(await frame.locator('h1').textContent(), 'Weekly health report');
      assert.match(await frame.locator('body').textContent(), /Total requests\s*1,000/);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('.downloads a', { hasText: 'PDF' }).click(),
      ]);
      assert.match(download.suggestedFilename(), /^weekly-.*\.pdf$/);
      const pdf = await readFile(await download.path());
      assert.equal(pdf.subarray(0, 8).toString(), '%PDF-1.4');

      await Promise.all([
        page.waitForLoadState('load'),
        page.locator('form[action="/reports/archive"] button').click(),
      ]);
      assert.match(await page.locator('.flash.ok').textContent(), /Kept “Weekly health report” in the archive/);
      const row = page.locator('#archive tbody tr').first();
      assert.match(await row.textContent(), /Weekly health report/);
      const md = await page.request.get(`${server.url}${await row.locator('a', { hasText: 'md' }).getAttribute('href')}`);
      assert.equal(md.status(), 200);
      assert.match(await md.text(), /^# Weekly health report/);

      await page.selectOption('#new-schedule select[name=day]', '1');
      await page.fill('#new-schedule input[name=hour]', '8');
      await page.fill('#new-schedule input[name=timezone]', 'Europe/Berlin');
      await page.check(`#new-schedule input[name=channel_${channel.id}]`);
      await Promise.all([page.waitForURL(/\/reports#schedules$/), page.click('#new-schedule button[type=submit]')]);
      const schedule = page.locator('#schedules tbody tr').first();
      assert.match(await schedule.textContent(), /0 8 \* \* 1/);
      assert.match(await schedule.textContent(), /Europe\/Berlin/);
      assert.match(await schedule.textContent(), /team hook/);
      const listed = await api('GET', '/api/reports/schedules');
      assert.equal(listed.body.length, 1);
      assert.deepEqual(listed.body[0].channels, [channel.id]);

      // A bad time zone is refused with the reason, not stored.
      await page.fill('#new-schedule input[name=timezone]', 'Mars/Olympus');
      await page.check(`#new-schedule input[name=channel_${channel.id}]`);
      await page.click('#new-schedule button[type=submit]');
      assert.match(await page.locator('.flash.error').textContent(), /unknown time zone `Mars\/Olympus`/);
      assert.equal((await api('GET', '/api/reports/schedules')).body.length, 1);
      // The refused form's answer is the one expected problem.
      const refused = (p) => p.startsWith('422 ') || p.includes('status of 422');
      problems.splice(0, problems.length, ...problems.filter((p) => !refused(p)));
      assert.deepEqual(problems, [], 'no console errors and no refused requests');
    }));
});
