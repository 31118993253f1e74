// SPDX-License-Identifier: MIT
// Caps with clear answers (issue 11): the model connection pool, the open-file limit (raised at
// start; server.maxConnections clamped to what fits), and session metadata (64 KiB, 413 beyond).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
    TARS_BIN,
    cleanup,
    get,
    modelArgs,
    post,
    q,
    rawConnection,
    sleep,
    startServer,
    tempDir,
    test,
    waitFor,
} from './lib/server.mjs';
import { createV1, streamV1 } from './lib/v1-client.mjs';

let fake;
before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

describe('model connection pool', () => {
    test('--llm.maxIdleConnections bounds the connections kept open after the runs end', async () => {
        const srv = await startServer({ fake, args: ['--llm.maxIdleConnections', '2'] });
        try {
            const ids = [];
            for (let i = 0; i < 10; i++) ids.push((await createV1(srv)).sessionId);
            // ten runs at once: ten connections to the model while they stream
            const runs = await Promise.all(ids.map((sid, i) => streamV1(srv, sid, q('slow n=5 delay=60', `pool ${i}`))));
            for (const r of runs) assert.equal(r.status, 200);
            await sleep(200);
            assert.ok(fake.openSockets() <= 2, `${fake.openSockets()} connections to the model left open`);
        } finally {
            await srv.stop();
        }
    });
});

/** Starts the binary under prlimit (the open-file limit applies from exec on). */
async function startLimited(nofile, extra = []) {
    const dir = tempDir('tars-lim-');
    const args = [`--nofile=${nofile}`, '--', TARS_BIN, '--port', '0', '--host', '127.0.0.1', '--workspace', dir,
        '--server.storage.path', path.join(dir, 'agent-tars.db'), '--server.headerTimeoutMs', '20000', ...modelArgs(fake), ...extra];
    const proc = spawn('prlimit', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const srv = { proc, stdout: '', stderr: '' };
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        srv.stderr += d;
    });
    proc.stdout.setEncoding('utf8');
    const port = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no listening line\n${srv.stderr}`)), 10000);
        proc.stdout.on('data', (d) => {
            srv.stdout += d;
            const m = /listening on http:\/\/[^\s:]+:(\d+)\n/.exec(srv.stdout);
            if (m) {
                clearTimeout(t);
                resolve(Number(m[1]));
            }
        });
        proc.on('exit', () => reject(new Error(`exited early\n${srv.stderr}`)));
    });
    srv.port = port;
    srv.url = `http://127.0.0.1:${port}`;
    srv.stop = () => new Promise((resolve) => {
        proc.on('exit', resolve);
        proc.kill('SIGTERM');
    });
    return srv;
}

function openFilesLimit(pid) {
    const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    return line.split(/\s{2,}/).slice(1, 3).map(Number);
}

describe('open-file limit', () => {
    test('the soft limit is raised to the hard one at start', async () => {
        const srv = await startLimited('128:4096');
        const conns = [];
        try {
            assert.deepEqual(openFilesLimit(srv.proc.pid), [4096, 4096]);
            for (let i = 0; i < 150; i++) conns.push(await rawConnection(srv));
            const r = await get(srv, '/api/v1/health');
            assert.equal(r.status, 200, 'a soft limit of 128 used to stop the accepting here');
        } finally {
            for (const c of conns) c.close();
            await srv.stop();
        }
    });

    test('server.maxConnections is clamped to what fits, said at start, and answered 503', async () => {
        const srv = await startLimited('200:200');
        const conns = [];
        try {
            assert.match(srv.stderr, /server\.maxConnections 10000 clamped to 100: the open-file limit is 200/);
            for (let i = 0; i < 100; i++) conns.push(await rawConnection(srv));
            // the 101st is refused at once with a clear answer, instead of waiting for a descriptor
            const extra = await rawConnection(srv);
            conns.push(extra);
            await extra.write('GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n').catch(() => {});
            await extra.waitFor((x) => x.closed || /\r\n\r\n/.test(x.data), 3000, 'a refusal').catch(() => {});
            assert.ok(extra.closed || /^HTTP\/1\.1 503/.test(extra.data), JSON.stringify(extra.data.slice(0, 80)));
            for (const c of conns) c.close();
            conns.length = 0;
            await waitFor(async () => (await get(srv, '/api/v1/health').catch(() => ({ status: 0 }))).status === 200, {
                timeoutMs: 5000,
                what: 'health after the connections closed',
            });
        } finally {
            for (const c of conns) c.close();
            await srv.stop();
        }
    });
});

describe('session metadata', () => {
    let srv;
    before(async () => {
        srv = await startServer({ fake });
    });
    after(() => cleanup(srv));

    test('an update over 64 KiB is a 413 and stores nothing', async () => {
        const sid = (await createV1(srv)).sessionId;
        const big = await post(srv, '/api/v1/sessions/update', { sessionId: sid, metadata: { name: 'n', blob: 'x'.repeat(70 * 1024) } });
        assert.equal(big.status, 413, big.text);
        assert.deepEqual(big.json, { error: 'Session metadata over 64 KiB' });
        // merged updates add up: each fits, the sum does not
        let last;
        for (let i = 0; i < 8; i++) {
            last = await post(srv, '/api/v1/sessions/update', { sessionId: sid, metadata: { [`k${i}`]: 'y'.repeat(12 * 1024) } });
            if (last.status !== 200) break;
        }
        assert.equal(last.status, 413, last.text);
        const d = await get(srv, `/api/v1/sessions/details?sessionId=${sid}`);
        assert.equal(d.status, 200);
        assert.ok(JSON.stringify(d.json.session.metadata).length <= 64 * 1024);
        assert.equal(d.json.session.metadata.blob, undefined);
        assert.equal((await post(srv, '/api/v1/sessions/update', { sessionId: sid, metadata: { name: 'small' } })).status, 200);
    });

    test('one-shot with metadata over 64 KiB is a 413', async () => {
        const tags = Array.from({ length: 700 }, (_, i) => `tag-${i}-${'t'.repeat(90)}`);
        const r = await post(srv, '/api/v1/oneshot/query', { query: q('text', 'x'), sessionTags: tags });
        assert.equal(r.status, 413, r.text);
        assert.deepEqual(r.json, { error: 'Session metadata over 64 KiB' });
    });
});

describe('Engine.IO sessions', () => {
    const handshake = (srv) => get(srv, '/socket.io/?EIO=4&transport=polling');

    test('socketio.maxSessionsPerAddress: one address over it gets 429', async () => {
        const srv = await startServer({ fake, args: ['--socketio.maxSessionsPerAddress', '3'] });
        try {
            for (let i = 0; i < 3; i++) assert.equal((await handshake(srv)).status, 200);
            const r = await handshake(srv);
            assert.equal(r.status, 429, r.text);
            assert.deepEqual(r.json, { error: 'Too many Socket.IO sessions from this address' });
            assert.equal((await get(srv, '/api/v1/health')).status, 200);
        } finally {
            await srv.stop();
        }
    });

    test('socketio.maxSessions: over it, 503', async () => {
        const srv = await startServer({ fake, args: ['--socketio.maxSessions', '4'] });
        try {
            for (let i = 0; i < 4; i++) assert.equal((await handshake(srv)).status, 200);
            const r = await handshake(srv);
            assert.equal(r.status, 503, r.text);
            assert.deepEqual(r.json, { error: 'Too many Socket.IO sessions' });
        } finally {
            await srv.stop();
        }
    });
});

describe('loaded sessions', () => {
    test('server.maxLoadedSessions: idle sessions are unloaded least recently used and reload on demand', async () => {
        const srv = await startServer({ fake, args: ['--server.maxLoadedSessions', '3', '--logLevel', 'debug'] });
        try {
            const old = [];
            for (let i = 0; i < 3; i++) {
                const sid = (await createV1(srv)).sessionId;
                const r = await streamV1(srv, sid, q('text', `kept ${i}`));
                assert.equal(r.status, 200);
                old.push(sid);
            }
            await sleep(1100); // a session looked up in the last second is never unloaded
            // touch old[0]: then old[1] and old[2] are the least recently used
            assert.equal((await get(srv, `/api/v1/sessions/details?sessionId=${old[0]}`)).status, 200);
            await sleep(1100);
            for (let i = 0; i < 2; i++) await createV1(srv);
            const unloaded = [...srv.stderr.matchAll(/sess (\S+): unloaded \(server\.maxLoadedSessions 3\)/g)].map((m) => m[1]);
            assert.deepEqual(unloaded.sort(), [old[1], old[2]].sort(), srv.stderr.slice(-2000));
            // an unloaded session answers as before: loaded again from the store
            const ev = await get(srv, `/api/v1/sessions/events?sessionId=${old[1]}`);
            assert.equal(ev.status, 200);
            assert.ok(ev.json.events.some((e) => e.type === 'user_message' && /kept 1/.test(JSON.stringify(e.content))));
            assert.match(srv.stderr, new RegExp(`sess ${old[1]}: loaded from storage`));
        } finally {
            await srv.stop();
        }
    });
});
