// SPDX-License-Identifier: MIT
// Request ids and logs (issue 14): X-Request-Id / x-tt-logid taken or generated and echoed on
// every response, in the log lines of the request and in error bodies; the access log line
// (and --log.access false); --log.format json, one JSON object per line.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, createSession, get, post, q, startServer, TARS_BIN, TEST_API_KEY, test, waitFor } from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

describe('request ids', () => {
    test('generated on every response, a new one per request', async () => {
        const a = await get(srv, '/api/v1/health');
        const b = await get(srv, '/api/v1/health');
        assert.match(a.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
        assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
        assert.equal(a.headers.get('x-tt-logid'), null);
        // error bodies keep their shape when the client sent no id
        const e = await get(srv, '/api/v1/sessions/details?sessionId=nope');
        assert.deepEqual(e.json, { error: 'Session not found' });
        assert.match(e.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
    });

    test('taken from X-Request-Id or x-tt-logid, echoed, and in error bodies', async () => {
        const r = await get(srv, '/api/v1/health', { headers: { 'x-request-id': 'client-id-1' } });
        assert.equal(r.headers.get('x-request-id'), 'client-id-1');
        const e = await get(srv, '/api/v1/sessions/details?sessionId=nope', { headers: { 'x-request-id': 'client-id-2' } });
        assert.deepEqual(e.json, { error: 'Session not found', requestId: 'client-id-2' });
        const t = await post(srv, '/api/sessions/query', { sessionId: 'nope', query: 'x' }, { headers: { 'x-tt-logid': '20260101ABCDEF' } });
        assert.equal(t.status, 404);
        assert.equal(t.headers.get('x-tt-logid'), '20260101ABCDEF');
        assert.equal(t.headers.get('x-request-id'), '20260101ABCDEF');
        assert.equal(t.json.requestId, '20260101ABCDEF');
        // the structured errors of the final API (api__error2) carry it too
        const o = await get(srv, '/api/v1/sessions', { headers: { 'x-request-id': 'client-id-3', origin: 'http://evil.example' } });
        assert.equal(o.status, 403);
        assert.equal(o.json.error, 'Origin not allowed');
        assert.equal(o.json.requestId, 'client-id-3');
    });

    test('an id with spaces, quotes or over 64 chars is replaced', async () => {
        for (const bad of ['has space', 'quo"te', 'x'.repeat(65)]) {
            const r = await get(srv, '/api/v1/health', { headers: { 'x-request-id': bad } });
            assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
        }
        const ok = 'a'.repeat(64);
        assert.equal((await get(srv, '/api/v1/health', { headers: { 'x-request-id': ok } })).headers.get('x-request-id'), ok);
    });

    test('the access log line carries method, path, status, time, bytes and the id', async () => {
        const r = await post(srv, '/api/sessions/create', {}, { headers: { 'x-request-id': 'access-line-1' } });
        assert.equal(r.status, 201);
        await waitFor(() => srv.stderr.includes('(req access-line-1)'), { what: 'the access line' });
        const line = srv.stderr.split('\n').find((l) => l.includes('(req access-line-1)'));
        assert.match(line, / info: POST \/api\/sessions\/create 201 \d+\.\d ms \d+ bytes \(req access-line-1\)$/);
        // a line logged inside the request carries the id too
        await post(srv, '/api/sessions/query', 'not json', { headers: { 'x-request-id': 'bad-json-1' } });
        await waitFor(() => /invalid JSON body.*\(req bad-json-1\)/.test(srv.stderr), { what: 'the handler log line with the id' });
    });

    test('--log.access false: no access lines', async () => {
        const quiet = await startServer({ fake, args: ['--log.access', 'false'] });
        try {
            await get(quiet, '/api/v1/health', { headers: { 'x-request-id': 'quiet-1' } });
            await new Promise((r) => setTimeout(r, 200));
            assert.ok(!quiet.stderr.includes('quiet-1'), quiet.stderr);
        } finally {
            await cleanup(quiet);
        }
    });
});

describe('JSON logs', () => {
    let js;
    before(async () => {
        js = await startServer({ fake, args: ['--log.format', 'json'] });
    });
    after(() => cleanup(js));

    const lines = () => js.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

    test('every line is one JSON object with time, level and msg; requests add requestId', async () => {
        const sid = await createSession(js);
        const query = q('auth401');
        await post(js, '/api/sessions/query', { sessionId: sid, query }, { headers: { 'x-request-id': 'json-req-1' } });
        await waitFor(() => js.stderr.includes('json-req-1'), { what: 'a line of the request' });
        const all = lines();
        assert.ok(all.length >= 4);
        for (const l of all) {
            assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
            assert.ok(['error', 'warn', 'info', 'debug'].includes(l.level));
            assert.equal(typeof l.msg, 'string');
        }
        const access = all.find((l) => l.requestId === 'json-req-1' && l.msg.startsWith('POST /api/sessions/query 500'));
        assert.ok(access, JSON.stringify(all.slice(-5)));
        assert.ok(!js.stderr.includes(TEST_API_KEY), 'the API key is masked');
    });

    test('a session line carries sessionId', async () => {
        const sid = await createSession(js);
        await post(js, '/api/sessions/query', { sessionId: sid, query: q('text', 'stored') });
        await js.stop();
        js = await js.restart();
        const r = await get(js, `/api/v1/sessions/details?sessionId=${sid}`);
        assert.equal(r.status, 200);
        await waitFor(() => js.stderr.includes('loaded from storage'), { what: 'the load line' });
        const l = lines().find((x) => x.msg.includes('loaded from storage'));
        assert.equal(l.sessionId, sid);
        assert.match(l.requestId, /^[0-9a-f]{32}$/);
    });

    test('an unknown log.format is refused at start', () => {
        const r = spawnSync(TARS_BIN, ['--port', '0', '--log.format', 'xml'], { encoding: 'utf8', timeout: 10000 });
        assert.equal(r.status, 2);
        assert.match(r.stderr, /log.format must be text or json/);
    });
});
