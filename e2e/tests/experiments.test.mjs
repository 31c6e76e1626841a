// The Experiments pages in a real browser: an experiment on a flag with two variants, 300
// users evaluated server-side and purchases from a subset, read from the list and the
// experiment's page (users per variant, the decision, the interval chart), then stopped with
// the winner shipped from the page's form.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiCall, launchBrowser, signIn, startLiftoff, watchProblems, withPage } from '../harness.mjs';

const USERS = 300;
const FLAG = 'checkout-v2';
const KEY = 'checkout-test';

let server;
let browser;
let ingest;
/** Users per variant as the flag assigned them. */
const given = { control: 0, treatment: 0 };

const api = (method, path, body, token) => apiCall(server, method, path, body, token);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls the results until `ready(results)`: exposures are written by a job every second. */
async function resultsWhen(ready, what) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await api('GET', `/api/experiments/${KEY}/results`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (ready(r.body)) return r.body;
    if (Date.now() > deadline) assert.fail(`${what}; last results: ${JSON.stringify(r.body)}`);
    await sleep(250);
  }
}

before(async () => {
  server = await startLiftoff();
  browser = await launchBrowser();
  const key = await api('POST', '/api/keys', { name: 'e2e ingest', scope: 'ingest' });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  ingest = key.body.token;
  const flag = await api('POST', '/api/feature-flags', {
    flag_id: FLAG,
    variants: [{ name: 'control', weight: 50 }, { name: 'treatment', weight: 50 }],
  });
  assert.equal(flag.status, 201, JSON.stringify(flag.body));
  const exp = await api('POST', '/api/experiments', {
    key: KEY,
    flag_id: FLAG,
    name: 'New checkout',
    hypothesis: 'The <em>new</em> checkout sells more',
    metrics: { primary: { kind: 'conversion', event: 'purchase' } },
  });
  assert.equal(exp.status, 201, JSON.stringify(exp.body));

  // Treatment converts at 40 %, control at 10 %: far enough apart for 150 users each.
  const purchases = [];
  for (let start = 0; start < USERS; start += 25) {
    const batch = [];
    for (let i = start; i < Math.min(start + 25, USERS); i++) {
      const user = `user-${i}`;
      batch.push(
        api('POST', `/api/feature-flags/${FLAG}/check`, { user_id: user }, ingest).then((res) => {
          assert.equal(res.status, 200, JSON.stringify(res.body));
          const variant = res.body.variant;
          given[variant] += 1;
          if (i % 10 < (variant === 'treatment' ? 4 : 1)) {
            purchases.push({ event: 'purchase', user_id: user, properties: { amount: 20 } });
          }
        }),
      );
    }
    await Promise.all(batch);
  }
  assert.equal(given.control + given.treatment, USERS, JSON.stringify(given));
  await resultsWhen(
    (r) => r.variants.reduce((n, v) => n + v.users, 0) === USERS,
    'every exposure is written',
  );
  const sent = await api('POST', '/api/ingest/events', purchases, ingest);
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  await resultsWhen((r) => r.decision.status === 'ship', 'the purchases decide the experiment');
});

after(async () => {
  await browser?.close();
  if (server) assert.equal((await server.stop()).code, 0);
});

describe('experiments pages', () => {
  test('list, detail with users and decision, stop and ship', () =>
    withPage(browser, server, 'experiments pages', async ({ page }) => {
      const problems = watchProblems(page);
      await signIn(page, server, '/experiments');
      assert.equal(await page.locator('h1').textContent(), 'Experiments');
      const row = page.locator(`#experiments tr[data-experiment="${KEY}"]`);
      assert.match(await row.textContent(), /New checkout/);
      assert.match(await row.textContent(), /conversion:purchase/);
      assert.match(await row.textContent(), /running/);
      assert.match(await row.textContent(), /Ship treatment/);
      assert.equal(await page.locator('#new-experiment').count(), 1, 'admins get the form');
      assert.equal(
        await page.locator(`#new-experiment select[name=flag_id] option[value="${FLAG}"]`).count(),
        1,
        'flags with variants are offered',
      );

      await Promise.all([page.waitForURL(new RegExp(`/experiments/${KEY}$`)), row.locator('a', { hasText: KEY }).click()]);
      assert.equal(await page.locator('h1').textContent(), 'New checkout');
      assert.equal(await page.locator('#experiment-hypothesis').textContent(), 'The <em>new</em> checkout sells more',
        'the hypothesis is shown as text, not markup');
      for (const variant of ['control', 'treatment']) {
        const users = await page.locator(`#experiment-variants tr[data-variant="${variant}"] td.users`).textContent();
        assert.equal(Number(users), given[variant], variant);
      }
      assert.equal(await page.locator('#srm-banner').count(), 0, 'an even split raises no sample-ratio warning');
      const decision = page.locator('#experiment-decision');
      assert.equal((await decision.locator('.verdict').textContent()).trim(), 'Ship treatment');
      assert.match(await decision.locator('.why').textContent(), /`treatment` beats `control` on conversion:purchase/);
      const metric = page.locator('table.experiment-metric[data-metric="conversion:purchase"]');
      assert.match(await metric.locator('tr[data-variant="treatment"]').textContent(), /better/);
      // The cumulative uplift: one estimate and its two bounds for the treatment, drawn.
      await page.locator('#experiment-timeline .uplot canvas').waitFor();
      const timeline = JSON.parse(await page.locator('#uplift-chart').getAttribute('data-chart'));
      assert.deepEqual(timeline.series,
        ['treatment uplift %', 'treatment interval low', 'treatment interval high']);
      assert.equal(timeline.data[0].length, 24, 'a point per moment');
      assert.ok(timeline.data[1].at(-1) > 0, `the last estimate is the uplift: ${timeline.data[1]}`);
      assert.equal(await page.locator('.ci-chart svg g.ci-better[data-variant="treatment"] rect.ci-bar').count(), 1,
        'the interval bar is drawn, coloured as better');

      page.once('dialog', (d) => d.accept());
      await page.fill('#experiment-stop input[name=reason]', 'treatment wins');
      await page.selectOption('#experiment-stop select[name=ship_variant]', 'treatment');
      await Promise.all([page.waitForLoadState('load'), page.click('#experiment-stop button[type=submit]')]);
      await page.locator('#experiment-stopped').waitFor();
      assert.match(page.url(), new RegExp(`/experiments/${KEY}$`));
      assert.match(await page.locator('#experiment-summary').textContent(), /stopped/);
      assert.match(await page.locator('#experiment-stopped').textContent(), /treatment wins · shipped treatment to everyone/);
      assert.equal(await page.locator('#experiment-stop').count(), 0, 'a stopped experiment has no stop form');

      const view = await api('GET', `/api/experiments/${KEY}`);
      assert.equal(view.body.status, 'stopped');
      assert.equal(view.body.stopped.shipped_variant, 'treatment');
      const flag = await api('GET', `/api/feature-flags/${FLAG}`);
      assert.deepEqual(flag.body.variants.map((v) => v.name), ['treatment'], 'everyone gets the shipped variant');

      await page.goto(`${server.url}/experiments`);
      assert.match(await page.locator(`#experiments tr[data-experiment="${KEY}"]`).textContent(), /stopped/);
      assert.deepEqual(problems, [], 'no console errors and no refused requests');
    }));
});
