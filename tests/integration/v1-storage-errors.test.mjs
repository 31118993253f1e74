// SPDX-License-Identifier: MIT
// Storage that cannot be used: a garbage file, a directory, a path under a regular file, a file
// the server may only read, a file it may not read at all (start-up fails with a message naming
// the file and exit code 1), a file-size limit hit at run time (the server stays up), the default
// path under $HOME, and --server.storage.type memory.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertRunEnd } from './lib/checks.mjs';
import { TARS_BIN, cleanup, get, modelArgs, ofType, post, q, startServer, tempDir, test } from './lib/server.mjs';
import { createV1, eventStream, getEvents, listSessions, persisted, streamV1 } from './lib/v1-client.mjs';

let fake;

before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

// a logged error or warning that names a write failure (not the start-up "storage: sqlite ..." line)
const STORAGE_ERROR_RE = /(error|warn)\b.*(File too large|disk is full|disk I\/O error|SQLITE_FULL|SQLITE_IOERR|cannot store|cannot write)/i;
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const NOBODY = 65534;

// processes this file spawns itself (startServer's are handled by lib/server.mjs)
const spawned = new Set();
process.on('exit', () => {
    for (const p of spawned) {
        try {
            p.kill('SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/** spawn() that remembers the child until it exits, so none outlives the test process. */
function track(p) {
    spawned.add(p);
    p.on('exit', () => spawned.delete(p));
    return p;
}

function childEnv(extra = {}) {
    const env = { ...process.env, ...extra };
    delete env.OPENAI_API_KEY;
    delete env.OPENAI_BASE_URL;
    return env;
}

/**
 * Runs a command that is expected to exit by itself; kills it after timeoutMs. Resolves
 * { code, signal, stdout, stderr, timedOut }.
 */
function runToExit(cmd, args, { env, timeoutMs = 8000 } = {}) {
    return new Promise((resolve) => {
        const p = track(spawn(cmd, args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
        let stdout = '';
        let stderr = '';
        let timedOut = false;
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        const t = setTimeout(() => {
            timedOut = true;
            p.kill('SIGKILL');
        }, timeoutMs);
        p.on('exit', (code, signal) => {
            clearTimeout(t);
            resolve({ code, signal, stdout, stderr, timedOut });
        });
    });
}

function serverArgs(dbPath, workspace) {
    return ['--port', '0', '--host', '127.0.0.1', '--workspace', workspace, ...modelArgs(fake), '--server.storage.path', dbPath];
}

/** Start-up with this database must fail: exit 1, no listening line, stderr names the file. */
async function assertStartupFails(dbPath, { why, asNobody = false, workspace, names = dbPath } = {}) {
    const ws = workspace || tempDir('tars-ws-');
    const args = serverArgs(dbPath, ws);
    const r = asNobody
        ? await runToExit('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', TARS_BIN, ...args])
        : await runToExit(TARS_BIN, args);
    const info = `exit ${r.code}/${r.signal}${r.timedOut ? ' (still running after 8 s: it started?)' : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    assert.equal(r.timedOut, false, info);
    assert.equal(r.code, 1, info);
    assert.ok(!r.stdout.includes('listening on'), info);
    assert.ok(r.stderr.includes(names), `the message names ${names}\n${info}`);
    if (why) assert.match(r.stderr, why, `the message says what is wrong\n${info}`);
    assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, info);
    return r;
}

/** A valid database with one session, written by the server itself. */
async function makeValidDb() {
    const dir = tempDir('tars-db-');
    const dbPath = path.join(dir, 'agent-tars.db');
    const s = await startServer({ fake, args: ['--server.storage.path', dbPath] });
    try {
        await createV1(s);
    } finally {
        await s.stop();
    }
    return { dir, dbPath };
}

describe('start-up with an unusable database', () => {
    test('a garbage file: exit 1 with "not a database"-style message; the file is left untouched', async () => {
        const dbPath = path.join(tempDir('tars-db-'), 'agent-tars.db');
        const garbage = Buffer.from('this is not a database, just some text that happens to be here\n'.repeat(200));
        fs.writeFileSync(dbPath, garbage);
        await assertStartupFails(dbPath, { why: /not a database|corrupt|malformed|invalid/i });
        assert.ok(fs.readFileSync(dbPath).equals(garbage), 'the server must not overwrite a file it cannot use');
    });

    test('a directory where the file should be: exit 1', async () => {
        const dbPath = path.join(tempDir('tars-db-'), 'agent-tars.db');
        fs.mkdirSync(dbPath);
        await assertStartupFails(dbPath);
    });

    test('a path under a regular file: exit 1', async () => {
        const dir = tempDir('tars-db-');
        fs.writeFileSync(path.join(dir, 'plain-file'), 'x');
        // naming the offending component is as clear as naming the file
        await assertStartupFails(path.join(dir, 'plain-file', 'agent-tars.db'), { names: path.join(dir, 'plain-file') });
    });

    test('a database the server may only read (file and directory): exit 1 saying so', { timeout: 30000 }, async () => {
        const { dir, dbPath } = await makeValidDb();
        const before = fs.readFileSync(dbPath);
        if (IS_ROOT) {
            // root writes through any mode bits, so run the server as nobody on a root-owned 0644 file
            fs.chmodSync(dir, 0o755);
            fs.chmodSync(dbPath, 0o644);
            const ws = tempDir('tars-ws-');
            fs.chmodSync(ws, 0o777);
            await assertStartupFails(dbPath, { asNobody: true, workspace: ws, why: /read-?only|permission|not writable|denied/i });
        } else {
            fs.chmodSync(dbPath, 0o444);
            fs.chmodSync(dir, 0o555);
            try {
                await assertStartupFails(dbPath, { why: /read-?only|permission|not writable|denied/i });
            } finally {
                fs.chmodSync(dir, 0o755);
            }
        }
        assert.ok(fs.readFileSync(dbPath).equals(before), 'the file is unchanged');
    });

    test('a file the server may not read at all: exit 1', { timeout: 30000 }, async () => {
        const { dir, dbPath } = await makeValidDb();
        if (IS_ROOT) {
            fs.chmodSync(dir, 0o755);
            fs.chmodSync(dbPath, 0o600);
            const ws = tempDir('tars-ws-');
            fs.chmodSync(ws, 0o777);
            await assertStartupFails(dbPath, { asNobody: true, workspace: ws, why: /permission|denied|unable to open|cannot open/i });
        } else {
            fs.chmodSync(dbPath, 0o000);
            await assertStartupFails(dbPath, { why: /permission|denied|unable to open|cannot open/i });
        }
    });
});

describe('a read-only database file in a writable directory', () => {
    // SQLite can open such a file (reads work, -wal/-shm can be created), so refusing to start is
    // not the only honest answer: either exit 1 saying so, or start, say so, serve reads, and
    // answer every write with a clear error while staying up.
    test('either start-up fails saying read-only, or reads work and writes fail clearly', { timeout: 30000 }, async (t) => {
        const { dir, dbPath } = await makeValidDb();
        const ws = tempDir('tars-ws-');
        let cmd = TARS_BIN;
        let pre = [];
        if (IS_ROOT) {
            fs.chmodSync(dir, 0o777);
            fs.chmodSync(dbPath, 0o644);
            fs.chmodSync(ws, 0o777);
            cmd = 'setpriv';
            pre = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', TARS_BIN];
        } else {
            fs.chmodSync(dbPath, 0o444);
        }
        const before = fs.readFileSync(dbPath);
        const proc = track(spawn(cmd, [...pre, ...serverArgs(dbPath, ws)], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
        const srv = { stdout: '', stderr: '', exit: null };
        srv.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((srv.exit = { code, signal }))));
        proc.stdout.on('data', (d) => (srv.stdout += d));
        proc.stderr.on('data', (d) => (srv.stderr += d));
        try {
            const started = await new Promise((resolve) => {
                const timer = setTimeout(() => resolve(false), 8000);
                proc.stdout.on('data', () => {
                    const x = /listening on http:\/\/[^:]+:(\d+)/.exec(srv.stdout);
                    if (x) {
                        clearTimeout(timer);
                        srv.url = `http://127.0.0.1:${x[1]}`;
                        resolve(true);
                    }
                });
                srv.exited.then(() => {
                    clearTimeout(timer);
                    resolve(false);
                });
            });
            if (!started) {
                await srv.exited;
                t.diagnostic('the server refused to start');
                assert.equal(srv.exit.code, 1, srv.stderr);
                assert.ok(srv.stderr.includes(dbPath), srv.stderr);
                assert.match(srv.stderr, /read-?only|not writable|permission/i);
                return;
            }
            t.diagnostic('the server started read-only');
            assert.match(srv.stderr, /read-?only/i, 'it says at start-up that the file is read-only');
            const list = await listSessions(srv);
            assert.equal(list.length, 1, 'reads work');
            const sid = list[0].id;
            assert.equal((await get(srv, `/api/v1/sessions/details?sessionId=${sid}`)).status, 200);
            const c = await post(srv, '/api/v1/sessions/create', {});
            assert.equal(c.status, 500, c.text);
            assert.equal(c.json.error, 'Failed to create session');
            assert.match(c.json.message, /read-?only/i);
            const u = await post(srv, '/api/v1/sessions/update', { sessionId: sid, metadata: { name: 'x' } });
            assert.equal(u.status, 500, u.text);
            assert.match(u.json.message || u.json.error, /read-?only/i);
            const qq = q('text', 'read-only run');
            const r = await post(srv, '/api/v1/sessions/query', { sessionId: sid, query: qq });
            assert.ok([200, 500].includes(r.status) && r.json, `${r.status} ${r.text}`);
            assert.equal((await get(srv, '/api/v1/health')).status, 200, 'still up');
            assert.equal(srv.exit, null);
            proc.kill('SIGTERM');
            assert.deepEqual(await srv.exited, { code: 0, signal: null }, srv.stderr);
            assert.ok(fs.readFileSync(dbPath).equals(before), 'the file is unchanged');
        } finally {
            if (srv.exit === null) proc.kill('SIGKILL');
        }
    });
});

describe('storage errors at run time', () => {
    test('file size limit reached (EFBIG, like a full disk): the server stays up and says why', { timeout: 60000 }, async (t) => {
        // The shell ignores SIGXFSZ (inherited through exec) and caps regular files at 1 MiB, so
        // SQLite's writes start failing with EFBIG once the WAL grows; pipes are not affected.
        const ws = tempDir('tars-ws-');
        const dbPath = path.join(tempDir('tars-db-'), 'agent-tars.db');
        const args = serverArgs(dbPath, ws);
        const proc = track(
            spawn('/bin/sh', ['-c', 'trap "" XFSZ; ulimit -f 2048; exec "$0" "$@"', TARS_BIN, ...args], {
                env: childEnv(),
                stdio: ['ignore', 'pipe', 'pipe'],
            }),
        );
        const srv = { proc, stdout: '', stderr: '', exit: null };
        srv.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((srv.exit = { code, signal }))));
        proc.stdout.on('data', (d) => (srv.stdout += d));
        proc.stderr.on('data', (d) => (srv.stderr += d));
        try {
            const m = await new Promise((resolve, reject) => {
                const t = setTimeout(() => reject(new Error(`no listening line; stderr ${srv.stderr}`)), 10000);
                proc.stdout.on('data', () => {
                    const x = /listening on http:\/\/[^:]+:(\d+)/.exec(srv.stdout);
                    if (x) {
                        clearTimeout(t);
                        resolve(x);
                    }
                });
                srv.exited.then(() => reject(new Error(`exited: ${JSON.stringify(srv.exit)} ${srv.stderr}`)));
            });
            srv.port = Number(m[1]);
            srv.url = `http://127.0.0.1:${srv.port}`;
            const { sessionId } = await createV1(srv);
            const big = 'x'.repeat(150000);
            let failedAt = -1;
            for (let i = 0; i < 20 && failedAt < 0; i++) {
                const r = await post(srv, '/api/v1/sessions/query', { sessionId, query: `${q('text')} ${big}` });
                assert.ok([200, 500].includes(r.status), `query ${i}: ${r.status} ${r.text.slice(0, 200)}`);
                assert.equal(srv.exit, null, `the server died: ${JSON.stringify(srv.exit)}\n${srv.stderr.slice(-2000)}`);
                if (STORAGE_ERROR_RE.test(srv.stderr)) failedAt = i;
            }
            assert.ok(failedAt >= 0, `no storage error was logged after 20 queries of 150 kB\n${srv.stderr.slice(-2000)}`);
            const line = srv.stderr.split('\n').find((l) => STORAGE_ERROR_RE.test(l));
            t.diagnostic(`storage failed at query ${failedAt}: ${line}`);
            // still serving: health, lists, new queries answer (JSON), nothing crashed
            assert.equal((await get(srv, '/api/v1/health')).status, 200);
            const l = await get(srv, '/api/v1/sessions');
            assert.ok([200, 500].includes(l.status) && l.json, `list: ${l.status} ${l.text.slice(0, 200)}`);
            const small = q('text', 'small after full');
            const r = await post(srv, '/api/v1/sessions/query', { sessionId, query: small });
            assert.ok([200, 500].includes(r.status) && r.json, `query: ${r.status} ${r.text.slice(0, 200)}`);
            const c = await post(srv, '/api/v1/sessions/create', {});
            assert.ok([201, 500].includes(c.status) && c.json, `create: ${c.status} ${c.text.slice(0, 200)}`);
            assert.equal(srv.exit, null, 'still running');
            proc.kill('SIGTERM');
            const ex = await Promise.race([srv.exited, new Promise((res) => setTimeout(() => res(null), 10000))]);
            assert.ok(ex, 'exits within 10 s of SIGTERM');
            assert.deepEqual(ex, { code: 0, signal: null }, srv.stderr.slice(-2000));
            assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
        } finally {
            if (srv.exit === null) proc.kill('SIGKILL');
        }
    });
});

describe('where sessions are stored', () => {
    test('a missing parent directory is created (like ~/.agent-tars on first run)', async () => {
        const dbPath = path.join(tempDir('tars-db-'), 'new', 'deeper', 'agent-tars.db');
        const s = await startServer({ fake, args: ['--server.storage.path', dbPath] });
        try {
            const { sessionId } = await createV1(s);
            assert.ok(fs.existsSync(dbPath));
            await s.stop();
            const s2 = await s.restart();
            try {
                assert.ok((await listSessions(s2)).some((x) => x.id === sessionId));
            } finally {
                await cleanup(s2);
            }
        } finally {
            await cleanup(s);
        }
    });

    test('default: $HOME/.agent-tars/agent-tars.db', async () => {
        const home = tempDir('tars-home-');
        const s = await startServer({ fake, env: { HOME: home }, noStorageDefault: true });
        let s2;
        try {
            const { sessionId } = await createV1(s);
            await s.stop();
            assert.ok(fs.statSync(path.join(home, '.agent-tars', 'agent-tars.db')).isFile());
            s2 = await s.restart();
            assert.ok((await listSessions(s2)).some((x) => x.id === sessionId));
        } finally {
            await cleanup(s, s2);
        }
    });

    test('--server.storage.type memory: the full API works, nothing on disk, nothing after a restart', { timeout: 30000 }, async () => {
        const home = tempDir('tars-home-');
        const s = await startServer({ fake, env: { HOME: home }, args: ['--server.storage.type', 'memory'] });
        let s2;
        try {
            const created = await createV1(s);
            const { sessionId } = created;
            assert.equal(created.session.id, sessionId, 'memory storage still returns the session');
            assert.deepEqual(created.events, []);
            const query = q('tool path=mem.txt');
            const out = await streamV1(s, sessionId, query);
            assertRunEnd(out.events, sessionId, 3);
            const stored = await getEvents(s, sessionId);
            assert.deepEqual(stored.map((e) => JSON.stringify(e)), persisted(out.events).map((e) => JSON.stringify(e)));
            const replay = await eventStream(s, sessionId, { after: 2, timeoutMs: 5000 });
            assert.deepEqual(replay.events, stored.slice(2));
            assert.ok((await listSessions(s)).some((x) => x.id === sessionId));
            const d = await get(s, `/api/v1/sessions/details?sessionId=${sessionId}`);
            assert.equal(d.status, 200, d.text);
            const q2 = q('text', 'memory history');
            const r = await post(s, '/api/v1/sessions/query', { sessionId, query: q2 });
            assert.equal(r.json.result.content, textReply(q2));
            assert.equal(fake.requestsMatching(q2)[0].body.messages.filter((m) => m.role === 'user').length, 2);
            assert.equal(ofType(await getEvents(s, sessionId), 'agent_run_end').length, 2);
            const del = await post(s, '/api/v1/sessions/delete', { sessionId: (await createV1(s)).sessionId });
            assert.deepEqual(del.json, { success: true });
            await s.stop();
            assert.ok(!fs.existsSync(path.join(home, '.agent-tars')), 'no database under $HOME');
            s2 = await s.restart();
            assert.deepEqual(await listSessions(s2), [], 'memory is empty after a restart');
            const gone = await get(s2, `/api/v1/sessions/details?sessionId=${sessionId}`);
            assert.equal(gone.status, 404);
        } finally {
            await cleanup(s, s2);
        }
    });
});
