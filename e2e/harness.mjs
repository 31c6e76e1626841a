// Shared harness for Liftoff's browser end-to-end tests.
//
// startLiftoff() runs a real `liftoff serve` on a free loopback port with a fresh
// data directory, waits for /readyz, and hands back what a test needs to log in.
// launchBrowser() starts Debian's Chromium through playwright-core (no browser
// download: playwright-core never fetches one).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = path.resolve(E2E_DIR, '..');
export const DEFAULT_BIN = path.join(REPO_DIR, 'target', 'debug', 'liftoff');
export const RESULTS_DIR = path.join(E2E_DIR, 'test-results');

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const LOG_LIMIT = 4 * 1024 * 1024; // keep at most the last 4 MiB of server output

/** Ask the kernel for a free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `liftoff serve` and wait until GET /readyz answers 200.
 *
 * opts (all optional):
 *   bin             path to the binary (default: $LIFTOFF_BIN, else <repo>/target/debug/liftoff)
 *   args            extra arguments appended after `serve --data DIR --listen ADDR`
 *   env             extra environment variables for the server
 *   readyTimeoutMs  how long to wait for /readyz (default 15000)
 *   stopTimeoutMs   how long stop() waits after SIGTERM before SIGKILL (default 5000)
 *   echo            also stream the server's output to this process's stderr
 *                   (default: true when $LIFTOFF_E2E_ECHO is set)
 *
 * Inherited LIFTOFF_* variables are dropped so a developer's shell cannot change
 * what is under test; pass them through opts.env when a test wants them.
 *
 * Returns { url, port, token, password, username, dataDir, pid, mark(), log(since),
 * printLog(title, since), exited, stop() }. mark() is the current end of the captured
 * output, for log()/printLog() to show only what came after it. stop() resolves to
 * { code, signal, killed } and is idempotent.
 */
export async function startLiftoff(opts = {}) {
  const bin = path.resolve(opts.bin || process.env.LIFTOFF_BIN || DEFAULT_BIN);
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(
      `liftoff binary not found or not executable: ${bin}\n` +
        'Build it first (cargo build -p liftoff) or point LIFTOFF_BIN at it.',
    );
  }

  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 5_000;
  const echo = opts.echo ?? Boolean(process.env.LIFTOFF_E2E_ECHO);

  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const url = `http://${listen}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'liftoff-e2e-'));
  const token = randomBytes(32).toString('hex');
  const password = randomBytes(18).toString('base64url');
  const username = 'admin';

  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LIFTOFF_')) env[k] = v;
  }
  Object.assign(env, {
    RUST_BACKTRACE: process.env.RUST_BACKTRACE ?? '1',
    NO_COLOR: '1',
    LIFTOFF_ADMIN_TOKEN: token,
    LIFTOFF_ADMIN_PASSWORD: password,
    ...(opts.env || {}),
  });

  const args = ['serve', '--data', dataDir, '--listen', listen, ...(opts.args || [])];

  // Output is kept in memory (the last LOG_LIMIT characters) and only printed
  // when something fails. Positions are counted over everything ever written,
  // so mark()/log(since) can cut out what one test produced.
  let logBuf = '';
  let dropped = 0; // characters cut from the front of logBuf
  let startupEnd = null; // position where the server became ready
  const append = (chunk) => {
    const s = chunk.toString('utf8');
    if (echo) process.stderr.write(s);
    logBuf += s;
    if (logBuf.length > LOG_LIMIT) {
      dropped += logBuf.length - LOG_LIMIT;
      logBuf = logBuf.slice(logBuf.length - LOG_LIMIT);
    }
  };
  const mark = () => dropped + logBuf.length;
  const log = (since = 0) => logBuf.slice(Math.max(0, since - dropped));
  const printLog = (title = 'liftoff server log', since = 0) => {
    let text = log(since);
    if (since > 0 && startupEnd !== null && since > startupEnd) {
      // Startup output, then the part asked for.
      const head = logBuf.slice(0, Math.max(0, startupEnd - dropped));
      text = `${head}[harness] ... output between startup and this test omitted ...\n${text}`;
    }
    process.stderr.write(
      `\n----- ${title} (${bin} ${args.join(' ')}) -----\n` +
        (text || '(no output)\n') +
        (text.endsWith('\n') ? '' : '\n') +
        `----- end of ${title} -----\n`,
    );
  };

  append(`[harness] spawn ${bin} ${args.join(' ')}\n`);
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', append);
  child.stderr.on('data', append);

  // 'close' (not 'exit') so the last lines of output are in the log by then.
  let exitInfo = null;
  let spawnFailure = null;
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      exitInfo = { code, signal };
      append(`[harness] server exited: code=${code} signal=${signal}\n`);
      resolve(exitInfo);
    });
    child.on('error', (e) => {
      append(`[harness] process error: ${e.message}\n`);
      if (child.pid === undefined) {
        // Never started: no 'close' will come.
        spawnFailure = e;
        exitInfo = { code: null, signal: null };
        resolve(exitInfo);
      }
    });
  });

  let stopping = null;
  const stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      let killed = false;
      if (!exitInfo) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([
          exited.then(() => false),
          sleep(stopTimeoutMs).then(() => true),
        ]);
        if (timedOut && !exitInfo) {
          append(`[harness] no exit ${stopTimeoutMs} ms after SIGTERM; sending SIGKILL\n`);
          killed = true;
          child.kill('SIGKILL');
          await exited;
        }
      }
      await rm(dataDir, { recursive: true, force: true });
      return { ...exitInfo, killed };
    })();
    return stopping;
  };

  // Poll /readyz until 200, the process dies, or the deadline passes.
  const started = Date.now();
  let lastProblem = 'no attempt yet';
  for (;;) {
    const failure = await Promise.race([
      exited.then((e) =>
        spawnFailure
          ? `failed to spawn: ${spawnFailure.message}`
          : `exited before ready (code=${e.code} signal=${e.signal})`,
      ),
      (async () => {
        try {
          const res = await fetch(`${url}/readyz`, {
            signal: AbortSignal.timeout(2_000),
            redirect: 'manual',
          });
          await res.arrayBuffer().catch(() => {});
          if (res.status === 200) return 'ready';
          lastProblem = `GET /readyz answered ${res.status}`;
        } catch (e) {
          lastProblem = `GET /readyz failed: ${e.cause?.code || e.cause?.message || e.message}`;
        }
        return null;
      })(),
    ]);
    if (failure === 'ready') break;
    if (failure) {
      await stop();
      printLog('liftoff server log (startup failed)');
      throw new Error(`liftoff ${failure}\n${logBuf}`);
    }
    if (Date.now() - started > readyTimeoutMs) {
      await stop();
      printLog('liftoff server log (startup timed out)');
      throw new Error(
        `liftoff not ready within ${readyTimeoutMs} ms (last: ${lastProblem})\n${logBuf}`,
      );
    }
    await sleep(50);
  }
  append(`[harness] ready after ${Date.now() - started} ms at ${url}\n`);
  startupEnd = mark();

  return {
    url,
    port,
    token,
    password,
    username,
    dataDir,
    pid: child.pid,
    mark,
    log,
    printLog,
    exited,
    stop,
  };
}

/** Launch Debian's Chromium headless through playwright-core. */
export async function launchBrowser(opts = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    ...opts,
  });
}

/**
 * Run fn({ context, page }) in a fresh browser context. If it throws, save a
 * screenshot and the page's HTML under e2e/test-results/, print the page's URL,
 * the browser console and the server log, then rethrow. The context is always
 * closed afterwards.
 */
export async function withPage(browser, server, name, fn) {
  const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
  const png = path.join(RESULTS_DIR, `${slug}.png`);
  const html = path.join(RESULTS_DIR, `${slug}.html`);
  await rm(png, { force: true });
  await rm(html, { force: true });
  const logStart = server.mark();
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000); // fail fast: everything here is local
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  try {
    return await fn({ context, page });
  } catch (err) {
    const lines = [`\n===== FAILED: ${name} =====`, `page url: ${page.url()}`];
    try {
      await mkdir(RESULTS_DIR, { recursive: true });
      await page.screenshot({ path: png, fullPage: true, timeout: 5_000 });
      lines.push(`screenshot: ${png}`);
      await writeFile(html, await page.content());
      lines.push(`page html: ${html}`);
    } catch (e) {
      lines.push(`(could not save page artefacts: ${e.message})`);
    }
    if (consoleLines.length) lines.push('browser console:', ...consoleLines);
    process.stderr.write(lines.join('\n') + '\n');
    server.printLog(`liftoff server log during "${name}"`, logStart);
    throw err;
  } finally {
    await context.close().catch(() => {});
  }
}

/**
 * Collects what went wrong on a page as it happens: console errors, uncaught exceptions and
 * answers of 400 and above (the browser's own /favicon.ico request aside). Assert the array
 * is empty after the steps.
 */
export function watchProblems(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`);
  });
  return problems;
}

/**
 * Calls the server's JSON API with a bearer token (the admin token unless one is given).
 * Resolves to { status, body }; body is null when the answer is not JSON.
 */
export async function apiCall(server, method, path, body, token = server.token) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Signs in through the login form as the server's admin and waits to land on `next`. */
export async function signIn(page, server, next) {
  await page.goto(`${server.url}/login?next=${next}`);
  await page.fill('form#login input[name=username]', server.username);
  await page.fill('form#login input[name=password]', server.password);
  await Promise.all([page.waitForURL(new RegExp(next)), page.click('form#login button[type=submit]')]);
}
