// SPDX-License-Identifier: MIT
// Access rules (issue 9) against the real binary with raw sockets, fetch and the official
// socket.io-client: the Host allow-list on every kind of request, the Origin check and CORS,
// JSON-only bodies, CSRF tokens (valid, forged, expired, minted by another node), security
// headers, the access token (generated off loopback, Bearer, ?token=, the sign-in cookie, a
// wrong one, a short one, the failure limit) and Socket.IO's CONNECT auth.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe } from 'node:test';
import { io } from 'socket.io-client';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, get, post, q, rawConnection, request, startServer, test, waitFor } from './lib/server.mjs';

const SECRET = 'test-secret-0123456789abcdef-access';

/** One raw request; resolves the first parsed response. */
async function raw(srv, text) {
    const c = await rawConnection(srv);
    try {
        await c.write(text);
        const [r] = await c.responses(1);
        return r;
    } finally {
        c.close();
    }
}

const GET = (path, host, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
const WS_UPGRADE =
    'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** The CSRF token format of the server, minted here with the shared secret. */
function mintCsrf(secret, expiryMs) {
    const mac = crypto.createHmac('sha256', secret).update(`csrf\n${expiryMs}`).digest('hex');
    return `${expiryMs}.${mac}`;
}

async function sessionCount(srv, headers = {}) {
    const r = await get(srv, '/api/v1/sessions', { headers });
    assert.equal(r.status, 200, r.text);
    return r.json.sessions.length;
}

function sioConnect(srv, opts = {}) {
    const socket = io(srv.url, { reconnection: false, forceNew: true, timeout: 5000, ...opts });
    return new Promise((resolve) => {
        socket.once('connect', () => resolve({ socket, ok: true }));
        socket.once('connect_error', (e) => resolve({ socket, ok: false, error: e }));
    });
}

describe('loopback defaults: Host, Origin, CORS, content types, CSRF, headers', () => {
    let srv, fake;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({
            fake,
            args: ['--server.secret', SECRET, '--server.allowedHosts', 'agents.example.com,other.test:8080,.corp.test', '--server.allowedOrigins', 'https://agents.example.com'],
            env: { TARKO_ALLOWED_HOSTS: 'env.test' },
        });
    });
    after(() => cleanup(srv, fake));

    test('a foreign Host gets 403 on the API, SSE, Socket.IO polling and WebSocket and the UI', async () => {
        const sid = (await post(srv, '/api/v1/sessions/create')).json.sessionId;
        const evil = 'attacker.rebind.example';
        const cases = [
            GET('/api/v1/sessions', evil),
            GET(`/api/v1/sessions/events/stream?sessionId=${sid}`, `${evil}:${srv.port}`),
            GET('/socket.io/?EIO=4&transport=polling', evil),
            GET('/socket.io/?EIO=4&transport=websocket', evil, WS_UPGRADE),
            GET('/', evil, 'Accept: text/html\r\n'),
            `POST /api/v1/oneshot/query HTTP/1.1\r\nHost: ${evil}\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"query":"x"}`,
            'GET /api/v1/sessions HTTP/1.0\r\n\r\n', // no Host at all
        ];
        for (const text of cases) {
            const r = await raw(srv, text);
            assert.equal(r.status, 403, text);
            const body = JSON.parse(r.body);
            assert.equal(body.error, 'Invalid Host header');
            assert.match(body.message, /TARKO_ALLOWED_HOSTS/);
            assert.equal(r.headers['x-content-type-options'], 'nosniff');
        }
        assert.equal(fake.requests.length, 0, 'no model call');
    });

    test('IP literals, localhost, *.localhost and the allowed hosts are accepted', async () => {
        const ok = ['127.0.0.1', `127.0.0.1:${srv.port}`, `[::1]:${srv.port}`, `localhost:${srv.port}`, 'app.localhost',
            'agents.example.com', 'AGENTS.example.com:443', 'other.test:8080', 'env.test', 'corp.test', 'a.b.corp.test:1', '10.1.2.3'];
        for (const host of ok) assert.equal((await raw(srv, GET('/api/v1/sessions', host))).status, 200, host);
        const bad = ['other.test:9090', 'example.com', 'localhost.attacker.test', 'notcorp.test', 'a@127.0.0.1', '127.0.0.1:99999', ''];
        for (const host of bad) assert.equal((await raw(srv, GET('/api/v1/sessions', host))).status, 403, host);
    });

    test('a cross-origin page can neither run, read, nor delete: text/plain, JSON, WebSocket', async () => {
        const before = await sessionCount(srv);
        const evil = { origin: 'http://evil.example:3000' };
        const attempts = [
            ['POST', '/api/v1/oneshot/query', JSON.stringify({ query: q('text', 'run id') }), { ...evil, 'content-type': 'text/plain' }],
            ['POST', '/api/v1/oneshot/query', JSON.stringify({ query: q('text', 'run id') }), { ...evil, 'content-type': 'application/json' }],
            ['POST', '/api/v1/sessions/create', undefined, evil],
            ['GET', '/api/v1/sessions', undefined, evil],
            ['POST', '/api/v1/sessions/delete', '{}', { ...evil, 'content-type': 'application/json' }],
            ['POST', '/api/v1/sessions/tool-approval', '{"sessionId":"x","toolCallId":"y","approved":true}', { ...evil, 'content-type': 'application/json' }],
            ['GET', '/api/v1/csrf-token', undefined, evil],
            ['GET', '/api/v1/sessions', undefined, { origin: 'null' }],
        ];
        for (const [method, p, body, headers] of attempts) {
            const r = await request(srv, method, p, body, { headers });
            assert.equal(r.status, 403, `${method} ${p}`);
            assert.deepEqual(r.json.error, 'Origin not allowed');
            assert.equal(r.headers.get('access-control-allow-origin'), null);
        }
        const ws = await raw(srv, GET('/socket.io/?EIO=4&transport=websocket', `127.0.0.1:${srv.port}`, `Origin: http://evil.example\r\n${WS_UPGRADE}`));
        assert.equal(ws.status, 403, 'no 101 for a cross-site WebSocket');
        assert.equal(await sessionCount(srv), before, 'no session created');
        assert.equal(fake.requests.length, 0, 'nothing reached the model');
    });

    test('same origin and listed origins work, with CORS echoing the origin', async () => {
        for (const origin of [srv.url, `http://localhost:${srv.port}`, 'https://agents.example.com']) {
            const host = origin === 'https://agents.example.com' ? '127.0.0.1' : new URL(origin).host;
            const r = await raw(srv, `POST /api/v1/sessions/create HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\nContent-Length: 0\r\n\r\n`);
            assert.equal(r.status, 201, origin);
            assert.equal(r.headers['access-control-allow-origin'], origin);
            assert.match(r.headers.vary, /Origin/);
        }
        const ws = await raw(srv, GET('/socket.io/?EIO=4&transport=websocket', `127.0.0.1:${srv.port}`, `Origin: ${srv.url}\r\n${WS_UPGRADE}`));
        assert.equal(ws.status, 101, 'a same-origin WebSocket upgrades');
    });

    test('JSON routes refuse other content types with 415; bodyless POSTs are fine', async () => {
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
            const r = await request(srv, 'POST', '/api/v1/oneshot/query', JSON.stringify({ query: 'hi' }), { headers: { 'content-type': ct } });
            assert.equal(r.status, 415, ct);
            assert.deepEqual(r.json, { error: 'Content-Type must be application/json' });
        }
        const ok = await request(srv, 'POST', '/api/v1/sessions/create', '{}', { headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
        assert.equal(ok.status, 201);
        assert.equal((await request(srv, 'POST', '/api/v1/sessions/create')).status, 201);
        assert.equal(fake.requests.length, 0);
    });

    test('CSRF tokens: issued, accepted, forged and expired ones refused, stateless across nodes', async () => {
        const t = await get(srv, '/api/v1/csrf-token');
        assert.equal(t.status, 200);
        const { token } = t.json;
        assert.match(token, /^\d+\.[0-9a-f]{64}$/);
        const exp = Number(token.split('.')[0]);
        assert.ok(exp > Date.now() + 23 * 3600e3 && exp <= Date.now() + 24 * 3600e3 + 1000, 'expires in 24 h');
        const create = (tok, extra = {}) => request(srv, 'POST', '/api/v1/sessions/create', undefined, { headers: { 'x-csrf-token': tok, ...extra } });
        assert.equal((await create(token)).status, 201);
        assert.equal((await create(token, { origin: srv.url })).status, 201);
        const forged = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
        const expired = mintCsrf(SECRET, Date.now() - 1000);
        const otherKey = mintCsrf('another-secret-of-another-server', Date.now() + 3600e3);
        for (const bad of [forged, expired, otherKey, 'garbage', `${exp}.`]) {
            const r = await create(bad);
            assert.equal(r.status, 403, bad);
            assert.equal(r.json.error, 'CSRF token missing or invalid');
            assert.match(r.json.message, /csrf-token/);
        }
        // minted with the shared secret (as another node would): accepted
        assert.equal((await create(mintCsrf(SECRET, Date.now() + 3600e3))).status, 201);
    });

    test('security headers on API, SSE, errors and the UI', async () => {
        const sid = (await post(srv, '/api/v1/sessions/create')).json.sessionId;
        const ctrl = new AbortController();
        const sse = await fetch(`${srv.url}/api/v1/sessions/events/stream?sessionId=${sid}`, { signal: ctrl.signal });
        const ui = await fetch(`${srv.url}/`, { headers: { accept: 'text/html' } });
        for (const r of [await get(srv, '/api/v1/health'), await get(srv, '/api/nope'), sse, ui]) {
            assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
            assert.equal(r.headers.get('x-frame-options'), 'DENY');
            assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
        }
        assert.match(ui.headers.get('content-security-policy'), /frame-ancestors 'none'/);
        ctrl.abort();
    });
});

describe('server.csrf required', () => {
    let srv;
    before(async () => {
        srv = await startServer({ args: ['--server.csrf', 'required', '--server.storage.type', 'memory'] });
    });
    after(() => cleanup(srv));

    test('browser writes need the header; reads and non-browser clients do not', async () => {
        const origin = { origin: srv.url };
        assert.equal((await request(srv, 'POST', '/api/v1/sessions/create', undefined, { headers: origin })).status, 403);
        const { token } = (await get(srv, '/api/v1/csrf-token', { headers: origin })).json;
        assert.equal((await request(srv, 'POST', '/api/v1/sessions/create', undefined, { headers: { ...origin, 'x-csrf-token': token } })).status, 201);
        assert.equal((await get(srv, '/api/v1/sessions', { headers: origin })).status, 200);
        assert.equal((await post(srv, '/api/v1/sessions/create')).status, 201, 'curl-like client without Origin');
    });
});

describe('token authentication', () => {
    let fake;
    before(async () => {
        fake = await startFakeOpenAI();
    });
    after(() => cleanup(fake));

    test('bound to 0.0.0.0: a token is generated, printed once as a sign-in link, and required', async () => {
        const srv = await startServer({ fake, args: ['--host', '0.0.0.0'] });
        try {
            const m = await waitFor(() => /sign in: http:\/\/127\.0\.0\.1:(\d+)\/\?token=([0-9a-f]{64})\n/.exec(srv.stdout), { what: 'sign-in line' });
            assert.equal(Number(m[1]), srv.port);
            const token = m[2];
            assert.equal(srv.stdout.split(token).length, 2, 'printed once');
            assert.ok(!srv.stderr.includes(token), 'never in the logs');
            assert.match(srv.stderr, /reachable from the network/);

            // public
            assert.equal((await get(srv, '/api/v1/health')).status, 200);
            assert.equal((await fetch(`${srv.url}/`, { headers: { accept: 'text/html' } })).status, 200);
            assert.equal((await get(srv, '/app.js')).status, 200);
            // everything else
            for (const [method, p] of [['GET', '/api/v1/sessions'], ['POST', '/api/v1/sessions/create'], ['GET', '/api/v1/csrf-token'], ['POST', '/api/sessions/create']]) {
                const r = await request(srv, method, p);
                assert.equal(r.status, 401, `${method} ${p}`);
                assert.equal(r.json.error, 'Authentication required');
            }
            const bearer = { authorization: `Bearer ${token}` };
            assert.equal((await get(srv, '/api/v1/sessions', { headers: bearer })).status, 200);
            assert.equal((await get(srv, `/api/v1/sessions?token=${token}`)).status, 200);
            const sid = (await request(srv, 'POST', '/api/v1/sessions/create', undefined, { headers: bearer })).json.sessionId;
            const run = await request(srv, 'POST', '/api/v1/sessions/query', JSON.stringify({ sessionId: sid, query: q('text', 'with token') }), {
                headers: { ...bearer, 'content-type': 'application/json' },
            });
            assert.equal(run.status, 200, run.text);
            // EventSource-style: the token in the query string
            const sse = await fetch(`${srv.url}/api/v1/sessions/events/stream?sessionId=${sid}&token=${token}`);
            assert.equal(sse.status, 200);
            assert.match(await sse.text(), /agent_run_end/);

            // the sign-in link sets an HttpOnly, SameSite=Strict cookie and drops the token from the address
            const link = await fetch(`${srv.url}/?token=${token}`, { redirect: 'manual' });
            assert.equal(link.status, 303);
            assert.equal(link.headers.get('location'), '/');
            const setCookie = link.headers.get('set-cookie');
            assert.match(setCookie, /^tarko_auth=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict/);
            assert.ok(!setCookie.includes(token), 'the cookie does not carry the token');
            const cookie = setCookie.split(';')[0];
            assert.equal((await get(srv, '/api/v1/sessions', { headers: { cookie } })).status, 200);
            assert.equal((await get(srv, '/api/v1/sessions', { headers: { cookie: 'tarko_auth=' + '0'.repeat(64) } })).status, 401);

            // wrong tokens
            const wrong = await get(srv, '/api/v1/sessions', { headers: { authorization: 'Bearer ' + 'f'.repeat(64) } });
            assert.equal(wrong.status, 401);
            assert.equal((await fetch(`${srv.url}/?token=nope-nope-nope-nope`)).status, 401);
        } finally {
            await cleanup(srv);
        }
    });

    test('failed attempts are limited per address: 429 with Retry-After, even for the right token', async () => {
        const token = 'a-configured-token-of-32-chars!!';
        const srv = await startServer({ args: ['--auth-token', token, '--server.storage.type', 'memory'] });
        try {
            assert.ok(!/sign in:/.test(srv.stdout), 'a configured token is not printed');
            let statuses = [];
            for (let i = 0; i < 12; i++) statuses.push((await get(srv, '/api/v1/sessions', { headers: { authorization: `Bearer wrong-token-${i}-xxxxxxxx` } })).status);
            assert.deepEqual(statuses, [...Array(10).fill(401), 429, 429]);
            const r = await get(srv, '/api/v1/sessions', { headers: { authorization: `Bearer ${token}` } });
            assert.equal(r.status, 429);
            assert.ok(Number(r.headers.get('retry-after')) >= 1 && Number(r.headers.get('retry-after')) <= 60);
            assert.equal((await get(srv, '/api/v1/health')).status, 200, 'public routes stay open');
        } finally {
            await cleanup(srv);
        }
    });

    test('a token shorter than 16 characters stops the start', async () => {
        for (const args of [['--auth-token', 'short'], ['--server.auth.token', '123456789012345']]) {
            await assert.rejects(startServer({ args }), (e) => /at least 16 characters/.test(e.message));
        }
        await assert.rejects(startServer({ args: ['--server.auth.mode', 'sometimes'] }), /unknown server\.auth\.mode/);
    });

    test('server.auth.mode: always on loopback, never on 0.0.0.0 (with a warning); TARKO_AUTH_TOKEN', async () => {
        const always = await startServer({ args: ['--server.auth.mode', 'always', '--server.storage.type', 'memory'] });
        try {
            assert.match(always.stdout, /sign in: http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}/);
            assert.equal((await get(always, '/api/v1/sessions')).status, 401);
        } finally {
            await cleanup(always);
        }
        const never = await startServer({ args: ['--host', '0.0.0.0', '--server.auth.mode', 'never', '--server.storage.type', 'memory'] });
        try {
            assert.equal((await get(never, '/api/v1/sessions')).status, 200);
            assert.match(never.stderr, /anyone on the network/);
        } finally {
            await cleanup(never);
        }
        const env = await startServer({ args: ['--server.storage.type', 'memory'], env: { TARKO_AUTH_TOKEN: 'token-from-the-environment' } });
        try {
            assert.equal((await get(env, '/api/v1/sessions')).status, 401);
            assert.equal((await get(env, '/api/v1/sessions', { headers: { authorization: 'Bearer token-from-the-environment' } })).status, 200);
        } finally {
            await cleanup(env);
        }
    });

    test('socket.io-client: auth {token}, a Bearer header or ?token= connect; nothing or a wrong token does not', async () => {
        const token = 'socket-io-token-0123456789';
        const srv = await startServer({ fake, args: ['--auth-token', token] });
        const sockets = [];
        try {
            for (const opts of [{ auth: { token } }, { extraHeaders: { authorization: `Bearer ${token}` } }, { query: { token } }, { auth: { token }, transports: ['websocket'] }]) {
                const c = await sioConnect(srv, opts);
                sockets.push(c.socket);
                assert.equal(c.ok, true, `${JSON.stringify(opts)}: ${c.error}`);
            }
            // a connected client can use the server
            const sid = (await request(srv, 'POST', '/api/v1/sessions/create', undefined, { headers: { authorization: `Bearer ${token}` } })).json.sessionId;
            const joined = await sockets[0].timeout(5000).emitWithAck('join-session', sid);
            assert.deepEqual(joined, { success: true });
            for (const opts of [{}, { auth: { token: 'wrong-token-wrong-token' } }, { transports: ['websocket'] }]) {
                const c = await sioConnect(srv, opts);
                sockets.push(c.socket);
                assert.equal(c.ok, false, JSON.stringify(opts));
                assert.match(String(c.error && c.error.message), /Authentication required|401|websocket error/);
            }
            // raw: polling without credentials opens Engine.IO, but CONNECT without auth is refused
            const open = await get(srv, '/socket.io/?EIO=4&transport=polling');
            assert.equal(open.status, 200);
            const esid = JSON.parse(open.text.slice(1)).sid;
            const pkt = await request(srv, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${esid}`, '40', { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
            assert.equal(pkt.status, 200);
            const ans = await get(srv, `/socket.io/?EIO=4&transport=polling&sid=${esid}`);
            assert.match(ans.text, /^44\{"message":"Authentication required"\}/);
            // wrong HTTP credentials: 401 at once
            assert.equal((await get(srv, '/socket.io/?EIO=4&transport=polling&token=wrong-token-wrong-token')).status, 401);
        } finally {
            for (const s of sockets) s.close();
            await cleanup(srv);
        }
    });
});
