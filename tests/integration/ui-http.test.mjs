// SPDX-License-Identifier: MIT
// How the server hands out the embedded web UI over plain HTTP (no browser): content types, the
// ETag/no-cache revalidation, the security headers, the index page for browser navigation only,
// and --server.basePath (everything under the prefix, nothing outside it).

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, get, post, startServer, test } from './lib/server.mjs';

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
const ASSETS = [
    ['/style.css', 'text/css; charset=utf-8'],
    ['/app.js', 'text/javascript; charset=utf-8'],
    ['/api.js', 'text/javascript; charset=utf-8'],
    ['/conversation.js', 'text/javascript; charset=utf-8'],
    ['/markdown.js', 'text/javascript; charset=utf-8'],
];

describe('the UI at the root', () => {
    let srv;
    before(async () => {
        srv = await startServer({ args: ['--server.storage.type', 'memory'] });
    });
    after(() => cleanup(srv));

    test('GET / is the index page with its base at the root and the security headers', async () => {
        const r = await get(srv, '/');
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.equal(r.headers.get('cache-control'), 'no-cache');
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
        assert.match(r.headers.get('etag'), /^"[0-9a-f]{16}"$/);
        assert.match(r.text, /<base href="\/">/);
        assert.match(r.text, /<script type="module" src="app\.js"><\/script>/);
        assert.ok(!/https?:\/\//.test(r.text), 'no external URL in the page');
        assert.equal((await get(srv, '/index.html')).text, r.text);
    });

    test('every asset with its type; ETag revalidation answers 304', async () => {
        for (const [p, type] of ASSETS) {
            const r = await get(srv, p);
            assert.equal(r.status, 200, p);
            assert.equal(r.headers.get('content-type'), type, p);
            assert.ok(r.text.length > 100, p);
            assert.ok(!/(from\s*|import\s*\(?\s*|url\(\s*)['"]?(https?:)?\/\//.test(r.text), `${p} loads nothing from the network`);
            const etag = r.headers.get('etag');
            const again = await get(srv, p, { headers: { 'if-none-match': etag } });
            assert.equal(again.status, 304, p);
            assert.equal(again.text, '');
        }
    });

    test('HEAD gives the headers without a body', async () => {
        const r = await fetch(`${srv.url}/app.js`, { method: 'HEAD' });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
        assert.ok(Number(r.headers.get('content-length')) > 100);
        assert.equal(await r.text(), '');
    });

    test('unknown paths: the page for browser navigation, JSON 404 for everyone else', async () => {
        const nav = await get(srv, '/some/deep/link', { headers: HTML });
        assert.equal(nav.status, 200);
        assert.match(nav.text, /<base href="\/">/);
        const api = await get(srv, '/some/deep/link');
        assert.equal(api.status, 404);
        assert.deepEqual(api.json, { error: 'Cannot GET /some/deep/link' });
        const missingAsset = await get(srv, '/missing.js', { headers: HTML });
        assert.equal(missingAsset.status, 404, 'a path with an extension is never the page');
        const apiPath = await get(srv, '/api/v1/nope', { headers: HTML });
        assert.equal(apiPath.status, 404);
        assert.deepEqual(apiPath.json, { error: 'Cannot GET /api/v1/nope' });
        const postRoot = await post(srv, '/', {});
        assert.equal(postRoot.status, 404);
        assert.deepEqual(postRoot.json, { error: 'Cannot POST /' });
    });
});

describe('--server.basePath /agents', () => {
    let srv;
    let fake;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake, args: ['--server.basePath', '/agents/', '--server.storage.type', 'memory'] });
    });
    after(() => cleanup(srv, fake));

    test('the page and assets are under the prefix, with the base written into the page', async () => {
        for (const p of ['/agents', '/agents/', '/agents/index.html']) {
            const r = await get(srv, p);
            assert.equal(r.status, 200, p);
            assert.match(r.text, /<base href="\/agents\/">/, p);
        }
        assert.equal((await get(srv, '/agents/app.js')).status, 200);
        assert.equal((await get(srv, '/agents/sessions/x', { headers: HTML })).status, 200);
    });

    test('every API route is under the prefix', async () => {
        assert.deepEqual((await get(srv, '/agents/api/v1/health')).json, { status: 'ok' });
        const c = await post(srv, '/agents/api/v1/sessions/create', {});
        assert.equal(c.status, 201);
        const list = await get(srv, '/agents/api/v1/sessions');
        assert.ok(list.json.sessions.some((s) => s.id === c.json.sessionId));
        const seed = await post(srv, '/agents/api/sessions/create', {});
        assert.equal(seed.status, 201);
    });

    test('nothing answers outside the prefix', async () => {
        for (const p of ['/', '/app.js', '/api/v1/health', '/agentsX/api/v1/health', '/agent', '/other/agents/']) {
            const r = await get(srv, p, { headers: HTML });
            assert.equal(r.status, 404, p);
            assert.deepEqual(r.json, { error: `Cannot GET ${p}` }, p);
        }
        assert.equal((await post(srv, '/api/v1/sessions/create', {})).status, 404);
    });
});

describe('a base path that is not a plain URL path', () => {
    test('is refused with an error in the log, and the server stays at the root', async () => {
        const srv = await startServer({ args: ['--server.basePath', '/a"b<c', '--server.storage.type', 'memory'] });
        try {
            assert.equal((await get(srv, '/api/v1/health')).status, 200);
            assert.match((await get(srv, '/')).text, /<base href="\/">/);
            assert.match(srv.stderr, /ignoring server\.basePath/);
        } finally {
            await cleanup(srv);
        }
    });
});
