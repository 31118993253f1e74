// SPDX-License-Identifier: MIT
// Databases written by the original server (anchor-api.md §3.7.2-§3.7.3), built here with the
// sqlite3 CLI: v1 (May 2025: name/workingDirectory/tags), v2 (workspace + modelConfig column),
// v3 (final: workspace + metadata JSON) and a v3 file migrated from v1 (legacy columns kept). Each
// opens, lists its sessions, serves their events, continues a conversation with the right history,
// takes new sessions, and survives a restart. Also: the file this server writes has the final schema.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertFraming, assertRunEnd } from './lib/checks.mjs';
import { cleanup, get, post, q, startServer, tempDir, test } from './lib/server.mjs';
import { HAVE_SQLITE3, createV1, getEvents, listSessions, normalizeMessages, persisted, sqlStr, sqlite, streamV1 } from './lib/v1-client.mjs';

let fake;

before(async () => {
    assert.ok(HAVE_SQLITE3, 'these tests need the sqlite3 CLI (Debian package sqlite3)');
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

const json = (e) => JSON.stringify(e);

const EVENTS_DDL = `
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sessionId TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  eventData TEXT NOT NULL,
  FOREIGN KEY (sessionId) REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX idx_events_sessionId ON events (sessionId);
`;

const SESSIONS_DDL = {
    v1: `CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER NOT NULL,
           name TEXT, workingDirectory TEXT NOT NULL, tags TEXT);`,
    v2: `CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER NOT NULL,
           name TEXT, workspace TEXT NOT NULL, tags TEXT, modelConfig TEXT);`,
    v3: `CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER NOT NULL,
           workspace TEXT NOT NULL, metadata TEXT);`,
    v3migrated: `CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER NOT NULL,
           name TEXT, workingDirectory TEXT NOT NULL, tags TEXT, workspace TEXT NOT NULL DEFAULT '', metadata TEXT);`,
};

const OLD_QUESTION = 'What do my notes say?';
const OLD_NOTES = 'old notes from May';
const OLD_ANSWER = `The notes say: ${OLD_NOTES}`;
const CALL_ID = 'call_oldSessionReadFile01';

/** A finished run with one tool round, as the original stored it. */
function oldConversation(sid, t0) {
    const mid = `msg_${t0}_abcd1234`;
    const mid2 = `msg_${t0 + 40}_efgh5678`;
    const ev = (type, dt, rest) => ({ id: crypto.randomUUID(), type, timestamp: t0 + dt, ...rest });
    return [
        ev('user_message', 0, { content: OLD_QUESTION }),
        ev('agent_run_start', 1, { sessionId: sid, runOptions: { input: OLD_QUESTION, sessionId: sid, stream: true }, provider: 'openai', model: 'gpt-4o' }),
        ev('assistant_message', 20, {
            content: '',
            toolCalls: [{ id: CALL_ID, type: 'function', function: { name: 'read_file', arguments: '{"path":"notes.txt"}' } }],
            finishReason: 'tool_calls',
            messageId: mid,
        }),
        ev('tool_call', 21, {
            toolCallId: CALL_ID,
            name: 'read_file',
            arguments: { path: 'notes.txt' },
            startTime: t0 + 21,
            tool: { name: 'read_file', description: 'Read a file', schema: { type: 'object', properties: { path: { type: 'string' } } } },
        }),
        ev('tool_result', 25, { toolCallId: CALL_ID, name: 'read_file', content: OLD_NOTES, elapsedMs: 4 }),
        ev('assistant_message', 50, { content: OLD_ANSWER, finishReason: 'stop', messageId: mid2 }),
        ev('agent_run_end', 51, { sessionId: sid, iterations: 2, elapsedMs: 51, status: 'idle' }),
    ];
}

/**
 * Builds a database of the given schema with two sessions: `conv` (the conversation above, newer)
 * and `empty` (older, no events). Returns { dbPath, conv, empty, events, t0 }.
 */
function buildOldDb(version, workspace) {
    const dbPath = path.join(tempDir('tars-olddb-'), 'agent-tars.db');
    const t0 = Date.now() - 86400000;
    const conv = `session_${t0}`;
    const empty = `session_${t0 - 5000}`;
    const events = oldConversation(conv, t0);
    const tags = json(['notes', 'may']);
    // the configured model, so that which model a restored session uses is not what this tests
    const model = { provider: 'openai-compatible', id: 'fake-model', displayName: 'Fake' };
    const rows = {
        v1: (id, c, u, name) => `INSERT INTO sessions (id, createdAt, updatedAt, name, workingDirectory, tags)
              VALUES (${sqlStr(id)}, ${c}, ${u}, ${sqlStr(name)}, ${sqlStr(workspace)}, ${sqlStr(tags)});`,
        v2: (id, c, u, name) => `INSERT INTO sessions (id, createdAt, updatedAt, name, workspace, tags, modelConfig)
              VALUES (${sqlStr(id)}, ${c}, ${u}, ${sqlStr(name)}, ${sqlStr(workspace)}, ${sqlStr(tags)}, ${sqlStr(json(model))});`,
        v3: (id, c, u, name) => `INSERT INTO sessions (id, createdAt, updatedAt, workspace, metadata)
              VALUES (${sqlStr(id)}, ${c}, ${u}, ${sqlStr(workspace)},
                      ${sqlStr(json({ name, tags: ['notes', 'may'], modelConfig: model, agentInfo: { name: 'Agent TARS', configuredAt: c } }))});`,
        v3migrated: (id, c, u, name) => `INSERT INTO sessions (id, createdAt, updatedAt, name, workingDirectory, tags, workspace, metadata)
              VALUES (${sqlStr(id)}, ${c}, ${u}, ${sqlStr(name)}, ${sqlStr(workspace)}, ${sqlStr(tags)}, ${sqlStr(workspace)},
                      ${sqlStr(json({ version: 1, name, tags: ['notes', 'may'] }))});`,
    }[version];
    let sql = `PRAGMA journal_mode = WAL;\nBEGIN;\n${SESSIONS_DDL[version]}\n${EVENTS_DDL}\n`;
    sql += rows(empty, t0 - 5000, t0 - 4000, 'Empty old session') + '\n';
    sql += rows(conv, t0, t0 + 60, 'Notes chat') + '\n';
    events.forEach((e, i) => {
        sql += `INSERT INTO events (sessionId, timestamp, eventData) VALUES (${sqlStr(conv)}, ${t0 + i * 10}, ${sqlStr(json(e))});\n`;
    });
    sql += 'COMMIT;\n';
    sqlite(dbPath, sql);
    return { dbPath, conv, empty, events, t0 };
}

const columns = (dbPath, table) => sqlite(dbPath, `PRAGMA table_info(${table});`, { json: true }).map((c) => c.name);

describe('databases in the original schemas', () => {
    for (const version of ['v1', 'v2', 'v3', 'v3migrated']) {
        test(`${version}: listed, events readable, a query continues it, new sessions, restart`, { timeout: 40000 }, async () => {
            const workspace = tempDir('tars-ws-');
            const db = buildOldDb(version, workspace);
            const s = await startServer({ fake, workspace, args: ['--server.storage.path', db.dbPath] });
            let s2;
            try {
                // listed, newest first, with the old fields mapped onto SessionInfo
                const list = await listSessions(s);
                assert.deepEqual(list.map((x) => x.id), [db.conv, db.empty]);
                const conv = list[0];
                assert.equal(conv.createdAt, db.t0);
                assert.equal(conv.updatedAt, db.t0 + 60);
                assert.equal(conv.workspace, workspace);
                assert.equal(conv.metadata.name, 'Notes chat');
                assert.deepEqual(conv.metadata.tags, ['notes', 'may']);
                if (version === 'v2' || version === 'v3') assert.equal(conv.metadata.modelConfig.id, 'fake-model');
                assert.equal(list[1].metadata.name, 'Empty old session');
                const d = await get(s, `/api/v1/sessions/details?sessionId=${db.conv}`);
                assert.equal(d.status, 200, d.text);
                assert.deepEqual(d.json.session, conv);

                // events as stored, in order
                assert.deepEqual((await getEvents(s, db.conv)).map(json), db.events.map(json));
                assert.deepEqual(await getEvents(s, db.empty), []);
                const replay = await get(s, `/api/v1/sessions/events/latest?sessionId=${db.empty}`);
                assert.equal(replay.json.sessionId, db.conv);

                // the conversation goes on with its history
                const q2 = q('text', `continue the ${version} conversation`);
                const out = await streamV1(s, db.conv, q2);
                assertFraming(out, { prevStoredId: db.events.length });
                assertRunEnd(out.events, db.conv, 1);
                const msgs = normalizeMessages(fake.requestsMatching(q2)[0].body.messages);
                assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
                assert.equal(msgs[1].content, OLD_QUESTION);
                assert.deepEqual(msgs[2].tool_calls, [{ id: CALL_ID, name: 'read_file', arguments: '{"path":"notes.txt"}' }]);
                assert.equal(msgs[3].tool_call_id, CALL_ID);
                assert.ok(msgs[3].content.includes(OLD_NOTES), msgs[3].content);
                assert.equal(msgs[4].content, OLD_ANSWER);
                assert.equal(msgs[5].content, q2);

                // the old empty session takes a query through the seed route
                const q3 = q('text', 'old empty session');
                const r3 = await post(s, '/api/sessions/query', { sessionId: db.empty, query: q3 });
                assert.equal(r3.status, 200, r3.text);
                assert.equal(r3.json.result.content, textReply(q3));

                // new sessions and updates work on the old file
                const created = await createV1(s);
                const upd = await post(s, '/api/v1/sessions/update', { sessionId: db.conv, metadata: { name: 'Renamed old' } });
                assert.equal(upd.status, 200, upd.text);
                assert.equal(upd.json.session.metadata.name, 'Renamed old');
                assert.deepEqual(upd.json.session.metadata.tags, ['notes', 'may']);
                const listAfter = await listSessions(s);
                assert.equal(listAfter.length, 3);
                const convEvents = await getEvents(s, db.conv);
                assert.deepEqual(convEvents.slice(db.events.length).map(json), persisted(out.events).map(json));

                await s.stop();
                s2 = await s.restart();
                assert.deepEqual(await listSessions(s2), listAfter, 'the same after a restart');
                assert.deepEqual((await getEvents(s2, db.conv)).map(json), convEvents.map(json));
                assert.ok((await listSessions(s2)).some((x) => x.id === created.sessionId));
                await s2.stop();

                // legacy columns stay, so the old file keeps its shape; new rows fill them
                const cols = columns(db.dbPath, 'sessions');
                for (const c of SESSIONS_DDL[version].match(/\(\s*([\s\S]*)\)/)[1].split(',').map((x) => x.trim().split(/\s+/)[0])) {
                    assert.ok(cols.includes(c), `column ${c} kept (have ${cols.join(',')})`);
                }
                if (cols.includes('workingDirectory')) {
                    const [row] = sqlite(db.dbPath, `SELECT workingDirectory FROM sessions WHERE id = ${sqlStr(created.sessionId)};`, { json: true });
                    assert.equal(row.workingDirectory, workspace, 'new rows fill the legacy NOT NULL workingDirectory');
                }
            } finally {
                await cleanup(s, s2);
            }
        });
    }

    test('an unparseable event row reads as a placeholder system event; the rest is intact', { timeout: 30000 }, async () => {
        const workspace = tempDir('tars-ws-');
        const db = buildOldDb('v3', workspace);
        sqlite(db.dbPath, `INSERT INTO events (sessionId, timestamp, eventData) VALUES (${sqlStr(db.conv)}, ${db.t0 + 1000}, '{not json');`);
        const s = await startServer({ fake, workspace, args: ['--server.storage.path', db.dbPath] });
        try {
            const ev = await getEvents(s, db.conv);
            assert.equal(ev.length, db.events.length + 1);
            assert.deepEqual(ev.slice(0, db.events.length).map(json), db.events.map(json));
            assert.equal(ev.at(-1).type, 'system');
            assert.equal(ev.at(-1).message, 'Failed to parse event data');
            const q2 = q('text', 'after a bad row');
            const r = await post(s, '/api/v1/sessions/query', { sessionId: db.conv, query: q2 });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.result.content, textReply(q2));
        } finally {
            await cleanup(s);
        }
    });
});

describe('the file this server writes', () => {
    test('final schema (§3.7.2), WAL, eventData = the API events, metadata JSON', { timeout: 30000 }, async () => {
        const s = await startServer({ fake });
        try {
            const { sessionId } = await createV1(s);
            await post(s, '/api/v1/sessions/update', { sessionId, metadata: { name: 'On disk' } });
            await streamV1(s, sessionId, q('tool path=disk.txt'));
            const events = await getEvents(s, sessionId);
            const info = (await get(s, `/api/v1/sessions/details?sessionId=${sessionId}`)).json.session;
            await s.stop();
            const db = s.dbPath;
            assert.equal(sqlite(db, 'PRAGMA journal_mode;').trim(), 'wal');
            const sc = columns(db, 'sessions');
            for (const c of ['id', 'createdAt', 'updatedAt', 'workspace', 'metadata']) assert.ok(sc.includes(c), `sessions.${c}`);
            assert.deepEqual(columns(db, 'events'), ['id', 'sessionId', 'timestamp', 'eventData']);
            const idx = sqlite(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events';", { json: true });
            assert.ok(idx.some((x) => x.name === 'idx_events_sessionId'), JSON.stringify(idx));
            const rows = sqlite(db, `SELECT eventData FROM events WHERE sessionId = ${sqlStr(sessionId)} ORDER BY timestamp ASC, id ASC;`, { json: true });
            assert.deepEqual(rows.map((r) => json(JSON.parse(r.eventData))), events.map(json));
            const [row] = sqlite(db, `SELECT * FROM sessions WHERE id = ${sqlStr(sessionId)};`, { json: true });
            assert.equal(row.createdAt, info.createdAt);
            assert.equal(row.updatedAt, info.updatedAt);
            assert.equal(row.workspace, info.workspace);
            assert.deepEqual(JSON.parse(row.metadata), info.metadata);
            const all = sqlite(db, 'SELECT eventData FROM events;', { json: true });
            assert.ok(!all.some((r) => /"type":"assistant_streaming_/.test(r.eventData)), 'no deltas on disk');
        } finally {
            await cleanup(s);
        }
    });
});
