// SPDX-License-Identifier: MIT
// Browser helpers for the web UI tests: Debian's chromium driven by playwright-core, headless,
// on a closed network (agent-tools-llm.md §3.5: loopback only, no background traffic). The tests
// skip with a message when /usr/bin/chromium is not installed.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.TARS_CHROMIUM || '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
export const SKIP_REASON = HAVE_CHROMIUM ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** tests/out/ (gitignored): screenshots. */
export const OUT_DIR = path.resolve(HERE, '..', '..', 'out');

const CLOSED_NET_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-domain-reliability',
    '--no-pings',
    '--disable-default-apps',
    '--disable-extensions',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Launches the browser (the caller closes it). */
export async function launchBrowser() {
    const { chromium } = await import('playwright-core');
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CLOSED_NET_ARGS, timeout: 30000 });
}

/**
 * A new page on its own context, recording what must never happen: page errors (uncaught
 * exceptions), console errors, dialogs other than the expected confirm(), and requests that
 * leave loopback. opts: { viewport, colorScheme, acceptConfirm (default true) }.
 */
export async function openPage(browser, url, opts = {}) {
    const context = await browser.newContext({
        viewport: opts.viewport || { width: 1280, height: 800 },
        colorScheme: opts.colorScheme || 'light',
        reducedMotion: 'reduce',
    });
    const page = await context.newPage();
    const problems = { pageErrors: [], consoleErrors: [], dialogs: [], offline: [], requests: [], httpErrors: [] };
    page.on('pageerror', (e) => problems.pageErrors.push(String(e)));
    page.on('console', (m) => {
        if (m.type() === 'error') problems.consoleErrors.push(m.text());
    });
    page.on('dialog', async (d) => {
        problems.dialogs.push({ type: d.type(), message: d.message() });
        if (d.type() === 'confirm' && opts.acceptConfirm !== false) await d.accept();
        else await d.dismiss();
    });
    page.on('request', (r) => {
        const u = new URL(r.url());
        problems.requests.push({ method: r.method(), path: u.pathname + u.search });
        if (!['127.0.0.1', 'localhost'].includes(u.hostname) && u.protocol !== 'data:') problems.offline.push(r.url());
    });
    page.on('response', (r) => {
        if (r.status() >= 400) {
            const u = new URL(r.url());
            problems.httpErrors.push(`${r.status()} ${r.request().method()} ${u.pathname}${u.search}`);
        }
    });
    page.problems = problems;
    page.closeAll = () => context.close();
    if (url) await page.goto(url);
    return page;
}

export function saveDir() {
    fs.mkdirSync(OUT_DIR, { recursive: true });
    return OUT_DIR;
}

// ---- page helpers ----

export const sel = {
    newSession: '#new-session',
    input: '#composer-input',
    send: '#send',
    stop: '#stop',
    status: '#status',
    statusText: '#status-text',
    sessions: '#session-list > li',
    user: '#conversation .msg-user',
    assistant: '#conversation .msg-assistant',
    tool: '#conversation .tool-card',
    error: '#conversation .notice-error',
};

/** Waits until the status indicator says `label` (Idle, Running, Stopped, Error). */
export async function waitStatus(page, label, timeout = 15000) {
    await page.waitForFunction((l) => document.getElementById('status-text').textContent === l, label, { timeout });
}

/** Types a message into the composer and presses Enter. */
export async function sendMessage(page, text) {
    await page.fill(sel.input, text);
    await page.press(sel.input, 'Enter');
}

/** Text of the assistant bubbles. */
export function assistantTexts(page) {
    return page.$$eval(sel.assistant, (els) => els.map((e) => e.textContent));
}

/** The id of the session in the URL hash. */
export async function currentSessionId(page) {
    return page.evaluate(() => decodeURIComponent(location.hash.slice(1)));
}

/**
 * Fails with a readable message if the page threw, logged errors, tried to go off loopback, or
 * got an HTTP error answer other than those matching `allowHttp` (regexps on "404 GET /path").
 * The browser's own "Failed to load resource" console line is judged through the HTTP list.
 */
export function assertClean(assert, page, { allowConsole = [], allowHttp = [] } = {}) {
    const p = page.problems;
    assert.deepEqual(p.pageErrors, [], 'no uncaught exceptions in the page');
    const consoleErrors = p.consoleErrors.filter((m) => !/^Failed to load resource/.test(m) && !allowConsole.some((re) => re.test(m)));
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(p.httpErrors.filter((e) => !allowHttp.some((re) => re.test(e))), [], 'no unexpected HTTP errors');
    assert.deepEqual(p.offline, [], 'no request left loopback');
}
