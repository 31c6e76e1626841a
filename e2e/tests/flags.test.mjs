// The flags page, driven through a real browser: turn a flag off (confirmed, with a reason),
// change its rollout, create one, and read its history. Each change is checked through the
// API too, so the test proves the server changed, not just the page.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, signIn, startLiftoff, withPage } from '../harness.mjs';

let server;
let browser;

async function api(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const created = await api('POST', '/api/feature-flags', {
    flag_id: 'new-checkout', strategy: 'percentage', percentage: 25, reason: 'launch',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
});

after(async () => {
  await browser?.close();
  if (server) {
    const res = await server.stop();
    assert.equal(res.code, 0, 'server exits 0 on SIGTERM');
  }
});

async function logIn(page) {
  await signIn(page, server, '/flags');
}

function browserTest(name, fn) {
  test(name, () => withPage(browser, server, name, fn));
}

describe('flags page', () => {
  browserTest('lists flags with status, strategy and rollout', async ({ page }) => {
    await logIn(page);
    assert.equal(await page.locator('h1').textContent(), 'Flags');
    const row = page.locator('tr[data-flag="new-checkout"]');
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('.status').textContent()).trim(), 'on');
    assert.match(await row.textContent(), /percentage · 25\.0\u00a0%/);
  });

  browserTest('turning a flag off asks for confirmation and a reason, and reaches the API', async ({ page }) => {
    await logIn(page);
    const row = page.locator('tr[data-flag="new-checkout"]');
    let asked = '';
    page.once('dialog', async (d) => {
      asked = d.message();
      await d.accept();
    });
    await row.locator('form.toggle input[name=reason]').fill('checkout errors spiking');
    await Promise.all([page.waitForLoadState('load'), row.locator('form.toggle button').click()]);
    await page.locator('.flash.ok').waitFor();
    assert.match(asked, /Turn new-checkout OFF/);
    assert.match(await page.locator('.flash.ok').textContent(), /new-checkout is now off/);
    assert.equal((await page.locator('tr[data-flag="new-checkout"] .status').textContent()).trim(), 'off');

    const flag = await api('GET', '/api/feature-flags/new-checkout');
    assert.equal(flag.body.enabled, false);
    const history = await api('GET', '/api/feature-flags/new-checkout/history');
    assert.equal(history.body[0].action, 'flag.disable');
    assert.equal(history.body[0].reason, 'checkout errors spiking');
    assert.equal(history.body[0].actor, 'user:admin');
  });

  browserTest('dismissing the confirmation changes nothing', async ({ page }) => {
    await logIn(page);
    const before = (await api('GET', '/api/feature-flags/new-checkout')).body.version;
    page.once('dialog', (d) => d.dismiss());
    const row = page.locator('tr[data-flag="new-checkout"]');
    await row.locator('form.toggle input[name=reason]').fill('oops');
    await row.locator('form.toggle button').click();
    await page.waitForTimeout(300);
    assert.equal((await api('GET', '/api/feature-flags/new-checkout')).body.version, before);
  });

  browserTest('editing the rollout percentage', async ({ page }) => {
    await logIn(page);
    const form = page.locator('tr[data-flag="new-checkout"] form.rollout');
    await form.locator('input[name=percentage]').fill('60');
    await form.locator('input[name=reason]').fill('ramp');
    await Promise.all([page.waitForLoadState('load'), form.locator('button').click()]);
    await page.locator('.flash.ok').waitFor();
    assert.equal((await api('GET', '/api/feature-flags/new-checkout')).body.percentage, 60);
  });

  browserTest('creating a flag and reading its history', async ({ page }) => {
    await logIn(page);
    const form = page.locator('form#new-flag');
    await form.locator('input[name=flag_id]').fill('dark-mode');
    await form.locator('select[name=strategy]').selectOption('all_users');
    await form.locator('input[name=reason]').fill('design review');
    await Promise.all([page.waitForLoadState('load'), form.locator('button').click()]);
    await page.locator('tr[data-flag="dark-mode"]').waitFor();
    assert.equal((await api('GET', '/api/feature-flags/dark-mode')).status, 200);

    await page.click('tr[data-flag="new-checkout"] a');
    await page.waitForURL(/\/flags\/new-checkout/);
    const reasons = await page.locator('#history tbody tr td:nth-child(4)').allTextContents();
    assert.deepEqual(reasons.slice(0, 2), ['ramp', 'checkout errors spiking']);
  });

  browserTest('a bad percentage is refused with a message', async ({ page }) => {
    await logIn(page);
    const status = await page.evaluate(async () => {
      const form = document.querySelector('tr[data-flag="new-checkout"] form.rollout');
      const data = new URLSearchParams(new FormData(form));
      data.set('percentage', '150');
      data.set('reason', 'x');
      const res = await fetch(form.action, { method: 'POST', body: data });
      return res.status;
    });
    assert.equal(status, 422);
    assert.equal((await api('GET', '/api/feature-flags/new-checkout')).body.percentage, 60);
  });
});
