// SPDX-License-Identifier: MIT
// Every route of the server contract: success and error paths with exact status codes and bodies.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import {
    MESSAGE_ID_RE,
    UUID_V4_RE,
    cleanup,
    createSession,
    get,
    post,
    q,
    request,
    startServer,
    streamQuery,
    test,
} from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

describe('health and CORS', () => {
    test('GET /api/v1/health -> 200 {"status":"ok"} with the security headers, no CORS without Origin', async () => {
        const r = await get(srv, '/api/v1/health');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { status: 'ok' });
        assert.match(r.headers.get('content-type'), /^application\/json/);
        assert.equal(r.headers.get('access-control-allow-origin'), null);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(r.headers.get('x-frame-options'), 'DENY');
        assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
        assert.match(r.headers.get('vary') || '', /Origin/);
    });

    test('OPTIONS preflight -> 204 with CORS headers for the same origin only', async () => {
        const allowed = (r) => (r.headers.get('access-control-allow-headers') || '').toLowerCase().split(',').map((s) => s.trim());
        for (const p of ['/api/sessions/query', '/api/v1/health', '/anything/at/all']) {
            let r = await request(srv, 'OPTIONS', p, undefined, { headers: { origin: srv.url } });
            assert.equal(r.status, 204, p);
            assert.equal(r.text, '');
            assert.equal(r.headers.get('access-control-allow-origin'), srv.url);
            const methods = (r.headers.get('access-control-allow-methods') || '').split(',').map((s) => s.trim());
            for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']) assert.ok(methods.includes(m), `allow-methods has ${m}`);
            for (const h of ['content-type', 'authorization', 'x-csrf-token']) assert.ok(allowed(r).includes(h), `allow-headers has ${h}`);
            // another origin: refused, and nothing that would let a browser go on
            r = await request(srv, 'OPTIONS', p, undefined, {
                headers: {
                    origin: 'http://example.test',
                    'access-control-request-method': 'POST',
                    'access-control-request-headers': 'content-type,authorization',
                },
            });
            assert.equal(r.status, 403, p);
            assert.deepEqual(r.json.error, 'Origin not allowed');
            assert.equal(r.headers.get('access-control-allow-origin'), null);
            assert.equal(r.headers.get('access-control-allow-methods'), null);
        }
    });

    test('error responses carry CORS for an allowed origin too', async () => {
        const r = await post(srv, '/api/sessions/query', {}, { headers: { origin: srv.url } });
        assert.equal(r.status, 400);
        assert.equal(r.headers.get('access-control-allow-origin'), srv.url);
        const r2 = await get(srv, '/nope', { headers: { origin: srv.url } });
        assert.equal(r2.headers.get('access-control-allow-origin'), srv.url);
    });
});

describe('unknown routes and bad bodies', () => {
    test('unknown route -> 404 {"error":"Cannot <METHOD> <path>"}', async () => {
        let r = await get(srv, '/api/nope');
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Cannot GET /api/nope' });
        r = await post(srv, '/api/v1/does/not/exist', {});
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Cannot POST /api/v1/does/not/exist' });
        r = await request(srv, 'DELETE', '/api/sessions/create');
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Cannot DELETE /api/sessions/create' });
    });

    test('wrong method on a known path -> 404', async () => {
        const r = await get(srv, '/api/sessions/create');
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Cannot GET /api/sessions/create' });
        const r2 = await post(srv, '/api/v1/health', {});
        assert.equal(r2.status, 404);
        assert.deepEqual(r2.json, { error: 'Cannot POST /api/v1/health' });
    });

    test('malformed JSON body -> 400 {"error":"Invalid JSON body"}', async () => {
        for (const [p, body] of [
            ['/api/sessions/query', '{"sessionId": '],
            ['/api/sessions/query/stream', '{not json}'],
            ['/api/sessions/abort', '[1,2'],
            ['/api/sessions/create', '{"a":1'],
        ]) {
            const r = await post(srv, p, body);
            assert.equal(r.status, 400, `${p} ${r.text}`);
            assert.deepEqual(r.json, { error: 'Invalid JSON body' }, p);
        }
    });
});

describe('POST /api/sessions/create', () => {
    test('201 with a fresh 21-char nanoid each time', async () => {
        const ids = new Set();
        for (let i = 0; i < 5; i++) {
            const r = await post(srv, '/api/sessions/create', {});
            assert.equal(r.status, 201);
            assert.deepEqual(Object.keys(r.json), ['sessionId']);
            assert.match(r.json.sessionId, /^[A-Za-z0-9_-]{21}$/);
            ids.add(r.json.sessionId);
        }
        assert.equal(ids.size, 5);
    });

    test('body is ignored (no body, empty body, any JSON)', async () => {
        for (const body of [undefined, '', { foo: 1 }]) {
            const r = await post(srv, '/api/sessions/create', body);
            assert.equal(r.status, 201, `body ${JSON.stringify(body)}: ${r.text}`);
            assert.match(r.json.sessionId, /^[A-Za-z0-9_-]{21}$/);
        }
    });

    test('workspace that cannot be created -> 500 Failed to create session', async () => {
        // an isolating server whose workspace root is replaced by a regular file after start-up
        const s = await startServer({ fake, args: ['--isolate-sessions'] });
        try {
            fs.rmSync(s.workspace, { recursive: true, force: true });
            fs.writeFileSync(s.workspace, 'not a directory');
            const r = await post(s, '/api/sessions/create', {});
            assert.equal(r.status, 500);
            assert.equal(r.json.error, 'Failed to create session');
            assert.match(r.json.message, /^Failed to initialize agent workspace: /);
            // the server keeps working
            const h = await get(s, '/api/v1/health');
            assert.equal(h.status, 200);
        } finally {
            fs.rmSync(s.workspace, { force: true });
            fs.mkdirSync(s.workspace);
            await s.stop();
        }
    });
});

describe('POST /api/sessions/query (validation)', () => {
    test('no sessionId -> 400 Session ID is required (checked before query)', async () => {
        for (const body of [{}, { query: 'hi' }, { sessionId: '', query: 'hi' }, { sessionId: null }]) {
            const r = await post(srv, '/api/sessions/query', body);
            assert.equal(r.status, 400, JSON.stringify(body));
            assert.deepEqual(r.json, { error: 'Session ID is required' });
        }
    });

    test('falsy query -> 400 Query is required (checked before the session lookup)', async () => {
        for (const body of [{ sessionId: 'unknown-session-id' }, { sessionId: 'x', query: '' }, { sessionId: 'x', query: null }]) {
            const r = await post(srv, '/api/sessions/query', body);
            assert.equal(r.status, 400, JSON.stringify(body));
            assert.deepEqual(r.json, { error: 'Query is required' });
        }
    });

    test('unknown session -> 404 Session not found', async () => {
        const r = await post(srv, '/api/sessions/query', { sessionId: 'AAAAAAAAAAAAAAAAAAAAA', query: 'hi' });
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Session not found' });
    });
});

describe('POST /api/sessions/query/stream (validation)', () => {
    test('same 400/404 JSON validation as /query', async () => {
        const cases = [
            [{}, 400, 'Session ID is required'],
            [{ query: 'x' }, 400, 'Session ID is required'],
            [{ sessionId: 'nope' }, 400, 'Query is required'],
            [{ sessionId: 'nope', query: '' }, 400, 'Query is required'],
            [{ sessionId: 'nope', query: 'hello' }, 404, 'Session not found'],
        ];
        for (const [body, status, error] of cases) {
            const r = await post(srv, '/api/sessions/query/stream', body);
            assert.equal(r.status, status, JSON.stringify(body));
            assert.match(r.headers.get('content-type'), /^application\/json/);
            assert.deepEqual(r.json, { error });
        }
    });
});

describe('successful queries', () => {
    test('POST /api/sessions/query -> 200 {result: final assistant_message}', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'non-streaming hello');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['result']);
        const res = r.json.result;
        assert.equal(res.type, 'assistant_message');
        assert.match(res.id, UUID_V4_RE);
        assert.equal(typeof res.timestamp, 'number');
        assert.equal(res.content, textReply(query));
        assert.equal(res.finishReason, 'stop');
        assert.match(res.messageId, MESSAGE_ID_RE);
        assert.equal(typeof res.elapsedMs, 'number');
        assert.ok(res.toolCalls === undefined || (Array.isArray(res.toolCalls) && res.toolCalls.length === 0));
    });

    test('POST /api/sessions/:sessionId/query -> 200 {result}', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'restful-ish');
        const r = await post(srv, `/api/sessions/${sid}/query`, { query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.type, 'assistant_message');
        assert.equal(r.json.result.content, textReply(query));
    });

    test('odd session ids in the path -> 404 Session not found', async () => {
        for (const id of ['..', '%2E%2E', '..%2F..%2Fetc', '%00', 'a%20b', 'x'.repeat(300)]) {
            for (const p of [`/api/sessions/${id}/query`, `/api/sessions/${id}/abort`]) {
                const r = await post(srv, p, { query: 'hi' });
                // a NUL byte in the path may also be refused as a bad request
                const ok = r.status === 404 || (id === '%00' && r.status === 400);
                assert.ok(ok, `${p}: ${r.status} ${r.text}`);
                assert.equal(typeof r.json.error, 'string');
            }
        }
        for (const id of ['../..', '/etc/passwd', 'x'.repeat(300), 42, ['a'], { a: 1 }]) {
            const r = await post(srv, '/api/sessions/query', { sessionId: id, query: 'hi' });
            assert.ok(r.status === 404 || r.status === 400, `sessionId ${JSON.stringify(id)}: ${r.status} ${r.text}`);
        }
    });

    test('POST /api/sessions/:sessionId/query errors: unknown session 404, no query 500', async () => {
        let r = await post(srv, '/api/sessions/AAAAAAAAAAAAAAAAAAAAA/query', { query: 'hi' });
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Session not found' });
        const sid = await createSession(srv);
        r = await post(srv, `/api/sessions/${sid}/query`, {});
        assert.equal(r.status, 500);
        assert.equal(r.json.error, 'Failed to process query');
        // the session is still usable afterwards
        const query = q('text', 'after error');
        r = await post(srv, `/api/sessions/${sid}/query`, { query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.content, textReply(query));
    });

    test('a stream on one session does not affect another session', async () => {
        const a = await createSession(srv);
        const b = await createSession(srv);
        const qa = q('text', 'for A');
        const qb = q('text', 'for B');
        const [ra, rb] = await Promise.all([streamQuery(srv, a, qa), streamQuery(srv, b, qb)]);
        assert.equal(ra.events.at(-2).content, textReply(qa));
        assert.equal(rb.events.at(-2).content, textReply(qb));
    });
});

describe('abort routes', () => {
    test('POST /api/sessions/abort validation', async () => {
        let r = await post(srv, '/api/sessions/abort', {});
        assert.equal(r.status, 400);
        assert.deepEqual(r.json, { error: 'Session ID is required' });
        r = await post(srv, '/api/sessions/abort', { sessionId: 'AAAAAAAAAAAAAAAAAAAAA' });
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Session not found' });
    });

    test('abort of an idle session -> 200 {"success":false}', async () => {
        const sid = await createSession(srv);
        let r = await post(srv, '/api/sessions/abort', { sessionId: sid });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: false });
        r = await post(srv, `/api/sessions/${sid}/abort`);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: false });
        r = await post(srv, `/api/sessions/${sid}/abort`, {});
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: false });
    });

    test('POST /api/sessions/:sessionId/abort unknown -> 404', async () => {
        const r = await post(srv, '/api/sessions/AAAAAAAAAAAAAAAAAAAAA/abort');
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { error: 'Session not found' });
    });
});

describe('workspace', () => {
    test('without --isolate-sessions sessions share the workspace root', async () => {
        const sid = await createSession(srv);
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query: q('tool path=shared-root.txt') });
        assert.equal(r.status, 200, r.text);
        assert.ok(fs.existsSync(path.join(srv.workspace, 'shared-root.txt')));
        assert.ok(!fs.existsSync(path.join(srv.workspace, sid)));
    });
});
