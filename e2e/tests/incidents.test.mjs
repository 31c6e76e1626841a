// Alerts, uptime and incidents in a real browser: the default alert rules are listed, a
// monitor added through the API shows on the uptime page, and an incident opened from the
// dashboard takes an update and a postmortem through its forms, which survive a reload.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, withPage } from '../harness.mjs';

let server;
let browser;

const api = (method, path, body) => apiCall(server, method, path, body);

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const monitor = await api('POST', '/api/uptime/monitors', {
    name: 'Liftoff health', url: `${server.url}/healthz`, interval_seconds: 60, timeout_seconds: 5,
  });
  assert.equal(monitor.status, 201, JSON.stringify(monitor.body));
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

function watch(page) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: .*404/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  // The browser asks for /favicon.ico by itself; Liftoff has none.
  page.on('response', (r) => {
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`);
  });
  return problems;
}

const login = (page, next) => signIn(page, server, next);

describe('alerts, uptime and incidents pages', () => {
  test('alert rules and the uptime monitor are shown', () =>
    withPage(browser, server, 'alerts and uptime pages', async ({ page }) => {
      const problems = watch(page);
      await login(page, '/alerts');
      assert.equal(await page.locator('h1').textContent(), 'Alerts');
      const rules = await page.locator('table').filter({ hasText: 'Metric' }).locator('tbody tr').count();
      assert.ok(rules >= 5, `the launch playbook's default rules are listed (${rules})`);
      await page.goto(`${server.url}/uptime`);
      assert.match(await page.locator('main').textContent(), /Liftoff health/);
      assert.deepEqual(problems, [], 'no console errors');
    }));

  test('an incident opened from the dashboard takes updates and a postmortem', () =>
    withPage(browser, server, 'incident forms', async ({ page }) => {
      const problems = watch(page);
      await login(page, '/incidents');
      await page.fill('form[action="/incidents"] input[name=title]', 'Checkout <b>errors</b> after deploy');
      await page.selectOption('form[action="/incidents"] select[name=severity]', 'critical');
      await Promise.all([
        page.waitForURL(/\/incidents\/INC-\d{4}-\d{3}$/),
        page.click('form[action="/incidents"] button[type=submit]'),
      ]);
      const url = page.url();
      const id = url.split('/').pop();
      assert.match(await page.locator('main').textContent(), /Checkout <b>errors<\/b> after deploy/,
        'the title is shown as text, not markup');
      await page.fill(`form[action="/incidents/${id}/timeline"] input[name=message]`, 'Rolled back to the previous build');
      await Promise.all([
        page.waitForLoadState('load'),
        page.click(`form[action="/incidents/${id}/timeline"] button[type=submit]`),
      ]);
      await page.goto(url);
      assert.match(await page.locator('main').textContent(), /Rolled back to the previous build/);
      await page.fill('#root_cause', 'A config flag shipped enabled');
      await page.fill('#what_went_well', 'The error-rate alert fired within a minute');
      await Promise.all([page.waitForLoadState('load'), page.click('form#postmortem button[type=submit]')]);
      await page.goto(url);
      assert.equal(await page.inputValue('#root_cause'), 'A config flag shipped enabled');
      assert.equal(await page.inputValue('#what_went_well'), 'The error-rate alert fired within a minute');
      const stored = await api('GET', `/api/incidents/${id}`);
      assert.equal(stored.status, 200);
      assert.equal(JSON.stringify(stored.body).includes('A config flag shipped enabled'), true);
      assert.deepEqual(problems, [], 'no console errors');
    }));
});
