// SPDX-License-Identifier: MIT
// Access rules in a real browser (Debian's chromium via playwright-core): a page of another local
// origin tries everything a hostile site can do without help (a text/plain fetch, an HTML form
// POST, a JSON fetch, reading the session list, the official Socket.IO client) and achieves
// nothing; a DNS-rebinding name that points at the server gets 403; the server's own page does
// the same things successfully.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, get, q, startServer, test } from './lib/server.mjs';
import { CHROMIUM, SKIP_REASON, launchBrowser, openPage } from './lib/ui-browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SIO_BUNDLE = path.resolve(HERE, '..', '..', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');

/** The attack page: every request a foreign site could make to the server at `target`. */
function attackPage(target, query) {
    return `<!doctype html><html><head><meta charset="utf-8"><title>evil</title>
<script src="/socket.io.min.js"></script></head><body>
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="POST" action="${target}/api/v1/oneshot/query" enctype="text/plain" target="sink">
<input type="hidden" name='{"query":"${query}","x":"' value='"}'></form>
<script>
window.results = {};
async function attempt(name, fn) {
    try { window.results[name] = { ok: true, value: await fn() }; }
    catch (e) { window.results[name] = { ok: false, error: String(e) }; }
}
window.run = async () => {
    const body = JSON.stringify({ query: ${JSON.stringify(query)} });
    await attempt('textPlain', () => fetch('${target}/api/v1/oneshot/query', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body }).then((r) => r.type));
    await attempt('json', () => fetch('${target}/api/v1/oneshot/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.status));
    await attempt('create', () => fetch('${target}/api/v1/sessions/create', { method: 'POST', mode: 'no-cors' }).then((r) => r.type));
    await attempt('read', () => fetch('${target}/api/v1/sessions').then((r) => r.json()));
    await attempt('socketio', () => new Promise((resolve, reject) => {
        const s = io('${target}', { reconnection: false, timeout: 3000, transports: ['websocket'] });
        s.on('connect', () => { s.emit('send-query', { query: ${JSON.stringify(query)} }); resolve('connected'); });
        s.on('connect_error', (e) => reject(new Error('connect_error: ' + e.message)));
    }));
    await attempt('socketioPolling', () => new Promise((resolve, reject) => {
        const s = io('${target}', { reconnection: false, timeout: 3000, transports: ['polling'] });
        s.on('connect', () => resolve('connected'));
        s.on('connect_error', (e) => reject(new Error('connect_error: ' + e.message)));
    }));
    document.getElementById('f').submit();
    await new Promise((r) => setTimeout(r, 500));
    return window.results;
};
</script></body></html>`;
}

async function startEvilSite(target, query) {
    const server = http.createServer((req, res) => {
        if (req.url === '/socket.io.min.js') {
            res.writeHead(200, { 'content-type': 'text/javascript' });
            res.end(fs.readFileSync(SIO_BUNDLE));
            return;
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(attackPage(target, query));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

describe('a hostile page in chromium', { skip: SKIP_REASON }, () => {
    let fake, srv, browser, evil;
    const query = q('text', 'please run id');
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        evil = await startEvilSite(srv.url, query);
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        if (evil) await evil.close();
        await cleanup(srv, fake);
    });

    const sessionCount = async () => (await get(srv, '/api/v1/sessions')).json.sessions.length;

    test('from another origin nothing runs and nothing is readable', async () => {
        const before = await sessionCount();
        const page = await openPage(browser, evil.url);
        try {
            const r = await page.evaluate(() => window.run());
            assert.equal(r.json.ok, false, 'the JSON POST is stopped at the preflight');
            assert.equal(r.read.ok, false, `the session list is not readable: ${JSON.stringify(r.read)}`);
            assert.equal(r.socketio.ok, false, `no WebSocket: ${JSON.stringify(r.socketio)}`);
            assert.equal(r.socketioPolling.ok, false, `no polling: ${JSON.stringify(r.socketioPolling)}`);
            // the no-cors requests are sent (opaque answers); the server refused them
            assert.equal(await sessionCount(), before, 'no session was created');
            assert.equal(fake.requests.length, 0, 'nothing reached the model');
            assert.ok(!srv.stderr.includes('please run id'), 'no query was accepted');
            assert.match(srv.stderr, /refused Origin 'http:\/\/127\.0\.0\.1:\d+'/);
        } finally {
            await page.closeAll();
        }
    });

    test('the server\'s own page does the same things successfully', async () => {
        const before = await sessionCount();
        const page = await openPage(browser, `${srv.url}/`);
        try {
            const out = await page.evaluate(async (qry) => {
                const r = await fetch('/api/v1/oneshot/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: qry }) });
                const list = await (await fetch('/api/v1/sessions')).json();
                const ws = await new Promise((resolve) => {
                    const w = new WebSocket(location.origin.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket');
                    w.onmessage = (m) => { resolve(String(m.data).slice(0, 1)); w.close(); };
                    w.onerror = () => resolve('error');
                });
                return { status: r.status, sessions: list.sessions.length, ws };
            }, query);
            assert.equal(out.status, 200);
            assert.equal(out.sessions, before + 1);
            assert.equal(out.ws, '0', 'the Engine.IO open packet arrived');
            assert.equal(fake.requests.length, 1, 'the same-origin query ran');
        } finally {
            await page.closeAll();
        }
    });

    test('a DNS-rebinding name that resolves to the server gets 403, page and API', async () => {
        const { chromium } = await import('playwright-core');
        const rebinding = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            timeout: 30000,
            args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
                '--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
        });
        try {
            const page = await rebinding.newPage();
            const res = await page.goto(`http://rebind.attacker.test:${srv.port}/api/v1/sessions`);
            assert.equal(res.status(), 403);
            assert.match(await res.text(), /Invalid Host header/);
            const ui = await page.goto(`http://rebind.attacker.test:${srv.port}/`);
            assert.equal(ui.status(), 403);
        } finally {
            await rebinding.close();
        }
    });

    test('off loopback: the sign-in link gives the embedded UI a cookie and leaves the address bar', async () => {
        const token = 'browser-sign-in-token-0123456789';
        const tsrv = await startServer({ fake, args: ['--auth-token', token] });
        try {
            const page = await openPage(browser, `${tsrv.url}/?token=${token}`);
            try {
                assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
                const out = await page.evaluate(async () => {
                    const list = await fetch('api/v1/sessions');
                    const create = await fetch('api/v1/sessions/create', { method: 'POST' });
                    return { list: list.status, create: create.status, cookie: document.cookie };
                });
                assert.deepEqual(out, { list: 200, create: 201, cookie: '' }, 'HttpOnly: not readable by scripts');
            } finally {
                await page.closeAll();
            }
            const anon = await openPage(browser, `${tsrv.url}/`);
            try {
                const status = await anon.evaluate(async () => (await fetch('api/v1/sessions')).status);
                assert.equal(status, 401);
                await anon.waitForFunction(() => document.body.innerText.includes('Authentication required'), null, { timeout: 10000 });
            } finally {
                await anon.closeAll();
            }
        } finally {
            await cleanup(tsrv);
        }
    });
});
