// SPDX-License-Identifier: MIT
// Faults found by attacking the server (issue 11), one regression test each: workspace file
// names that are not UTF-8, resume positions of 2^63-1 and garbage, stored session ids longer
// than 21 bytes, and MCP servers left running when start-up fails after they were spawned.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { connectClient, emitAck, rawSioSocket } from './lib/sio-client.mjs';
import { cleanup, get, q, startServer, tempDir, test } from './lib/server.mjs';
import { HAVE_SQLITE3, createV1, eventStream, getEvents, sqlStr, sqlite, streamV1 } from './lib/v1-client.mjs';
import { writeConfig } from './mcp-helpers.mjs';

const FAKE_MCP = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'mcp', 'fake-server.mjs');
const INT64_MAX = '9223372036854775807';
const REPLACEMENT = '\uFFFD';

let fake;
before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

describe('workspace file names that are not UTF-8', () => {
    let srv;
    let sid;
    before(async () => {
        srv = await startServer({ fake });
        sid = (await createV1(srv)).sessionId;
        const dir = Buffer.from(path.join(srv.workspace, 'latin1'));
        fs.mkdirSync(dir, { recursive: true });
        // "caf\xe9.txt" and a directory "r\xe9p" as an unzip of a Latin-1 archive leaves them
        fs.writeFileSync(Buffer.concat([dir, Buffer.from('/caf\xe9-zqbad.txt', 'latin1')]), 'x');
        fs.mkdirSync(Buffer.concat([dir, Buffer.from('/r\xe9p-zqbad', 'latin1')]));
        fs.writeFileSync(Buffer.concat([dir, Buffer.from('/r\xe9p-zqbad/inner\xff.txt', 'latin1')]), 'y');
        fs.writeFileSync(path.join(srv.workspace, 'latin1', 'plain-zqbad.txt'), 'z');
    });
    after(() => cleanup(srv));

    const files = (p) => get(srv, `/api/v1/sessions/workspace/files?sessionId=${sid}&path=${encodeURIComponent(p)}`);

    test('files: listed with U+FFFD for each invalid byte, the server keeps serving', async () => {
        const r = await files('/latin1');
        assert.equal(r.status, 200, r.text);
        const names = r.json.files.map((f) => f.name).sort();
        assert.deepEqual(names, [`caf${REPLACEMENT}-zqbad.txt`, 'plain-zqbad.txt', `r${REPLACEMENT}p-zqbad`].sort());
        const bad = r.json.files.find((f) => f.name.startsWith('caf'));
        assert.equal(bad.path, `/latin1/caf${REPLACEMENT}-zqbad.txt`);
        assert.equal(bad.size, 1);
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
    });

    test('files: a request path that is not UTF-8 is answered, not crashed on', async () => {
        const r = await get(srv, `/api/v1/sessions/workspace/files?sessionId=${sid}&path=/latin1/r%E9p-zqbad`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.path, `/latin1/r${REPLACEMENT}p-zqbad`);
        assert.deepEqual(r.json.files.map((f) => f.name), [`inner${REPLACEMENT}.txt`]);
        const f = await get(srv, `/api/v1/sessions/workspace/files?sessionId=${sid}&path=/latin1/caf%E9-zqbad.txt`);
        assert.equal(f.status, 200, f.text);
        assert.equal(f.json.name, `caf${REPLACEMENT}-zqbad.txt`);
    });

    test('search: finds them, names and paths replaced', async () => {
        const r = await get(srv, `/api/v1/sessions/workspace/search?sessionId=${sid}&q=zqbad`);
        assert.equal(r.status, 200, r.text);
        const rel = r.json.items.map((i) => i.relativePath).sort();
        assert.deepEqual(
            rel,
            [
                `latin1/caf${REPLACEMENT}-zqbad.txt`,
                'latin1/plain-zqbad.txt',
                `latin1/r${REPLACEMENT}p-zqbad`,
                `latin1/r${REPLACEMENT}p-zqbad/inner${REPLACEMENT}.txt`,
            ].sort(),
        );
        for (const i of r.json.items) assert.ok(i.path.endsWith(i.relativePath), JSON.stringify(i));
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
    });
});

describe('resume positions', () => {
    let srv;
    let sid;
    before(async () => {
        srv = await startServer({ fake, args: ['--server.storage.type', 'memory'] });
        sid = (await createV1(srv)).sessionId;
        const r = await streamV1(srv, sid, q('text', 'hello'));
        assert.equal(r.status, 200);
    });
    after(() => cleanup(srv));

    const ended = (r) => r.ended || r.disconnected;

    test('after and Last-Event-ID of 2^63-1 (and beyond) replay nothing and do not crash', async () => {
        for (const opts of [{ after: INT64_MAX }, { after: '99999999999999999999999' }, { lastEventId: INT64_MAX }]) {
            const r = await eventStream(srv, sid, { ...opts, timeoutMs: 3000 });
            assert.equal(r.status, 200, JSON.stringify(opts));
            assert.ok(ended(r), JSON.stringify(opts));
            assert.deepEqual(r.events, [], JSON.stringify(opts));
        }
        const all = await eventStream(srv, sid, { after: 0, timeoutMs: 3000 });
        assert.equal(all.status, 200);
        assert.ok(all.events.length >= 2, `replayed ${all.events.length}`);
        assert.deepEqual(all.events.length, (await getEvents(srv, sid)).length);
    });

    test('garbage positions are a 400', async () => {
        for (const opts of [{ after: 'abc' }, { after: '-1' }, { after: '1e3' }, { lastEventId: 'x1' }, { after: '%2B5' }]) {
            const r = await eventStream(srv, sid, { ...opts, timeoutMs: 3000 });
            assert.equal(r.status, 400, `${JSON.stringify(opts)}: ${r.raw}`);
        }
    });

    test('Socket.IO since: 2^63-1 joins with nothing replayed; garbage is refused', async () => {
        const c = await rawSioSocket(srv);
        try {
            c.sendText(`421["join-session",{"sessionId":"${sid}","since":${INT64_MAX}}]`);
            await c.waitFrame((f) => f.text && f.text.startsWith('431'));
            const ack = c.frames.find((f) => f.text && f.text.startsWith('431'));
            assert.match(ack.text, /"success":true/);
            assert.ok(!c.frames.some((f) => f.text && f.text.includes('"agent-event"')), 'nothing replayed');
        } finally {
            c.sock.destroy();
        }
        const s = await connectClient(srv, { transports: ['websocket'] });
        try {
            for (const since of [-1, 'x', 1.5]) {
                const r = await emitAck(s, 'join-session', { sessionId: sid, since });
                assert.match(JSON.stringify(r), /since must be a non-negative integer/, JSON.stringify(since));
            }
            assert.deepEqual(await emitAck(s, 'join-session', { sessionId: sid, since: 0 }), { success: true });
        } finally {
            s.disconnect();
        }
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
    });
});

describe('stored session ids longer than 21 bytes', { skip: !HAVE_SQLITE3 && 'needs the sqlite3 CLI' }, () => {
    test('are loaded whole: events, list, and again after every request', async () => {
        const dbPath = path.join(tempDir('tars-db-'), 'agent-tars.db');
        const workspace = tempDir('tars-ws-');
        let srv = await startServer({ fake, workspace, args: ['--server.storage.path', dbPath] });
        await srv.stop();
        const long = `session_${'x'.repeat(40)}_0123456789abcdef`;
        const now = Date.now();
        const ev = { id: 'e1', type: 'user_message', timestamp: now, content: 'old question' };
        sqlite(dbPath, `INSERT INTO sessions (id, createdAt, updatedAt, workspace, metadata) VALUES (${sqlStr(long)}, ${now}, ${now}, ${sqlStr(workspace)}, '{}');
INSERT INTO events (sessionId, timestamp, eventData) VALUES (${sqlStr(long)}, ${now}, ${sqlStr(JSON.stringify(ev))});`);
        srv = await startServer({ fake, workspace, args: ['--server.storage.path', dbPath] });
        try {
            for (let i = 0; i < 3; i++) {
                const events = await getEvents(srv, long);
                assert.deepEqual(events.map((e) => e.content), ['old question']);
            }
            const st = await get(srv, `/api/v1/sessions/status?sessionId=${encodeURIComponent(long)}`);
            assert.equal(st.status, 200, st.text);
            const r = await streamV1(srv, long, q('text', 'new answer'));
            assert.equal(r.status, 200);
            const after1 = await getEvents(srv, long);
            assert.ok(after1.length > 2, `events: ${after1.length}`);
            assert.equal(after1[0].content, 'old question');
        } finally {
            await srv.stop();
        }
    });
});

describe('MCP servers on a start-up failure', () => {
    test('a server spawned before the failure is stopped', { timeout: 40000 }, async () => {
        const dir = tempDir('tars-mcp-pid-');
        const pidFile = path.join(dir, 'pid');
        // The shell outlives its MCP server's end of input, as a browser server's chromium does:
        // only stopping the process group ends it.
        const config = writeConfig({
            mcpServers: {
                fake: { command: '/bin/sh', args: ['-c', `echo $$ > ${pidFile}; ${process.execPath} ${FAKE_MCP}; sleep 30`] },
            },
        });
        const bad = path.join(dir, 'no-such-dir', 'sub', 'agent-tars.db');
        fs.writeFileSync(path.join(dir, 'no-such-dir'), 'a file where a directory should be');
        const err = await startServer({ fake, args: ['--config', config, '--server.storage.path', bad] }).then(
            (s) => {
                s.stop();
                return null;
            },
            (e) => e,
        );
        assert.ok(err, 'the server must fail to start');
        assert.match(String(err.message), /exited early|cannot use storage/);
        const pid = Number(fs.readFileSync(pidFile, 'utf8'));
        assert.ok(pid > 0);
        const deadline = Date.now() + 5000;
        let alive = true;
        while (alive && Date.now() < deadline) {
            try {
                process.kill(pid, 0);
                await new Promise((r) => setTimeout(r, 50));
            } catch {
                alive = false;
            }
        }
        if (alive) process.kill(pid, 'SIGKILL');
        assert.equal(alive, false, `MCP server ${pid} still running after the server exited`);
    });
});
