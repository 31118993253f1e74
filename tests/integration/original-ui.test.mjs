// SPDX-License-Identifier: MIT
// The ORIGINAL Agent TARS web UI (the static build of @tarko/agent-ui-builder 0.3.0, installed
// by npm) in Debian's chromium against the binary, under the access rules (Host allow-list,
// Origin check, CORS only for allowed origins, JSON-only bodies).
//
// 1. Same origin: a small proxy written here serves the UI's files and forwards /api/* and
//    /socket.io/* (WebSocket upgrades too) to the server unchanged -- method, headers with the
//    browser's own Host and Origin, bodies and answers streamed both ways (SSE is never
//    buffered) -- as a reverse proxy in front of the original CLI would. The page creates a
//    session, a gated answer is seen streaming in before the fake model finishes it, a second
//    query goes through the session page's composer, a reload restores the conversation, and no
//    request of the page gets an HTTP error.
// 2. Another origin: the same files served on a different port, talking to the server's URL
//    directly, are refused (403 Origin not allowed, no CORS) unless the server is started with
//    --server.allowedOrigins <that origin>; then the UI works cross-origin.
//
// Skips when chromium is not installed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { addScenarios, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { cleanup, get, q, startServer, test } from './lib/server.mjs';
import { SKIP_REASON, launchBrowser, openPage, saveDir } from './lib/ui-browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const STATIC_DIR = path.resolve(HERE, '..', '..', 'node_modules', '@tarko', 'agent-ui-builder', 'static');
const HAVE_UI = fs.existsSync(path.join(STATIC_DIR, 'index.html'));
const SKIP = SKIP_REASON || (HAVE_UI ? false : `${STATIC_DIR}/index.html is missing (npm ci installs @tarko/agent-ui-builder)`);

const T = { timeout: 120000 };
const WAIT = { timeout: 20000 };

// The page loads two assets from the internet (Google Fonts CSS and the default logo on
// ByteDance's CDN); chromium runs on a closed network here, so those two fail to resolve. They
// are no requests to our server and get no HTTP status; nothing else may leave loopback.
const EXTERNAL_ASSETS = [/^https:\/\/fonts\.googleapis\.com\//, /^https:\/\/lf3-static\.bytednsdoc\.com\//];

// ---- a fake-model scenario whose answer stops half-way until the test opens a gate ----------

const GATE_PART1 = 'First half of the gated answer, streamed before the gate opens.';
const GATE_PART2 = ' Second half, sent only after the test saw the first one in the page.';
const gates = new Map();

/** A gate for `[[scenario:origui_gate id=ID]]`; open() lets the rest of the answer go. */
function makeGate(id) {
    let open;
    const opened = new Promise((resolve) => {
        open = resolve;
    });
    gates.set(id, { opened, open });
    return { open: () => open() };
}

addScenarios({
    origui_gate(s, a) {
        const frames = s.completion({ text: GATE_PART1 + GATE_PART2 });
        const g = gates.get(a.params.id);
        if (!g) return s.play(frames);
        // completion() splits the text into words (each with its leading space): the role delta,
        // then exactly GATE_PART1's words, then the rest
        const k = 1 + GATE_PART1.match(/\s*\S+/g).length;
        s.head();
        s.res.write(frames.slice(0, k).join(''));
        g.opened.then(() => {
            if (!s.closed) s.play(frames.slice(k));
        });
    },
});

// ---- serving the UI ----------------------------------------------------------------------

const MIME = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.json': 'application/json',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
    '.ico': 'image/x-icon',
    '.woff': 'font/woff',
    '.woff2': 'font/woff2',
    '.ttf': 'font/ttf',
    '.txt': 'text/plain; charset=utf-8',
};

const ORIGINAL_HTML = HAVE_UI ? fs.readFileSync(path.join(STATIC_DIR, 'index.html'), 'utf8') : '';

/**
 * index.html with the script the original CLI injects before </head> (agent-cli's setupUI:
 * `window.AGENT_BASE_URL = ""; window.AGENT_WEB_UI_CONFIG = {...}`; no web UI config here, so
 * the bundle's defaults apply). baseURL "" = the API on the page's own origin.
 *
 * For another origin (baseURL = the server's URL): this published bundle reads
 * `v.AGENT_BASE_URL ?? window.AGENT_BASE_URL`, where `v` is the build-time environment with
 * AGENT_BASE_URL baked in as "" -- so the injected window.AGENT_BASE_URL can never win and the
 * API would always be the page's own origin. A build without that variable (undefined) honours
 * the injected value; we reproduce that by turning the baked "" into undefined.
 */
function uiHtml(baseURL) {
    let html = ORIGINAL_HTML;
    if (baseURL) {
        const baked = 'AGENT_BASE_URL:"",AGENT_WEBUI_CONFIG:void 0}';
        assert.equal(html.split(baked).length, 2, 'the bundle has its build-time AGENT_BASE_URL exactly once');
        html = html.replace(baked, 'AGENT_BASE_URL:void 0,AGENT_WEBUI_CONFIG:void 0}');
    }
    const script = `<script>
      window.AGENT_BASE_URL = ${JSON.stringify(baseURL)};
      console.log("Agent: Using API baseURL:", window.AGENT_BASE_URL);
    </script>`;
    assert.ok(html.includes('</head>'));
    return html.replace('</head>', `${script}\n</head>`);
}

const isForwarded = (p) => p === '/api' || p.startsWith('/api/') || p.startsWith('/socket.io/');

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * An HTTP server for the UI. GET/HEAD of a file under STATIC_DIR serves it; any other path that
 * is not forwarded serves index.html (SPA routes such as /<sessionId>). With `upstream` (a
 * started server), /api/* and /socket.io/* are forwarded to it as they came, WebSocket upgrades
 * included; without, they get 404 (a UI that talks to the server by its own URL never asks).
 * `baseURL` (also settable later as the result's .baseURL) goes into index.html (see uiHtml).
 * Resolves { origin, baseURL, forwarded: [{method, path, host, origin, contentType, bodyBytes,
 * status ('upgrade', or null if the browser gave up before the answer)}], close() }.
 */
async function startUiServer({ upstream = null, baseURL = '' } = {}) {
    const ui = { baseURL };
    let html = null;
    let htmlFor = null;
    const page = () => {
        if (htmlFor !== ui.baseURL) {
            html = Buffer.from(uiHtml(ui.baseURL));
            htmlFor = ui.baseURL;
        }
        return html;
    };
    const forwarded = [];
    const sockets = new Set();

    function forward(req, res) {
        const rec = {
            method: req.method,
            path: req.url,
            host: req.headers.host,
            origin: req.headers.origin ?? null,
            contentType: req.headers['content-type'] ?? null,
            bodyBytes: 0,
            status: null,
        };
        req.on('data', (c) => {
            rec.bodyBytes += c.length;
        });
        forwarded.push(rec);
        const headers = {};
        for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
        // a request body (fixed length or chunked) streams through: keep how the browser framed it
        if (req.headers['transfer-encoding']) headers['transfer-encoding'] = req.headers['transfer-encoding'];
        const up = http.request(
            { host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers, agent: false },
            (ur) => {
                rec.status = ur.statusCode;
                const out = [];
                for (let i = 0; i < ur.rawHeaders.length; i += 2) {
                    if (!HOP_BY_HOP.has(ur.rawHeaders[i].toLowerCase())) out.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
                }
                res.writeHead(ur.statusCode, ur.statusMessage, out);
                res.flushHeaders();
                ur.pipe(res); // chunk by chunk as it arrives: SSE frames are not held back
            },
        );
        up.on('error', () => {
            if (!res.headersSent) {
                res.writeHead(502, { 'content-type': 'application/json' });
                res.end('{"error":"proxy: upstream failed"}');
            } else res.destroy();
        });
        // the browser went away (reload, abort): so does the upstream request, SSE included
        res.on('close', () => {
            if (!res.writableFinished) up.destroy();
        });
        req.pipe(up);
    }

    const server = http.createServer((req, res) => {
        const { pathname } = new URL(req.url, 'http://ui.invalid');
        if (isForwarded(pathname)) {
            if (upstream) return forward(req, res);
            res.writeHead(404, { 'content-type': 'application/json' });
            return res.end('{"error":"not forwarded"}');
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.writeHead(405, { allow: 'GET, HEAD' });
            return res.end();
        }
        let file = null;
        let rel;
        try {
            rel = path.normalize(decodeURIComponent(pathname));
        } catch {
            rel = '/';
        }
        if (rel !== '/' && !rel.startsWith('/..')) {
            const f = path.join(STATIC_DIR, rel);
            if (f.startsWith(STATIC_DIR + path.sep) && fs.statSync(f, { throwIfNoEntry: false })?.isFile()) file = f;
        }
        const body = file && path.basename(file) !== 'index.html' ? fs.readFileSync(file) : page();
        const type = file ? MIME[path.extname(file)] || 'application/octet-stream' : MIME['.html'];
        res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
    });

    // WebSocket (and any other) upgrades: a raw TCP pipe to the server, the request head
    // rewritten byte for byte from what the browser sent
    server.on('upgrade', (req, sock, head) => {
        const { pathname } = new URL(req.url, 'http://ui.invalid');
        if (!upstream || !isForwarded(pathname)) return sock.destroy();
        forwarded.push({ method: req.method, path: req.url, host: req.headers.host, origin: req.headers.origin ?? null, status: 'upgrade' });
        const up = net.connect(upstream.port, '127.0.0.1', () => {
            let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
            for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
            up.write(`${text}\r\n`);
            if (head && head.length) up.write(head);
            sock.pipe(up);
            up.pipe(sock);
        });
        sockets.add(up);
        up.on('close', () => sockets.delete(up));
        up.on('error', () => sock.destroy());
        sock.on('error', () => up.destroy());
        sock.on('close', () => up.destroy());
    });

    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    return Object.assign(ui, {
        origin: `http://127.0.0.1:${server.address().port}`,
        forwarded,
        close: () =>
            new Promise((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    });
}

// ---- page helpers --------------------------------------------------------------------------

const textIn = (page) => page.evaluate(() => document.body.innerText);

/** Waits until the page's visible text contains `text`. */
function waitText(page, text, timeout = WAIT.timeout) {
    return page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout });
}

function countOf(hay, needle) {
    return hay.split(needle).length - 1;
}

/** The problems openPage records, judged: no HTTP errors, no exceptions, nothing else off-host. */
function assertPageClean(page, what) {
    const p = page.problems;
    assert.deepEqual(p.httpErrors, [], `${what}: no request of the page got a 4xx/5xx answer`);
    assert.deepEqual(p.pageErrors, [], `${what}: no uncaught exception`);
    assert.deepEqual(p.offline.filter((u) => !EXTERNAL_ASSETS.some((re) => re.test(u))), [], `${what}: nothing but the two CDN assets left loopback`);
    const consoleErrors = p.consoleErrors.filter((m) => !/^Failed to load resource: net::ERR_NAME_NOT_RESOLVED$/.test(m));
    assert.deepEqual(consoleErrors, [], `${what}: no console errors`);
}

async function shot(page, name) {
    await page.screenshot({ path: path.join(saveDir(), name) });
}

async function sessionsOf(srv) {
    const r = await get(srv, '/api/v1/sessions');
    assert.equal(r.status, 200, r.text);
    return r.json.sessions;
}

// ---- the tests -----------------------------------------------------------------------------

describe('the original web UI (@tarko/agent-ui-builder) in chromium', { skip: SKIP }, () => {
    let browser;
    before(async () => {
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
    });

    test('same origin through a proxy: create, stream, query again, reload, WebSocket; no HTTP errors', T, async () => {
        const fake = await startFakeOpenAI();
        const srv = await startServer({ fake });
        const ui = await startUiServer({ upstream: srv });
        let page;
        try {
            page = await openPage(browser, `${ui.origin}/`);
            // the home page: a textarea and a submit button that is enabled once there is text
            const home = page.locator('textarea');
            await home.waitFor(WAIT);
            const gateId = `g${process.pid}`;
            const gate = makeGate(gateId);
            const first = q(`origui_gate id=${gateId}`, 'tell me in two halves');
            await home.fill(first);
            await page.locator('form button[type=submit]:not([disabled])').click(WAIT);

            // the session is created, the page moves to /<sessionId>, and the first half of the
            // answer shows while the model still holds the rest: the SSE answer streams through
            await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{21}$/, WAIT);
            const sid = new URL(page.url()).pathname.slice(1);
            await waitText(page, GATE_PART1);
            assert.ok(!(await textIn(page)).includes(GATE_PART2.trim()), 'the second half is not there yet');
            const held = fake.requests.filter((r) => r.scenario === 'origui_gate');
            assert.equal(held.length, 1);
            assert.equal(held[0].completed, false, 'the model call is still open');
            await shot(page, 'original-ui-streaming.png');
            gate.open();
            await waitText(page, GATE_PART1 + GATE_PART2);

            // the session is on the server, under the id of the page's address
            const listed = await sessionsOf(srv);
            assert.ok(listed.some((s) => s.id === sid), `GET /api/v1/sessions lists ${sid}: ${JSON.stringify(listed.map((s) => s.id))}`);

            // a second query through the session page's composer and its send button
            const second = q('text', 'and now a second question');
            // (the session page has two composer forms, one of them hidden: use the visible one)
            const form = page.locator('form:has(textarea:visible)');
            await form.locator('textarea').fill(second);
            await form.locator('button[type=submit]:not([disabled])').click(WAIT);
            await waitText(page, textReply(second));
            await shot(page, 'original-ui-answered.png');
            assert.equal(fake.requests.length, 2, 'one model call per query');
            assert.equal((await sessionsOf(srv)).length, 1, 'both queries went to the one session');

            // reload: the conversation comes back from the stored events, each answer once
            await page.reload();
            await waitText(page, textReply(second));
            await waitText(page, GATE_PART1 + GATE_PART2);
            const after = await textIn(page);
            assert.equal(fake.requests.length, 2, 'a reload asks the model nothing');
            assert.equal(countOf(after, GATE_PART1 + GATE_PART2), 1, 'the first answer once');
            assert.equal(countOf(after, textReply(second)), 1, 'the second answer once');
            assert.ok(after.includes(first) && after.includes(second), 'both queries are shown');
            await shot(page, 'original-ui-reloaded.png');

            // the page's origin may open the Socket.IO WebSocket through the proxy as well
            const wsFirst = await page.evaluate(
                (url) =>
                    new Promise((resolve) => {
                        const ws = new WebSocket(url);
                        const t = setTimeout(() => resolve('timeout'), 10000);
                        ws.onmessage = (m) => {
                            clearTimeout(t);
                            ws.close();
                            resolve(String(m.data));
                        };
                        ws.onerror = () => {
                            clearTimeout(t);
                            resolve('error');
                        };
                    }),
                `${ui.origin.replace('http:', 'ws:')}/socket.io/?EIO=4&transport=websocket`,
            );
            assert.match(wsFirst, /^0\{"sid":/, 'the Engine.IO open packet arrived over the proxied WebSocket');

            // everything the page asked of the server went through the proxy with the browser's
            // own Host and Origin, and none was refused
            assert.ok(ui.forwarded.length > 10, `forwarded ${ui.forwarded.length} requests`);
            const host = new URL(ui.origin).host;
            for (const r of ui.forwarded) {
                assert.equal(r.host, host, `${r.method} ${r.path}: Host as the browser sent it`);
                // null: the page dropped the request before an answer came (a poll cut by the reload)
                assert.ok(r.status === null || r.status === 'upgrade' || (r.status >= 200 && r.status < 400), `${r.method} ${r.path} -> ${r.status}`);
            }
            assert.ok(ui.forwarded.filter((r) => typeof r.status === 'number').length > 10);
            // the UI sends JSON only, so the JSON-only rule refuses none of its bodies
            const posts = ui.forwarded.filter((r) => r.method === 'POST' && r.bodyBytes > 0);
            assert.ok(posts.length >= 3, JSON.stringify(posts));
            for (const r of posts) assert.match(r.contentType, /^application\/json\b/i, `${r.path} body type`);
            const withOrigin = ui.forwarded.filter((r) => r.origin !== null);
            assert.ok(withOrigin.some((r) => r.method === 'POST' && r.path === '/api/v1/sessions/query/stream'), 'the streaming query carried an Origin');
            for (const r of withOrigin) assert.equal(r.origin, ui.origin, `${r.method} ${r.path}: Origin of the page`);
            assert.ok(ui.forwarded.some((r) => r.path.startsWith('/socket.io/') && r.status === 'upgrade'));
            assertPageClean(page, 'same origin');
        } finally {
            if (page) await page.closeAll();
            await ui.close();
            await cleanup(srv, fake);
        }
    });

    test('another origin: refused by the server unless --server.allowedOrigins names it', T, async () => {
        const fake = await startFakeOpenAI();
        // the UI on an origin of its own first: the server's flag needs that origin
        const ui = await startUiServer();
        let srv;
        let page;
        try {
            // -- not allowed: the server refuses the page's requests (403 Origin not allowed, no
            // CORS header; the UI's JSON requests are preflighted and fail there), so the page
            // reads nothing, creates nothing and runs nothing
            srv = await startServer({ fake });
            ui.baseURL = srv.url;
            page = await openPage(browser, `${ui.origin}/`);
            await page.locator('textarea').waitFor(WAIT);
            const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url() === `${srv.url}/api/v1/sessions/create`, ...WAIT });
            failed.catch(() => {}); // awaited below; no unhandled rejection if the click fails first
            await page.locator('textarea').fill(q('text', 'from a foreign origin'));
            await page.locator('form button[type=submit]:not([disabled])').click(WAIT);
            const create = await failed;
            assert.equal(create.method(), 'POST');
            assert.equal(create.failure().errorText, 'net::ERR_FAILED');
            const corsBlocked = page.problems.consoleErrors.filter((m) => m.includes('blocked by CORS policy') && m.includes(`from origin '${ui.origin}'`));
            // "Response to preflight request doesn't pass access control check": the server
            // answered the preflight, without CORS for this origin
            assert.ok(
                corsBlocked.some((m) => m.includes('/api/v1/sessions/create') && /preflight request doesn't pass access control check/.test(m)),
                page.problems.consoleErrors.join('\n'),
            );
            assert.match(srv.stderr, new RegExp(`refused Origin '${ui.origin}'`));
            // no session page: the UI shows its home, or its "creating" page for a moment before
            // it goes back (how long depends on the machine's load, so both count)
            assert.ok(['/', '/creating'].includes(new URL(page.url()).pathname), `the page reached ${page.url()}`);
            assert.deepEqual(await sessionsOf(srv), [], 'no session was created');
            assert.equal(fake.requests.length, 0, 'nothing reached the model');
            // what the browser got, asked by hand: the preflight and the request itself
            const preflight = await fetch(`${srv.url}/api/v1/sessions/create`, {
                method: 'OPTIONS',
                headers: { origin: ui.origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
            });
            assert.equal(preflight.status, 403);
            assert.equal(preflight.headers.get('access-control-allow-origin'), null);
            const direct = await get(srv, '/api/v1/sessions', { headers: { origin: ui.origin } });
            assert.equal(direct.status, 403);
            assert.equal(direct.json.error, 'Origin not allowed');
            assert.equal(direct.headers.get('access-control-allow-origin'), null);
            await shot(page, 'original-ui-refused.png');
            await page.closeAll();
            page = null;
            await cleanup(srv);
            srv = null;

            // -- allowed: the same page works cross-origin, CORS echoing its origin
            srv = await startServer({ fake, args: ['--server.allowedOrigins', ui.origin] });
            ui.baseURL = srv.url;
            page = await openPage(browser, `${ui.origin}/`);
            await page.locator('textarea').waitFor(WAIT);
            const query = q('text', 'from an allowed origin');
            const streamed = page.waitForResponse((r) => r.url() === `${srv.url}/api/v1/sessions/query/stream`, WAIT);
            streamed.catch(() => {});
            await page.locator('textarea').fill(query);
            await page.locator('form button[type=submit]:not([disabled])').click(WAIT);
            await page.waitForURL(new RegExp(`^${ui.origin}/[A-Za-z0-9_-]{21}$`), WAIT);
            const sid = new URL(page.url()).pathname.slice(1);
            const stream = await streamed;
            assert.equal(stream.status(), 200);
            assert.equal((await stream.allHeaders())['access-control-allow-origin'], ui.origin);
            await waitText(page, textReply(query));
            const listed = await sessionsOf(srv);
            assert.deepEqual(listed.map((s) => s.id), [sid], 'GET /api/v1/sessions lists the session of the page');
            assert.equal(fake.requests.length, 1);
            await page.reload();
            await waitText(page, textReply(query));
            assert.equal(countOf(await textIn(page), textReply(query)), 1, 'the answer is restored once');
            await shot(page, 'original-ui-cross-origin.png');
            // every API request went to the server's URL: none to the UI's origin
            assert.deepEqual(ui.forwarded, []);
            assert.ok(page.problems.requests.some((r) => r.path === '/api/v1/sessions/events?sessionId=' + sid));
            assertPageClean(page, 'allowed origin');
        } finally {
            if (page) await page.closeAll();
            await ui.close();
            await cleanup(srv, fake);
        }
    });
});
