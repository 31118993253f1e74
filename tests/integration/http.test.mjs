// SPDX-License-Identifier: MIT
// HTTP/1.1 transport on raw sockets: keep-alive, pipelining, chunked request bodies, 413, 431,
// malformed requests, slowloris, and the server staying healthy after each of them.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
    cleanup,
    createSession,
    get,
    parseResponses,
    post,
    rawConnection,
    sleep,
    startServer,
    test,
    waitFor,
} from './lib/server.mjs';

let fake;
let srv;
const MAX_BODY = 65536;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({
        fake,
        args: ['--server.headerTimeoutMs', '500', '--server.maxBodyBytes', String(MAX_BODY)],
    });
});
after(() => cleanup(srv, fake));

const HEALTH = 'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

function postReq(p, body, extra = '') {
    return `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

async function assertHealthy() {
    const r = await get(srv, '/api/v1/health');
    assert.equal(r.status, 200);
}

describe('connection reuse', () => {
    test('keep-alive: several requests one after another on one socket', async () => {
        const c = await rawConnection(srv);
        try {
            for (let i = 1; i <= 4; i++) {
                await c.write(HEALTH);
                const rs = await c.responses(i);
                assert.equal(rs.length, i);
                assert.equal(rs[i - 1].status, 200);
                assert.deepEqual(JSON.parse(rs[i - 1].body), { status: 'ok' });
                assert.equal(rs[i - 1].headers['x-content-type-options'], 'nosniff');
            }
            assert.equal(c.closed, false, 'the connection stays open');
        } finally {
            c.close();
        }
    });

    test('pipelined requests are answered in order', async () => {
        const c = await rawConnection(srv);
        try {
            const bodyAbort = JSON.stringify({ sessionId: 'AAAAAAAAAAAAAAAAAAAAA' });
            await c.write(
                HEALTH +
                    postReq('/api/sessions/create', '{}') +
                    'GET /pipelined/missing HTTP/1.1\r\nHost: localhost\r\n\r\n' +
                    postReq('/api/sessions/abort', bodyAbort) +
                    postReq('/api/sessions/query', '{"sessionId":') +
                    HEALTH,
            );
            const rs = await c.responses(6);
            assert.deepEqual(rs.map((r) => r.status), [200, 201, 404, 404, 400, 200]);
            assert.deepEqual(JSON.parse(rs[0].body), { status: 'ok' });
            assert.match(JSON.parse(rs[1].body).sessionId, /^[A-Za-z0-9_-]{21}$/);
            assert.deepEqual(JSON.parse(rs[2].body), { error: 'Cannot GET /pipelined/missing' });
            assert.deepEqual(JSON.parse(rs[3].body), { error: 'Session not found' });
            assert.deepEqual(JSON.parse(rs[4].body), { error: 'Invalid JSON body' });
        } finally {
            c.close();
        }
    });

    test('pipelined requests split at odd byte boundaries', async () => {
        const c = await rawConnection(srv);
        try {
            const all = HEALTH + postReq('/api/sessions/create', '{}') + HEALTH;
            for (let i = 0; i < all.length; i += 7) {
                await c.write(all.slice(i, i + 7));
                if (i % 35 === 0) await sleep(5);
            }
            const rs = await c.responses(3);
            assert.deepEqual(rs.map((r) => r.status), [200, 201, 200]);
        } finally {
            c.close();
        }
    });

    test('Connection: close is honoured', async () => {
        const c = await rawConnection(srv);
        await c.write('GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        await c.waitClose(3000);
        const { responses } = parseResponses(c.data);
        assert.equal(responses.length, 1);
        assert.equal(responses[0].status, 200);
    });
});

describe('request bodies', () => {
    test('chunked request body is decoded', async () => {
        const sid = await createSession(srv);
        const body = JSON.stringify({ sessionId: sid });
        const parts = [body.slice(0, 5), body.slice(5, 17), body.slice(17)];
        let req = 'POST /api/sessions/abort HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
        for (const p of parts) req += `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`;
        req += '0\r\n\r\n';
        const c = await rawConnection(srv);
        try {
            await c.write(req);
            const [r] = await c.responses(1);
            assert.equal(r.status, 200, r.body);
            assert.deepEqual(JSON.parse(r.body), { success: false });
            // and the connection is still usable
            await c.write(HEALTH);
            const rs = await c.responses(2);
            assert.equal(rs[1].status, 200);
        } finally {
            c.close();
        }
    });

    test('body over --server.maxBodyBytes -> 413 (Content-Length)', async () => {
        const body = JSON.stringify({ sessionId: 'x', query: 'a'.repeat(MAX_BODY + 100) });
        const r = await post(srv, '/api/sessions/query', body).catch((e) => ({ error: e }));
        if (r.error) {
            // the server may close after answering; read it on a raw socket instead
            const c = await rawConnection(srv);
            await c.write(postReq('/api/sessions/query', body));
            const [resp] = await c.responses(1);
            c.close();
            assert.equal(resp.status, 413);
            assert.deepEqual(JSON.parse(resp.body), { error: 'Request body too large' });
        } else {
            assert.equal(r.status, 413);
            assert.deepEqual(r.json, { error: 'Request body too large' });
        }
        await assertHealthy();
    });

    test('a Content-Length over the limit is refused before the body arrives', async () => {
        const c = await rawConnection(srv);
        try {
            await c.write(
                `POST /api/sessions/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY * 100}\r\n\r\n{"a":`,
            );
            const [resp] = await c.responses(1, 3000);
            assert.equal(resp.status, 413);
            assert.deepEqual(JSON.parse(resp.body), { error: 'Request body too large' });
        } finally {
            c.close();
        }
    });

    test('chunked body over the limit -> 413', async () => {
        const c = await rawConnection(srv);
        try {
            await c.write('POST /api/sessions/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
            const piece = 'a'.repeat(8192);
            for (let sent = 0; sent <= MAX_BODY + 8192 && !c.closed && !c.data; sent += piece.length) {
                await c.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
            }
            const [resp] = await c.responses(1, 3000);
            assert.equal(resp.status, 413);
            assert.deepEqual(JSON.parse(resp.body), { error: 'Request body too large' });
        } finally {
            c.close();
        }
        await assertHealthy();
    });

    test('a body just under the limit is accepted', async () => {
        const sid = await createSession(srv);
        const pad = 'x'.repeat(MAX_BODY - 200);
        const r = await post(srv, '/api/sessions/abort', JSON.stringify({ sessionId: sid, pad }));
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: false });
    });
});

describe('hostile or broken requests', () => {
    test('header over 16 KiB -> 431', async () => {
        const c = await rawConnection(srv);
        try {
            await c.write(`GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'b'.repeat(20000)}\r\n\r\n`);
            await c.waitFor((x) => /^HTTP\/1\.1 \d{3}/.test(x.data), 3000, 'a status line').catch(() => {});
            assert.match(c.data, /^HTTP\/1\.1 431 /);
        } finally {
            c.close();
        }
        await assertHealthy();
    });

    test('many headers adding up to over 16 KiB -> 431', async () => {
        const c = await rawConnection(srv);
        try {
            let h = '';
            for (let i = 0; i < 400; i++) h += `X-H${i}: ${'v'.repeat(50)}\r\n`;
            await c.write(`GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n${h}\r\n`);
            await c.waitFor((x) => /^HTTP\/1\.1 \d{3}/.test(x.data), 3000, 'a status line').catch(() => {});
            assert.match(c.data, /^HTTP\/1\.1 431 /);
        } finally {
            c.close();
        }
    });

    test('malformed request line -> 400', async () => {
        for (const bad of ['GARBAGE\r\n\r\n', 'GET /x HTTP/9.Z\r\n\r\n', '\x00\x01\x02 binary\r\n\r\n']) {
            const c = await rawConnection(srv);
            try {
                await c.write(bad);
                await c.waitFor((x) => x.data.length > 0 || x.closed, 3000, 'an answer').catch(() => {});
                assert.match(c.data, /^HTTP\/1\.1 400 /, `for ${JSON.stringify(bad)}`);
                await c.waitClose(3000);
            } finally {
                c.close();
            }
        }
        await assertHealthy();
    });

    test('invalid chunked encoding -> 400', async () => {
        const c = await rawConnection(srv);
        try {
            await c.write('POST /api/sessions/abort HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n');
            await c.waitFor((x) => x.data.length > 0 || x.closed, 3000, 'an answer').catch(() => {});
            assert.match(c.data, /^HTTP\/1\.1 400 /);
        } finally {
            c.close();
        }
    });

    test('slowloris: a request head trickling in is dropped after --server.headerTimeoutMs', async () => {
        const c = await rawConnection(srv);
        try {
            await c.write('GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n');
            let i = 0;
            const trickle = setInterval(() => {
                if (!c.closed) c.sock.write(`X-S${i++}: y\r\n`);
            }, 100);
            try {
                const ms = await c.waitClose(4000);
                assert.ok(ms >= 400, `closed after ${ms} ms, sooner than the 500 ms header timeout`);
                assert.ok(ms < 3000, `closed after ${ms} ms`);
            } finally {
                clearInterval(trickle);
            }
            assert.ok(!/^HTTP\/1\.1 200/.test(c.data), 'the request must not be served');
        } finally {
            c.close();
        }
        await assertHealthy();
    });

    test('a silent connection is dropped after the header timeout too', async () => {
        const c = await rawConnection(srv);
        try {
            const ms = await c.waitClose(4000);
            assert.ok(ms < 3000, `closed after ${ms} ms`);
        } finally {
            c.close();
        }
    });

    test('many half-open connections do not block normal requests', async () => {
        const conns = [];
        try {
            for (let i = 0; i < 50; i++) {
                const c = await rawConnection(srv);
                await c.write('GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n');
                conns.push(c);
            }
            await assertHealthy();
            const sid = await createSession(srv);
            assert.ok(sid);
        } finally {
            for (const c of conns) c.close();
        }
    });
});

describe('connection limits and timeouts', () => {
    test('--server.idleTimeoutMs closes an idle keep-alive connection', async () => {
        const s = await startServer({ args: ['--server.idleTimeoutMs', '300', '--server.headerTimeoutMs', '5000'] });
        try {
            const c = await rawConnection(s);
            await c.write(HEALTH);
            await c.responses(1);
            const answeredAt = Date.now();
            await c.waitClose(4000);
            const idle = c.closedAt - answeredAt;
            assert.ok(idle >= 200, `closed ${idle} ms after the response, before the idle timeout`);
            assert.ok(idle < 2500, `closed ${idle} ms after the response`);
        } finally {
            await s.stop();
        }
    });

    test('--server.maxConnections: extra connections are refused, the server recovers', async () => {
        const s = await startServer({ args: ['--server.maxConnections', '3'] });
        const conns = [];
        try {
            for (let i = 0; i < 3; i++) {
                const c = await rawConnection(s);
                await c.write(HEALTH);
                await c.responses(1);
                conns.push(c);
            }
            const extra = await rawConnection(s);
            conns.push(extra);
            await extra.write(HEALTH).catch(() => {});
            await extra.waitFor((x) => x.closed || /\r\n\r\n/.test(x.data), 3000, 'a refusal').catch(() => {});
            assert.ok(!/^HTTP\/1\.1 200/.test(extra.data), `the 4th connection was served: ${extra.data.slice(0, 80)}`);
            assert.ok(extra.closed || /^HTTP\/1\.1 503/.test(extra.data), `4th connection: ${JSON.stringify(extra.data.slice(0, 80))}`);
            for (const c of conns) c.close();
            conns.length = 0;
            await waitFor(async () => (await get(s, '/api/v1/health').catch(() => ({ status: 0 }))).status === 200, {
                timeoutMs: 3000,
                what: 'health after closing connections',
            });
        } finally {
            for (const c of conns) c.close();
            await s.stop();
        }
    });

    test('a streaming client that stops reading does not block the server', { timeout: 30000 }, async () => {
        const sid = await createSession(srv);
        const query = `[[scenario:slow delay=0 n=20000]] stuck reader ${Date.now()}`;
        const c = await rawConnection(srv);
        try {
            const body = JSON.stringify({ sessionId: sid, query });
            c.sock.pause();
            await c.write(postReq('/api/sessions/query/stream', body));
            // other requests are served while the stream piles up
            const rec = await fake.waitForRequest((r) => r.query === query, 5000);
            for (let i = 0; i < 5; i++) {
                await assertHealthy();
                await sleep(100);
            }
            await fake.waitForRequest((r) => r === rec && r.endedAt !== null, 20000);
        } finally {
            c.close();
        }
        // the run ends and the session takes a new query
        await waitFor(
            async () => {
                const r = await post(srv, '/api/sessions/query', { sessionId: sid, query: '[[scenario:text]] after stuck' });
                return r.status === 200;
            },
            { timeoutMs: 10000, intervalMs: 200, what: 'the session to become idle' },
        );
    });
});
