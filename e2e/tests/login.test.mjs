// Dashboard login flow, driven through a real browser against a real server.
//
// One `liftoff serve` and one Chromium for the whole file; every test gets its
// own browser context (fresh cookie jar). On failure the test's screenshot and
// HTML land in e2e/test-results/ and the server log is printed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, startLiftoff, withPage } from '../harness.mjs';

const NAV_PATHS = [
  '/performance',
  '/analytics',
  '/flags',
  '/experiments',
  '/alerts',
  '/launch',
  '/reports',
];
const WINDOWS = ['15m', '1h', '4h', '24h', '7d'];
const SESSION_COOKIE = 'liftoff_session';

let server;
let browser;

before(async () => {
  server = await startLiftoff();
  try {
    browser = await launchBrowser();
  } catch (e) {
    await server.stop();
    throw e;
  }
});

after(async () => {
  await browser?.close();
  if (server) {
    const res = await server.stop();
    // A clean SIGTERM shutdown is part of the contract too.
    if (res.killed || res.code !== 0) {
      server.printLog('liftoff server log (unclean shutdown)');
    }
    assert.equal(res.killed, false, 'server needed SIGKILL: it ignored SIGTERM for 5 s');
    assert.equal(res.code, 0, `server exited with code=${res.code} signal=${res.signal} after SIGTERM`);
  }
});

/** test() that runs its body in a fresh browser context and dumps diagnostics on failure. */
function browserTest(name, fn) {
  test(name, () => withPage(browser, server, name, fn));
}

const pathOf = (u) => new URL(u).pathname;

/** Log in through the form; returns the POST /login response (the redirect). */
async function logIn(page, { username = server.username, password = server.password } = {}) {
  await page.goto(`${server.url}/login`);
  await page.fill('form#login input[name=username]', username);
  await page.fill('form#login input[name=password]', password);
  const [postResponse] = await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === 'POST' && pathOf(r.url()) === '/login',
    ),
    // The document that the POST (and any redirect after it) ends on.
    page.waitForEvent('framenavigated', (f) => f === page.mainFrame()),
    page.click('form#login button[type=submit]'),
  ]);
  await page.waitForLoadState('load');
  return postResponse;
}

/** GET / without following redirects, with the context's cookies. */
async function getRootNoFollow(context) {
  const res = await context.request.get(`${server.url}/`, { maxRedirects: 0 });
  return { status: res.status(), location: res.headers()['location'] };
}

function assertRedirectsToLogin({ status, location }, what) {
  assert.ok(status >= 300 && status < 400, `${what}: expected a redirect, got HTTP ${status}`);
  assert.ok(location, `${what}: redirect without a Location header`);
  assert.equal(
    pathOf(new URL(location, server.url).href),
    '/login',
    `${what}: redirected to ${location}, not /login`,
  );
}

async function sessionCookie(context) {
  const cookies = await context.cookies(server.url);
  return cookies.find((c) => c.name === SESSION_COOKIE);
}

describe('dashboard login', () => {
  browserTest('GET /login renders the login form', async ({ page }) => {
    const res = await page.goto(`${server.url}/login`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'] ?? '', /^text\/html/);

    const form = page.locator('form#login');
    assert.equal(await form.count(), 1, 'exactly one form#login');
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post');
    assert.equal(await form.getAttribute('action'), '/login');

    assert.equal(await form.locator('input[name=username]').count(), 1);
    const pw = form.locator('input[name=password]');
    assert.equal(await pw.count(), 1);
    assert.equal(await pw.getAttribute('type'), 'password', 'password input must be type=password');

    const csrf = form.locator('input[name=csrf]');
    assert.equal(await csrf.count(), 1);
    assert.equal(await csrf.getAttribute('type'), 'hidden');
    const csrfValue = await csrf.inputValue();
    assert.ok(csrfValue.length >= 16, `csrf token looks too short: ${JSON.stringify(csrfValue)}`);

    assert.equal(await form.locator('button[type=submit]').count(), 1);
  });

  browserTest('unauthenticated GET / redirects to /login', async ({ page, context }) => {
    assertRedirectsToLogin(await getRootNoFollow(context), 'GET / without a session');

    await page.goto(`${server.url}/`);
    assert.equal(pathOf(page.url()), '/login');
    assert.equal(await page.locator('form#login').count(), 1);
  });

  browserTest('wrong password shows an error and does not log in', async ({ page, context }) => {
    await logIn(page, { password: `${server.password}-wrong` });

    assert.equal(pathOf(page.url()), '/login');
    const flash = page.locator('.flash.error');
    await flash.first().waitFor({ state: 'visible', timeout: 5_000 });
    assert.match(await flash.first().innerText(), /Invalid username or password/);
    assert.equal(await page.locator('form#login').count(), 1, 'login form shown again');

    assertRedirectsToLogin(await getRootNoFollow(context), 'GET / after a failed login');
  });

  browserTest('unknown user gets the same error as a wrong password', async ({ page }) => {
    await logIn(page, { username: 'nobody', password: server.password });
    assert.equal(pathOf(page.url()), '/login');
    const flash = page.locator('.flash.error');
    await flash.first().waitFor({ state: 'visible', timeout: 5_000 });
    assert.match(await flash.first().innerText(), /Invalid username or password/);
  });

  browserTest('correct login lands on Overview with the sidebar and a safe cookie', async ({ page, context }) => {
    const post = await logIn(page);

    // The POST answers with a redirect to / ...
    const status = post.status();
    assert.ok([302, 303].includes(status), `POST /login answered ${status}, expected 302/303`);
    const location = await post.headerValue('location');
    assert.equal(pathOf(new URL(location ?? '', server.url).href), '/', `redirect to ${location}`);

    // ... which sets the session cookie with HttpOnly and an explicit SameSite=Lax.
    const setCookies = (await post.headersArray())
      .filter((h) => h.name.toLowerCase() === 'set-cookie')
      .map((h) => h.value)
      .filter((v) => v.startsWith(`${SESSION_COOKIE}=`));
    assert.equal(setCookies.length, 1, `one Set-Cookie for ${SESSION_COOKIE}, got ${JSON.stringify(setCookies)}`);
    const attrs = setCookies[0].split(';').slice(1).map((a) => a.trim().toLowerCase());
    assert.ok(attrs.includes('httponly'), `Set-Cookie lacks HttpOnly: ${setCookies[0]}`);
    assert.ok(attrs.includes('samesite=lax'), `Set-Cookie lacks SameSite=Lax: ${setCookies[0]}`);

    // The browser stored it that way.
    const cookie = await sessionCookie(context);
    assert.ok(cookie, `no ${SESSION_COOKIE} cookie in the browser`);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/', 'session cookie must cover the whole dashboard');
    assert.ok(cookie.value.length >= 16, 'session id looks too short');
    assert.ok(!cookie.value.includes(server.password), 'cookie must not carry the password');

    // The Overview page.
    assert.equal(pathOf(page.url()), '/');
    assert.equal((await page.locator('h1').first().innerText()).trim(), 'Overview');

    const nav = page.locator('nav.sidebar');
    assert.equal(await nav.count(), 1, 'one nav.sidebar');
    const hrefs = await nav
      .locator('a[href]')
      .evaluateAll((as) => as.map((a) => new URL(a.href).pathname));
    for (const p of NAV_PATHS) {
      assert.ok(hrefs.includes(p), `nav.sidebar has no link to ${p} (links: ${hrefs.join(', ')})`);
    }

    // A lone replica holds the singleton lease; the jobs say where they run.
    assert.match(await page.locator('#lease').innerText(), /This replica \(liftoff-\d+-[0-9a-f]{8}\) holds the singleton lease/);
    const runsOn = async (job) => (await page.locator('#jobs tbody tr', { hasText: job }).locator('td').nth(1).innerText()).trim();
    assert.equal(await runsOn('uptime-checks'), 'one replica');
    assert.equal(await runsOn('system-sampler'), 'every replica');

    // Authenticated GET / is the page itself, not a redirect.
    const direct = await context.request.get(`${server.url}/`, { maxRedirects: 0 });
    assert.equal(direct.status(), 200);
  });

  browserTest('dashboard pages load without script errors or failed requests', async ({ page }) => {
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => {
      if (!pathOf(r.url()).startsWith('/favicon')) {
        problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !pathOf(r.url()).startsWith('/favicon')) {
        problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
      }
    });

    await logIn(page);
    assert.equal(pathOf(page.url()), '/');
    for (const p of NAV_PATHS) {
      const res = await page.goto(`${server.url}${p}`);
      assert.equal(res.status(), 200, `GET ${p}`);
    }
    await page.goto(`${server.url}/`);
    await page.waitForLoadState('load');
    await page.waitForTimeout(500); // let deferred scripts and first fragment loads run
    assert.deepEqual(problems, []);
  });

  browserTest('every nav page has an h1; the Flags link leads to "Flags"', async ({ page }) => {
    await logIn(page);
    assert.equal(pathOf(page.url()), '/');

    for (const p of NAV_PATHS) {
      const res = await page.goto(`${server.url}${p}`);
      assert.equal(res.status(), 200, `GET ${p}`);
      assert.equal(pathOf(page.url()), p, `GET ${p} ended at ${page.url()}`);
      const h1 = page.locator('h1');
      assert.equal(await h1.count(), 1, `${p} has exactly one h1`);
      assert.ok((await h1.innerText()).trim().length > 0, `${p} has an empty h1`);
    }

    await page.goto(`${server.url}/`);
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/flags'),
      // The link may carry the current query (e.g. /flags?window=24h).
      page.locator('nav.sidebar a[href="/flags"], nav.sidebar a[href^="/flags?"]').click(),
    ]);
    assert.equal((await page.locator('h1').innerText()).trim(), 'Flags');
  });

  browserTest('window selector navigates and keeps the choice', async ({ page }) => {
    await logIn(page);
    assert.equal(pathOf(page.url()), '/');

    const select = page.locator('select#window');
    assert.equal(await select.count(), 1, 'one select#window');
    const values = await select.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(values, WINDOWS);
    assert.notEqual(await select.inputValue(), '4h', 'precondition: 4h is not the default');

    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('window') === '4h', { timeout: 5_000 }),
      select.selectOption('4h'),
    ]);
    await page.waitForLoadState('load');
    assert.equal(new URL(page.url()).searchParams.get('window'), '4h');
    assert.equal(await page.locator('select#window').inputValue(), '4h');

    // The server renders the choice: a fresh load of the URL keeps 4h selected.
    await page.reload();
    assert.equal(new URL(page.url()).searchParams.get('window'), '4h');
    assert.equal(await page.locator('select#window').inputValue(), '4h');
    const selected = await page
      .locator('select#window option[selected]')
      .evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(selected, ['4h'], 'the server marks exactly the 4h option as selected');
  });

  browserTest('logout ends the session', async ({ page, context }) => {
    await logIn(page);
    assert.equal(pathOf(page.url()), '/');
    const oldCookie = await sessionCookie(context);
    assert.ok(oldCookie, 'logged in with a session cookie');

    const button = page.locator('form[action="/logout"] button');
    assert.equal(await button.count(), 1, 'one logout button');
    await Promise.all([page.waitForURL((u) => u.pathname === '/login'), button.click()]);
    assert.equal(await page.locator('form#login').count(), 1);

    // This browser is logged out ...
    assertRedirectsToLogin(await getRootNoFollow(context), 'GET / after logout');
    await page.goto(`${server.url}/`);
    assert.equal(pathOf(page.url()), '/login');

    // ... and the old session id is dead on the server, not just deleted from the jar.
    const replay = await browser.newContext();
    try {
      await replay.addCookies([{ ...oldCookie, expires: -1 }]);
      assertRedirectsToLogin(await getRootNoFollow(replay), 'GET / with the logged-out session id');
    } finally {
      await replay.close();
    }
  });

  // Logs in with page.request and the form's real csrf token: the control that
  // shows a 403 below comes from the csrf check and not from how the request is sent.
  async function postLoginWithRealCsrf(page, context) {
    await page.goto(`${server.url}/login`);
    const csrf = await page.locator('form#login input[name=csrf]').inputValue();
    const res = await page.request.post(`${server.url}/login`, {
      form: { username: server.username, password: server.password, csrf },
      maxRedirects: 0,
    });
    assert.ok([302, 303].includes(res.status()), `control login answered ${res.status()}`);
    const root = await context.request.get(`${server.url}/`, { maxRedirects: 0 });
    assert.equal(root.status(), 200, 'control login gives a working session');
  }

  browserTest('POST /login without a csrf field is refused with 403', async ({ page, context }) => {
    // Load the form first so any pre-session/CSRF cookie exists; only the field is missing.
    await page.goto(`${server.url}/login`);
    const res = await page.request.post(`${server.url}/login`, {
      form: { username: server.username, password: server.password },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 403);
    assertRedirectsToLogin(await getRootNoFollow(context), 'GET / after a csrf-less login');

    await postLoginWithRealCsrf(page, context);
  });

  browserTest('POST /login with a forged csrf value is refused with 403', async ({ page, context }) => {
    await page.goto(`${server.url}/login`);
    const real = await page.locator('form#login input[name=csrf]').inputValue();
    const forged = real.length > 0 ? `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}` : 'forged';
    const res = await page.request.post(`${server.url}/login`, {
      form: { username: server.username, password: server.password, csrf: forged },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 403);
    assertRedirectsToLogin(await getRootNoFollow(context), 'GET / after a forged-csrf login');

    await postLoginWithRealCsrf(page, context);
  });
});
