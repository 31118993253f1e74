// SPDX-License-Identifier: MIT
// Every /api/v1 route of issue 4 (contract-v1.md, anchor-api.md §3.2-§3.3): success and error
// paths with exact status codes and bodies, the session-restore rule, and the seed routes working
// on the same store.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd, assertRunStart, assertStreamHeaders, joinDeltas } from './lib/checks.mjs';
import {
    TEST_API_KEY,
    cleanup,
    createSession,
    get,
    ofType,
    parseSse,
    post,
    q,
    request,
    sleep,
    startServer,
    test,
} from './lib/server.mjs';
import {
    NANOID_RE,
    createV1,
    getEvents,
    getStatus,
    listSessions,
    normalizeMessages,
    persisted,
    sseRequest,
    streamV1,
    waitIdle,
} from './lib/v1-client.mjs';
import { TITLE, TITLE_ERROR_MESSAGE, startTitleFake } from './lib/v1-fake.mjs';

const UNKNOWN = 'nOtAnExIsTiNgSeSsIoN1';
const SID_REQUIRED = { error: 'Session ID is required' };
const NOT_FOUND = { error: 'Session not found' };
const MODEL = { provider: 'openai-compatible', id: 'fake-model' };

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

const qs = (sid) => `sessionId=${encodeURIComponent(sid)}`;

/** Asserts the shape of a SessionInfo from this server. */
function assertSessionInfo(s, sid, server = srv) {
    assert.equal(s.id, sid);
    for (const k of Object.keys(s)) assert.ok(['id', 'createdAt', 'updatedAt', 'workspace', 'metadata', 'usage'].includes(k), `unexpected SessionInfo key ${k}`);
    // usage: the session's token total (governed runs), the same as the stored metadata.usage
    if ('usage' in s) assert.deepEqual(s.usage, s.metadata.usage);
    assert.ok(Number.isInteger(s.createdAt) && Number.isInteger(s.updatedAt), JSON.stringify(s));
    assert.ok(s.updatedAt >= s.createdAt);
    assert.ok(Math.abs(s.createdAt - Date.now()) < 600000, `createdAt ${s.createdAt} is a current ms time`);
    assert.equal(s.workspace, server.workspace);
}

/** Starts a slow streaming run and resolves once the model is answering it. */
async function startSlowRun(sid, n = 200) {
    const query = q(`slow delay=50 n=${n}`);
    const streaming = streamV1(srv, sid, query, { timeoutMs: 30000 });
    await fake.waitForRequest((r) => r.query === query, 5000);
    return { query, streaming };
}

async function abortAndWait(sid, streaming) {
    const r = await post(srv, '/api/v1/sessions/abort', { sessionId: sid });
    assert.deepEqual(r.json, { success: true });
    const out = await streaming;
    await waitIdle(srv, sid);
    return out;
}

describe('session-restore rule', () => {
    const routes = [
        ['GET', '/api/v1/sessions/details'],
        ['GET', '/api/v1/sessions/events'],
        ['GET', '/api/v1/sessions/events/latest'],
        ['GET', '/api/v1/sessions/status'],
        ['GET', '/api/v1/sessions/events/stream'],
        ['GET', '/api/v1/sessions/workspace/files', '&path=/'],
        ['GET', '/api/v1/sessions/workspace/search', '&q=x'],
        ['POST', '/api/v1/sessions/update', { metadata: { name: 'x' } }],
        ['POST', '/api/v1/sessions/delete', {}],
        ['POST', '/api/v1/sessions/generate-summary', { messages: [{ role: 'user', content: 'hi' }] }],
        ['POST', '/api/v1/sessions/share', {}],
        ['POST', '/api/v1/sessions/workspace/validate', { paths: ['a.txt'] }],
        ['POST', '/api/v1/sessions/query', { query: 'hi' }],
        ['POST', '/api/v1/sessions/query/stream', { query: 'hi' }],
        ['POST', '/api/v1/sessions/abort', {}],
        ['POST', '/api/v1/sessions/model', { model: MODEL }],
    ];

    test('no sessionId -> 400 "Session ID is required" on every session route', async () => {
        for (const [method, p, extra] of routes) {
            const r =
                method === 'GET'
                    ? await get(srv, extra ? `${p}?${extra.slice(1)}` : p)
                    : await post(srv, p, extra);
            assert.equal(r.status, 400, `${method} ${p}: ${r.status} ${r.text}`);
            assert.deepEqual(r.json, SID_REQUIRED, `${method} ${p}`);
            assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        }
    });

    test('unknown sessionId -> 404 "Session not found" on every session route', async () => {
        for (const [method, p, extra] of routes) {
            let r;
            if (method === 'GET') r = await get(srv, `${p}?${qs(UNKNOWN)}${extra || ''}`);
            else if (p.endsWith('/validate')) r = await post(srv, `${p}?${qs(UNKNOWN)}`, extra);
            else r = await post(srv, p, { sessionId: UNKNOWN, ...extra });
            assert.equal(r.status, 404, `${method} ${p}: ${r.status} ${r.text}`);
            assert.deepEqual(r.json, NOT_FOUND, `${method} ${p}`);
        }
    });

    test('ids that look like SQL or paths are just unknown ids', async () => {
        for (const bad of ["x' OR '1'='1", '../../etc/passwd', '%', '*', '"; DROP TABLE sessions; --']) {
            const r = await get(srv, `/api/v1/sessions/details?${qs(bad)}`);
            assert.equal(r.status, 404, `${bad}: ${r.text}`);
            assert.deepEqual(r.json, NOT_FOUND);
            const d = await post(srv, '/api/v1/sessions/delete', { sessionId: bad });
            assert.equal(d.status, 404, `${bad}: ${d.text}`);
        }
        assert.ok(Array.isArray(await listSessions(srv)));
    });

    test('the sessionId may come from the query string on a POST route', async () => {
        const { sessionId } = await createV1(srv);
        const r = await post(srv, `/api/v1/sessions/abort?${qs(sessionId)}`, {});
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { success: false });
    });

    test('unknown sub-path: 400 without a sessionId (restore rule first), 404 with a valid one', async () => {
        const r = await get(srv, '/api/v1/sessions/not-a-route');
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.json, SID_REQUIRED);
        const { sessionId } = await createV1(srv);
        const r2 = await get(srv, `/api/v1/sessions/not-a-route?${qs(sessionId)}`);
        assert.equal(r2.status, 404, r2.text);
        assert.deepEqual(r2.json, { error: 'Cannot GET /api/v1/sessions/not-a-route' });
    });
});

describe('sessions: create, list, details, update, delete', () => {
    test('POST /api/v1/sessions/create -> 201 {sessionId, session, events: []}', async () => {
        const t0 = Date.now();
        const r = await post(srv, '/api/v1/sessions/create', {});
        assert.equal(r.status, 201, r.text);
        assert.match(r.headers.get('content-type') || '', /^application\/json/);
        assert.deepEqual(Object.keys(r.json).sort(), ['events', 'session', 'sessionId']);
        const { sessionId, session, events } = r.json;
        assert.match(sessionId, NANOID_RE);
        assert.deepEqual(events, []);
        assertSessionInfo(session, sessionId);
        assert.deepEqual(Object.keys(session.metadata).sort(), ['agentInfo', 'modelConfig']);
        assert.deepEqual(session.metadata.modelConfig, MODEL);
        assert.equal(session.metadata.agentInfo.name, 'Agent TARS');
        const at = session.metadata.agentInfo.configuredAt;
        assert.ok(Number.isInteger(at) && at >= t0 - 5 && at <= Date.now() + 5, `configuredAt ${at}`);
        assert.ok(!r.text.includes(TEST_API_KEY), 'no API key in the answer');
        assert.ok(!r.text.includes(fake.baseURL), 'no base URL in the answer');
        // the body is optional
        const r2 = await request(srv, 'POST', '/api/v1/sessions/create');
        assert.equal(r2.status, 201, r2.text);
        assert.notEqual(r2.json.sessionId, sessionId);
        // malformed JSON is still a 400
        const r3 = await post(srv, '/api/v1/sessions/create', '{"runtimeSettings":');
        assert.equal(r3.status, 400);
        assert.deepEqual(r3.json, { error: 'Invalid JSON body' });
    });

    test('create keeps agentOptions.agentMode; undeclared runtimeSettings are dropped; other agentOptions -> 400', async () => {
        const { session } = await createV1(srv, { runtimeSettings: { mode: 'fast' }, agentOptions: { agentMode: 'omni' } });
        assert.deepEqual(session.metadata.runtimeSettings, {}, 'this server declares no runtime settings');
        assert.deepEqual(session.metadata.agentOptions, { agentMode: 'omni' });
        const before = (await listSessions(srv)).length;
        const bad = { agentMode: 'omni', mcpServers: { evil: { command: 'touch', args: ['/tmp/pwned'] } }, model: 'x' };
        const r = await post(srv, '/api/v1/sessions/create', { agentOptions: bad });
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.json, { error: 'Unsupported agentOptions', allowed: ['agentMode'], rejected: ['mcpServers', 'model'] });
        assert.equal((await listSessions(srv)).length, before, 'no session was created');
        const sid = session.id;
        const u = await post(srv, '/api/v1/sessions/update', { sessionId: sid, metadata: { agentOptions: { tools: [] } } });
        assert.equal(u.status, 400, u.text);
        assert.deepEqual(u.json.rejected, ['tools']);
    });

    test('GET /api/v1/sessions: SessionInfo list, updatedAt desc; details equal the list entries', async () => {
        const a = (await createV1(srv)).sessionId;
        await sleep(10);
        const b = (await createV1(srv)).sessionId;
        await sleep(10);
        const c = (await createV1(srv)).sessionId;
        await sleep(10);
        const qa = q('text', 'bump A');
        const r = await post(srv, '/api/v1/sessions/query', { sessionId: a, query: qa });
        assert.equal(r.status, 200, r.text);
        const list = await listSessions(srv);
        const ids = list.map((s) => s.id);
        assert.ok(ids.indexOf(a) < ids.indexOf(c) && ids.indexOf(c) < ids.indexOf(b), `order ${ids.join(',')}`);
        for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].updatedAt >= list[i].updatedAt, 'updatedAt desc');
        const events = await getEvents(srv, a);
        const entryA = list.find((s) => s.id === a);
        assert.ok(entryA.updatedAt >= events.at(-1).timestamp, 'updatedAt bumped by stored events');
        for (const sid of [a, b, c]) {
            const entry = list.find((s) => s.id === sid);
            assertSessionInfo(entry, sid);
            const d = await get(srv, `/api/v1/sessions/details?${qs(sid)}`);
            assert.equal(d.status, 200, d.text);
            assert.deepEqual(Object.keys(d.json), ['session']);
            assert.deepEqual(d.json.session, entry);
        }
    });

    test('POST /api/v1/sessions/update: shallow merge of metadata, updatedAt bumped', async () => {
        const { sessionId, session } = await createV1(srv);
        await sleep(5);
        const r = await post(srv, '/api/v1/sessions/update', { sessionId, metadata: { name: 'My task', tags: ['x', 'y'] } });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['session']);
        const s1 = r.json.session;
        assertSessionInfo(s1, sessionId);
        assert.deepEqual(s1.metadata, { ...session.metadata, name: 'My task', tags: ['x', 'y'] });
        assert.ok(s1.updatedAt >= session.updatedAt);
        assert.equal(s1.createdAt, session.createdAt);
        // second update: only the given keys change; a given object replaces the old one whole
        const r2 = await post(srv, '/api/v1/sessions/update', { sessionId, metadata: { name: 'Renamed', agentInfo: { name: 'Other' } } });
        assert.equal(r2.status, 200, r2.text);
        assert.deepEqual(r2.json.session.metadata, {
            modelConfig: session.metadata.modelConfig,
            agentInfo: { name: 'Other' },
            name: 'Renamed',
            tags: ['x', 'y'],
        });
        const d = await get(srv, `/api/v1/sessions/details?${qs(sessionId)}`);
        assert.deepEqual(d.json.session, r2.json.session);
        const listed = (await listSessions(srv)).find((s) => s.id === sessionId);
        assert.equal(listed.metadata.name, 'Renamed');
    });

    test('POST /api/v1/sessions/delete: {success:true}, then gone everywhere', async () => {
        const { sessionId } = await createV1(srv);
        const query = q('text', 'to be deleted');
        assert.equal((await post(srv, '/api/v1/sessions/query', { sessionId, query })).status, 200);
        const r = await post(srv, '/api/v1/sessions/delete', { sessionId });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { success: true });
        assert.ok(!(await listSessions(srv)).some((s) => s.id === sessionId), 'not listed');
        for (const p of ['details', 'events', 'status']) {
            const g = await get(srv, `/api/v1/sessions/${p}?${qs(sessionId)}`);
            assert.equal(g.status, 404, `${p}: ${g.text}`);
            assert.deepEqual(g.json, NOT_FOUND);
        }
        const again = await post(srv, '/api/v1/sessions/delete', { sessionId });
        assert.equal(again.status, 404);
        assert.deepEqual(again.json, NOT_FOUND);
        const sq = await post(srv, '/api/sessions/query', { sessionId, query: q('text') });
        assert.equal(sq.status, 404, 'the seed route does not see it either');
    });

    test('delete while a run streams: the run is aborted first and the session stays gone', async () => {
        const { sessionId } = await createV1(srv);
        const { query, streaming } = await startSlowRun(sessionId);
        const t0 = Date.now();
        const r = await post(srv, '/api/v1/sessions/delete', { sessionId });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { success: true });
        const out = await streaming;
        assert.ok(Date.now() - t0 < 5000, 'the stream ended soon after the delete');
        assert.ok(out.ended, 'the stream was ended by the server');
        const [rec] = fake.requestsMatching(query);
        await fake.waitForRequest((x) => x === rec && x.endedAt !== null, 3000);
        assert.equal(rec.closedEarly, true, 'the model transfer was dropped');
        await sleep(300);
        assert.ok(!(await listSessions(srv)).some((s) => s.id === sessionId), 'late events did not bring the session back');
        assert.equal((await get(srv, `/api/v1/sessions/events?${qs(sessionId)}`)).status, 404);
    });
});

describe('events, latest, status', () => {
    test('GET /api/v1/sessions/events = the persisted events of the stream, same JSON, ids = positions', async () => {
        const { sessionId } = await createV1(srv);
        const q1 = q('tool path=v1-events.txt');
        const out = await streamV1(srv, sessionId, q1);
        assertStreamHeaders(out);
        const last = assertFraming(out, { prevStoredId: 0 });
        const stored = await getEvents(srv, sessionId);
        assertEventBasics(stored);
        assert.equal(stored.length, last);
        assert.deepEqual(stored.map((e) => JSON.stringify(e)), persisted(out.events).map((e) => JSON.stringify(e)));
        for (const f of out.frames) {
            if (persisted([f.event]).length) assert.equal(stored[Number(f.id) - 1].id, f.event.id, `frame id ${f.id}`);
        }
        assert.ok(!stored.some((e) => e.type.includes('streaming')), 'no deltas stored');
    });

    test('GET /api/v1/sessions/events/latest -> the most recently updated session', async () => {
        const other = (await createV1(srv)).sessionId;
        const { sessionId } = await createV1(srv);
        await sleep(5);
        const query = q('text', 'latest');
        assert.equal((await post(srv, '/api/v1/sessions/query', { sessionId, query })).status, 200);
        const r = await get(srv, `/api/v1/sessions/events/latest?${qs(other)}`);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['events', 'sessionId', 'sessionInfo']);
        assert.equal(r.json.sessionId, sessionId);
        const d = await get(srv, `/api/v1/sessions/details?${qs(sessionId)}`);
        assert.deepEqual(r.json.sessionInfo, d.json.session);
        assert.deepEqual(r.json.events, await getEvents(srv, sessionId));
        assert.equal(r.json.events[0].content, query);
    });

    test('GET /api/v1/sessions/status: idle, executing during a run, not executing after abort', async () => {
        const { sessionId } = await createV1(srv);
        const r = await get(srv, `/api/v1/sessions/status?${qs(sessionId)}`);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { sessionId, status: { isProcessing: false, state: 'idle' } });
        const { streaming } = await startSlowRun(sessionId);
        assert.deepEqual(await getStatus(srv, sessionId), { isProcessing: true, state: 'executing' });
        await abortAndWait(sessionId, streaming);
        const st = await getStatus(srv, sessionId);
        assert.equal(st.isProcessing, false);
        assert.ok(['idle', 'aborted'].includes(st.state), st.state);
    });
});

describe('query, query/stream, abort', () => {
    test('POST /api/v1/sessions/query -> 200 {result: assistant_message}', async () => {
        const { sessionId } = await createV1(srv);
        const query = q('text', 'v1 non-streaming');
        const r = await post(srv, '/api/v1/sessions/query', { sessionId, query });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['result']);
        assert.equal(r.json.result.type, 'assistant_message');
        assert.equal(r.json.result.content, textReply(query));
        const stored = await getEvents(srv, sessionId);
        assert.deepEqual(stored.find((e) => e.type === 'assistant_message'), r.json.result);
        assert.deepEqual(stored.map((e) => e.type), ['user_message', 'agent_run_start', 'assistant_message', 'agent_run_end']);
    });

    test('query validation: 400 "Query is required" for missing, "" and null', async () => {
        const { sessionId } = await createV1(srv);
        for (const body of [{ sessionId }, { sessionId, query: '' }, { sessionId, query: null }]) {
            for (const p of ['/api/v1/sessions/query', '/api/v1/sessions/query/stream']) {
                const r = await post(srv, p, body);
                assert.equal(r.status, 400, `${p} ${JSON.stringify(body)}: ${r.text}`);
                assert.deepEqual(r.json, { error: 'Query is required' });
            }
        }
        assert.deepEqual(await getEvents(srv, sessionId), [], 'nothing stored');
    });

    test('query: model failure -> 500 {success:false, error:{code:"AGENT_EXECUTION_ERROR", message}}', async () => {
        const { sessionId } = await createV1(srv);
        const r = await post(srv, '/api/v1/sessions/query', { sessionId, query: q('auth401') });
        assert.equal(r.status, 500, r.text);
        assert.equal(r.json.success, false);
        assert.equal(r.json.error.code, 'AGENT_EXECUTION_ERROR');
        assert.ok(r.json.error.message.includes('Incorrect API key provided'), r.json.error.message);
        assert.deepEqual(Object.keys(r.json).sort(), ['error', 'success']);
        assert.ok(!r.text.includes(TEST_API_KEY));
    });

    test('query while the session runs -> 500 AGENT_EXECUTION_ERROR; abort -> {success:true}', async () => {
        const { sessionId } = await createV1(srv);
        const { streaming } = await startSlowRun(sessionId);
        const r = await post(srv, '/api/v1/sessions/query', { sessionId, query: q('text', 'too early') });
        assert.equal(r.status, 500, r.text);
        assert.equal(r.json.success, false);
        assert.equal(r.json.error.code, 'AGENT_EXECUTION_ERROR');
        assert.equal(typeof r.json.error.message, 'string');
        assert.ok(r.json.error.message.length > 0);
        const out = await abortAndWait(sessionId, streaming);
        assert.equal(out.events.at(-1).type, 'agent_run_end');
        assert.equal(out.events.at(-1).status, 'aborted');
        const idle = await post(srv, '/api/v1/sessions/abort', { sessionId });
        assert.equal(idle.status, 200);
        assert.deepEqual(idle.json, { success: false });
    });

    test('POST /api/v1/sessions/query/stream: seed framing, ids from 1, continuing on the next query', async () => {
        const { sessionId } = await createV1(srv);
        const q1 = q('text', 'v1 stream one');
        const out1 = await streamV1(srv, sessionId, q1);
        assertStreamHeaders(out1);
        const last1 = assertFraming(out1, { prevStoredId: 0 });
        assertEventBasics(out1.events);
        assertRunStart(out1.events, sessionId, q1);
        assertRunEnd(out1.events, sessionId, 1);
        assert.equal(joinDeltas(out1.events), textReply(q1));
        const out2 = await streamV1(srv, sessionId, q('text', 'v1 stream two'));
        assertFraming(out2, { prevStoredId: last1 });
        assert.equal(Number(out2.frames[0].id), last1 + 1, 'the second run continues the ids');
        // the model saw the first exchange
        const msgs = normalizeMessages(fake.requestsMatching('v1 stream two')[0].body.messages);
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
        assert.equal(msgs[1].content, q1);
    });

    test('query/stream while the session runs -> 200 SSE with one system error event, not stored', async () => {
        const { sessionId } = await createV1(srv);
        const { streaming } = await startSlowRun(sessionId);
        const busy = await streamV1(srv, sessionId, q('text', 'busy'), { timeoutMs: 5000 });
        assertStreamHeaders(busy);
        assert.ok(busy.ended, 'the busy stream ends by itself');
        // a synthetic frame: an id block before it is optional (§3.4 sends none), one data frame
        const blocks = busy.raw.split('\n\n').filter((b) => b !== '' && !b.startsWith('id: '));
        assert.equal(blocks.length, 1, busy.raw);
        assert.ok(busy.raw.endsWith('\n\n') && blocks[0].startsWith('data: '), busy.raw);
        const ev = JSON.parse(blocks[0].slice(6));
        assert.equal(ev.type, 'system');
        assert.equal(ev.level, 'error');
        assert.equal(typeof ev.message, 'string');
        await abortAndWait(sessionId, streaming);
        const stored = await getEvents(srv, sessionId);
        assert.ok(!stored.some((e) => e.type === 'system' && e.level === 'error'), 'the busy error is not stored');
        assert.ok(!stored.some((e) => e.type === 'user_message' && String(e.content).includes('busy')), 'nor its query');
    });
});

describe('oneshot', () => {
    test('POST /api/v1/oneshot/query -> {sessionId, result}; the session is stored', async () => {
        const query = q('text', 'oneshot');
        const r = await post(srv, '/api/v1/oneshot/query', { query });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['result', 'sessionId']);
        assert.match(r.json.sessionId, NANOID_RE);
        assert.equal(r.json.result.type, 'assistant_message');
        assert.equal(r.json.result.content, textReply(query));
        const list = await listSessions(srv);
        assert.ok(list.some((s) => s.id === r.json.sessionId), 'listed');
        const stored = await getEvents(srv, r.json.sessionId);
        assert.equal(stored[0].type, 'user_message');
        assert.equal(stored[0].content, query);
        assert.equal(stored.at(-1).type, 'agent_run_end');
    });

    test('oneshot with sessionName and sessionTags stores them; 400 without a query', async () => {
        const r = await post(srv, '/api/v1/oneshot/query', { query: q('text'), sessionName: 'One shot', sessionTags: ['t1', 't2'] });
        assert.equal(r.status, 200, r.text);
        const d = await get(srv, `/api/v1/sessions/details?${qs(r.json.sessionId)}`);
        assert.equal(d.json.session.metadata.name, 'One shot');
        assert.deepEqual(d.json.session.metadata.tags, ['t1', 't2']);
        for (const body of [{}, { query: '' }]) {
            for (const p of ['/api/v1/oneshot/query', '/api/v1/oneshot/query/stream']) {
                const e = await post(srv, p, body);
                assert.equal(e.status, 400, `${p}: ${e.text}`);
                assert.deepEqual(e.json, { error: 'Query is required' });
            }
        }
    });

    test('oneshot model failure -> 500 {sessionId, success:false, error}', async () => {
        const r = await post(srv, '/api/v1/oneshot/query', { query: q('auth401') });
        assert.equal(r.status, 500, r.text);
        assert.equal(r.json.success, false);
        assert.match(r.json.sessionId, NANOID_RE);
        assert.equal(r.json.error.code, 'AGENT_EXECUTION_ERROR');
    });

    test('POST /api/v1/oneshot/query/stream: session_created first (no id block), then the run', async () => {
        const query = q('text', 'oneshot stream');
        const out = await sseRequest(srv, 'POST', '/api/v1/oneshot/query/stream', { body: { query } });
        assertStreamHeaders(out);
        assert.ok(out.raw.startsWith('data: '), `first bytes: ${out.raw.slice(0, 80)}`);
        const cut = out.raw.indexOf('\n\n') + 2;
        const first = JSON.parse(out.raw.slice(6, cut - 2));
        assert.deepEqual(Object.keys(first).sort(), ['sessionId', 'timestamp', 'type']);
        assert.equal(first.type, 'session_created');
        assert.match(first.sessionId, NANOID_RE);
        assert.ok(Math.abs(first.timestamp - Date.now()) < 60000);
        const rest = parseSse(out.raw.slice(cut));
        const runOut = { ...rest, raw: out.raw.slice(cut), events: rest.frames.map((f) => f.event) };
        assertFraming(runOut, { prevStoredId: 0 });
        assertRunStart(runOut.events, first.sessionId, query);
        assertRunEnd(runOut.events, first.sessionId, 1);
        assert.deepEqual(await getEvents(srv, first.sessionId), persisted(runOut.events), 'session_created is not stored');
    });
});

describe('generate-summary', () => {
    test('400 "Messages are required" unless messages is a non-empty array', async () => {
        const { sessionId } = await createV1(srv);
        for (const extra of [{}, { messages: [] }, { messages: 'hello' }, { messages: null }]) {
            const r = await post(srv, '/api/v1/sessions/generate-summary', { sessionId, ...extra });
            assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
            assert.deepEqual(r.json, { error: 'Messages are required' });
        }
    });

    test('title from the model; unparseable -> "Untitled Conversation"; model failure -> 500', { timeout: 30000 }, async () => {
        const titles = await startTitleFake();
        let s;
        try {
            s = await startServer({ fake: titles, args: ['--llm.maxRetries', '0'] });
            const { sessionId } = await createV1(s);
            const messages = [
                { role: 'user', content: 'What is the weather in Paris today? [[title:ok]]' },
                { role: 'assistant', content: 'Sunny and 24 degrees.' },
            ];
            const r = await post(s, '/api/v1/sessions/generate-summary', { sessionId, messages });
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(r.json, { summary: TITLE, model: 'fake-model', provider: 'openai-compatible' });
            const rec = titles.requests.at(-1);
            assert.match(rec.url, /\/chat\/completions$/);
            assert.equal(rec.headers.authorization, `Bearer ${TEST_API_KEY}`);
            const sys = (rec.body.messages || []).filter((m) => m.role === 'system');
            assert.ok(sys.length >= 1, 'a system message');
            assert.match(JSON.stringify(sys), /title/i, 'it asks for a title');
            assert.ok(rec.raw.includes('What is the weather in Paris today?'), 'the conversation is sent');

            const g = await post(s, '/api/v1/sessions/generate-summary', {
                sessionId,
                messages: [{ role: 'user', content: 'anything [[title:garbage]]' }],
            });
            assert.equal(g.status, 200, g.text);
            assert.deepEqual(g.json, { summary: 'Untitled Conversation', model: 'fake-model', provider: 'openai-compatible' });

            const f = await post(s, '/api/v1/sessions/generate-summary', {
                sessionId,
                messages: [{ role: 'user', content: 'anything [[title:fail]]' }],
            });
            assert.equal(f.status, 500, f.text);
            assert.equal(f.json.error, 'Failed to generate summary');
            assert.equal(typeof f.json.message, 'string');
            assert.ok(f.json.message.includes(TITLE_ERROR_MESSAGE), f.json.message);
            assert.ok(!f.text.includes(TEST_API_KEY));
            assert.deepEqual(await getEvents(s, sessionId), [], 'a summary is not a run: nothing stored');
        } finally {
            await cleanup(s, titles);
        }
    });
});

describe('share', () => {
    test('POST /api/v1/sessions/share -> self-contained HTML with escaped events', async () => {
        const { sessionId } = await createV1(srv);
        const nasty = '</script><script>alert("pwned")</script> <!-- & -->';
        const query = q('text', nasty);
        assert.equal((await post(srv, '/api/v1/sessions/query', { sessionId, query })).status, 200);
        const r = await post(srv, '/api/v1/sessions/share', { sessionId });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['html', 'sessionId', 'success']);
        assert.equal(r.json.success, true);
        assert.equal(r.json.sessionId, sessionId);
        const html = r.json.html;
        assert.ok(html.startsWith('<!DOCTYPE html>'), html.slice(0, 60));
        assert.ok(!html.includes('<script>alert'), 'the query cannot open a script');
        assert.ok(!html.includes('</script><script>'), 'the query cannot close the script tag');
        assert.ok(!html.includes('<!-- & -->'), 'no raw < > from the events');
        assert.ok(html.includes('\\u003C\\/script\\u003E'), 'escaped as \\u003C \\/ \\u003E');
        for (const e of await getEvents(srv, sessionId)) assert.ok(html.includes(e.id), `event ${e.type} ${e.id} is embedded`);
        assert.ok(!/\s(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(html), 'no external resources');
        assert.ok(!html.includes(TEST_API_KEY));
    });
});

describe('workspace routes', () => {
    let sid;
    let ws;
    before(async () => {
        ws = srv.workspace;
        fs.mkdirSync(path.join(ws, 'wsfiles/inner'), { recursive: true });
        fs.mkdirSync(path.join(ws, 'wsfiles/zdir'), { recursive: true });
        fs.writeFileSync(path.join(ws, 'wsfiles/a.txt'), 'hello');
        fs.writeFileSync(path.join(ws, 'wsfiles/b.txt'), 'bb');
        fs.mkdirSync(path.join(ws, 'wslinks'));
        fs.symlinkSync('/etc', path.join(ws, 'wslinks/out'));
        fs.symlinkSync('/etc/hostname', path.join(ws, 'wslinks/outfile'));
        fs.symlinkSync('../wsfiles', path.join(ws, 'wslinks/in'));
        const files = {
            'srch/zqneedle-top.txt': 'x',
            'srch/a/zqneedle-mid.txt': 'x',
            'srch/a/b/c/d/e/f/g/h/zqneedle-toodeep.txt': 'x',
            'srch/node_modules/zqneedle-nm.txt': 'x',
            'srch/.git/zqneedle-git.txt': 'x',
            'srch/.hidden/zqneedle-hidden.txt': 'x',
            'srch/.zqneedle-dot.txt': 'x',
            '.dotdir/keep': 'x',
            'node_modules/keep': 'x',
        };
        for (let i = 0; i < 30; i++) files[`srch/many/zqmany-${String(i).padStart(2, '0')}.txt`] = 'x';
        for (const [rel, content] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
            fs.writeFileSync(path.join(ws, rel), content);
        }
        fs.mkdirSync(path.join(ws, 'srch/zqneedle-dir'), { recursive: true });
        sid = (await createV1(srv)).sessionId;
    });

    const files = (p) => get(srv, `/api/v1/sessions/workspace/files?${qs(sid)}${p === undefined ? '' : `&path=${encodeURIComponent(p)}`}`);
    const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

    test('workspace/files: a directory, sorted directories first then by name', async () => {
        const r = await files('/wsfiles');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.type, 'directory');
        assert.equal(r.json.path, '/wsfiles');
        assert.deepEqual(
            r.json.files.map((f) => [f.name, f.isDirectory, f.path]),
            [
                ['inner', true, '/wsfiles/inner'],
                ['zdir', true, '/wsfiles/zdir'],
                ['a.txt', false, '/wsfiles/a.txt'],
                ['b.txt', false, '/wsfiles/b.txt'],
            ],
        );
        const a = r.json.files[2];
        assert.equal(a.size, 5);
        assert.match(a.modified, ISO_RE);
        const mtime = fs.statSync(path.join(ws, 'wsfiles/a.txt')).mtimeMs;
        assert.ok(Math.abs(Date.parse(a.modified) - mtime) < 1000, `modified ${a.modified}`);
    });

    test('workspace/files: default path "/" is the workspace root', async () => {
        const r = await files(undefined);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.type, 'directory');
        assert.equal(r.json.path, '/');
        const entry = r.json.files.find((f) => f.name === 'wsfiles');
        assert.ok(entry, JSON.stringify(r.json.files.map((f) => f.name)));
        assert.equal(entry.isDirectory, true);
        assert.equal(entry.path, '/wsfiles');
        const kinds = r.json.files.map((f) => f.isDirectory);
        assert.deepEqual(kinds, [...kinds].sort((x, y) => Number(y) - Number(x)), 'directories first');
    });

    test('workspace/files: a file', async () => {
        const r = await files('/wsfiles/a.txt');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['modified', 'name', 'path', 'size', 'type']);
        assert.equal(r.json.type, 'file');
        assert.equal(r.json.name, 'a.txt');
        assert.equal(r.json.size, 5);
        assert.equal(r.json.path, '/wsfiles/a.txt');
        assert.match(r.json.modified, ISO_RE);
    });

    test('workspace/files: 404 "Path not found"; 403 "Access denied" for .. and symlinks out', async () => {
        const nf = await files('/wsfiles/nope.txt');
        assert.equal(nf.status, 404, nf.text);
        assert.deepEqual(nf.json, { error: 'Path not found' });
        for (const p of ['/..', '/../etc/passwd', '/wsfiles/../../etc', '../../etc/passwd', '/wslinks/out', '/wslinks/out/hostname', '/wslinks/outfile']) {
            const r = await files(p);
            assert.equal(r.status, 403, `${p}: ${r.status} ${r.text}`);
            assert.deepEqual(r.json, { error: 'Access denied' }, p);
            assert.ok(!r.text.includes('root:'), 'nothing from outside leaks');
        }
        const inside = await files('/wslinks/in');
        assert.equal(inside.status, 200, `a symlink that stays inside is fine: ${inside.text}`);
        assert.equal(inside.json.type, 'directory');
    });

    const search = (extra) => get(srv, `/api/v1/sessions/workspace/search?${qs(sid)}${extra}`);

    test('workspace/search: matches, skipping node_modules, .git, dot entries and deep paths', async () => {
        const r = await search('&q=zqneedle');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['items']);
        const names = r.json.items.map((i) => i.name).sort();
        assert.ok(names.includes('zqneedle-top.txt'), names.join(','));
        assert.ok(names.includes('zqneedle-mid.txt'), names.join(','));
        assert.ok(names.includes('zqneedle-dir'), names.join(','));
        for (const bad of ['zqneedle-nm.txt', 'zqneedle-git.txt', 'zqneedle-hidden.txt', '.zqneedle-dot.txt', 'zqneedle-toodeep.txt']) {
            assert.ok(!names.includes(bad), `${bad} must be skipped`);
        }
        const top = r.json.items.find((i) => i.name === 'zqneedle-top.txt');
        assert.deepEqual(top, { name: 'zqneedle-top.txt', path: path.join(ws, 'srch/zqneedle-top.txt'), type: 'file', relativePath: 'srch/zqneedle-top.txt' });
        const dir = r.json.items.find((i) => i.name === 'zqneedle-dir');
        assert.equal(dir.type, 'directory');
        const exact = await search('&q=zqneedle-top.txt');
        assert.equal(exact.json.items[0].name, 'zqneedle-top.txt', 'an exact name match ranks first');
    });

    test('workspace/search: type filter, at most 20 items, empty q lists the top level', async () => {
        const onlyDirs = await search('&q=zqneedle&type=directory');
        assert.deepEqual(onlyDirs.json.items.map((i) => i.name), ['zqneedle-dir']);
        const onlyFiles = await search('&q=zqneedle&type=file');
        assert.ok(onlyFiles.json.items.length >= 2);
        assert.ok(onlyFiles.json.items.every((i) => i.type === 'file'));
        const many = await search('&q=zqmany');
        assert.equal(many.json.items.length, 20);
        const top = await search('&q=');
        assert.equal(top.status, 200, top.text);
        const names = top.json.items.map((i) => i.name);
        assert.ok(names.includes('srch') && names.includes('wsfiles'), names.join(','));
        assert.ok(!names.includes('.dotdir') && !names.includes('node_modules'), names.join(','));
        const kinds = top.json.items.map((i) => i.type);
        assert.ok(kinds.indexOf('file') === -1 || kinds.lastIndexOf('directory') < kinds.indexOf('file'), 'directories first');
        const missing = await search('');
        assert.equal(missing.status, 400, missing.text);
        assert.deepEqual(missing.json, { error: 'Search query parameter is required' });
    });

    test('workspace/validate: exists / type / outside; 400 without a paths array', async () => {
        const p = `/api/v1/sessions/workspace/validate?${qs(sid)}`;
        const r = await post(srv, p, { paths: ['wsfiles/a.txt', 'wsfiles', 'nope.txt', '../outside.txt', '/etc/passwd'] });
        assert.equal(r.status, 200, r.text);
        const res = r.json.results;
        assert.equal(res.length, 5);
        assert.deepEqual(res[0], { path: 'wsfiles/a.txt', exists: true, type: 'file' });
        assert.deepEqual(res[1], { path: 'wsfiles', exists: true, type: 'directory' });
        assert.equal(res[2].path, 'nope.txt');
        assert.equal(res[2].exists, false);
        assert.equal(res[2].type, undefined);
        assert.deepEqual(res[3], { path: '../outside.txt', exists: false, error: 'Path outside workspace' });
        // an absolute path is either refused as outside or taken relative to the workspace; it
        // never reports the host's file
        assert.equal(res[4].path, '/etc/passwd');
        assert.equal(res[4].exists, false, JSON.stringify(res[4]));
        for (const body of [{}, { paths: 'wsfiles' }, { paths: null }]) {
            const e = await post(srv, p, body);
            assert.equal(e.status, 400, `${JSON.stringify(body)}: ${e.text}`);
            assert.deepEqual(e.json, { error: 'Paths array is required' });
        }
    });
});

describe('server-wide routes', () => {
    test('GET /api/v1/version -> {version, buildTime, gitHash}', async () => {
        const r = await get(srv, '/api/v1/version');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['buildTime', 'gitHash', 'version']);
        assert.equal(typeof r.json.version, 'string');
        assert.ok(['number', 'string'].includes(typeof r.json.buildTime));
        assert.equal(typeof r.json.gitHash, 'string');
    });

    test('GET /api/v1/agent/options: model with a masked key, workspace', async () => {
        const r = await get(srv, '/api/v1/agent/options');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['options']);
        const m = r.json.options.model;
        assert.equal(m.provider, MODEL.provider);
        assert.equal(m.id, MODEL.id);
        const k = TEST_API_KEY;
        assert.equal(m.apiKey, `${k.slice(0, 4)}${'*'.repeat(Math.max(k.length - 8, 3))}${k.slice(-4)}`);
        assert.ok(!r.text.includes(k), 'the key never appears unmasked');
        assert.equal(r.json.options.workspace, srv.workspace);
        assert.equal(r.json.options.workspaceName, path.basename(srv.workspace));
    });

    test('GET /api/v1/models -> {models:[{id, provider}]} without secrets', async () => {
        const r = await get(srv, '/api/v1/models');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['models']);
        assert.equal(r.json.models[0].id, MODEL.id);
        assert.equal(r.json.models[0].provider, MODEL.provider);
        for (const m of r.json.models) for (const key of Object.keys(m)) assert.ok(['id', 'provider', 'displayName'].includes(key), key);
        assert.ok(!r.text.includes(TEST_API_KEY) && !r.text.includes(fake.baseURL));
    });

    test('GET /api/v1/share/config and GET /api/v1/runtime-settings', async () => {
        const r = await get(srv, '/api/v1/share/config');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { hasShareProvider: false, shareProvider: null });
        const empty = { schema: { type: 'object', properties: {} }, currentValues: {} };
        const s = await get(srv, '/api/v1/runtime-settings');
        assert.equal(s.status, 200);
        assert.deepEqual(s.json, empty);
        const { sessionId } = await createV1(srv);
        const s2 = await get(srv, `/api/v1/runtime-settings?${qs(sessionId)}`);
        assert.equal(s2.status, 200, s2.text);
        assert.deepEqual(s2.json, empty);
    });

    test('POST /api/v1/runtime-settings: declared keys stored in metadata, others dropped; history survives the agent re-creation', async () => {
        const sch = await startServer({ fake, args: ['--server.runtimeSettings.schema.properties.mode.type', 'string'] });
        try {
            await runtimeSettingsCase(sch);
        } finally {
            await cleanup(sch);
        }
    });

    async function runtimeSettingsCase(srv) {
        const { sessionId } = await createV1(srv);
        const q1 = q('text', 'before settings');
        assert.equal((await post(srv, '/api/v1/sessions/query', { sessionId, query: q1 })).status, 200);
        const r = await post(srv, '/api/v1/runtime-settings', { sessionId, runtimeSettings: { mode: 'fast', undeclared: 1 } });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['runtimeSettings', 'session']);
        assert.deepEqual(r.json.runtimeSettings, { mode: 'fast' });
        assertSessionInfo(r.json.session, sessionId, srv);
        assert.deepEqual(r.json.session.metadata.runtimeSettings, { mode: 'fast' });
        const d = await get(srv, `/api/v1/sessions/details?${qs(sessionId)}`);
        assert.deepEqual(d.json.session.metadata.runtimeSettings, { mode: 'fast' });
        const q2 = q('text', 'after settings');
        assert.equal((await post(srv, '/api/v1/sessions/query', { sessionId, query: q2 })).status, 200);
        const msgs = normalizeMessages(fake.requestsMatching(q2)[0].body.messages);
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
        assert.equal(msgs[1].content, q1);
        assert.equal(msgs[2].content, textReply(q1));
    }

    test('POST /api/v1/runtime-settings errors', async () => {
        const { sessionId } = await createV1(srv);
        const cases = [
            [{ runtimeSettings: { a: 1 } }, 400, SID_REQUIRED],
            [{ sessionId }, 400, { error: 'Runtime settings object is required' }],
            [{ sessionId, runtimeSettings: 'fast' }, 400, { error: 'Runtime settings object is required' }],
            [{ sessionId: UNKNOWN, runtimeSettings: { a: 1 } }, 404, NOT_FOUND],
        ];
        for (const [body, status, json] of cases) {
            const r = await post(srv, '/api/v1/runtime-settings', body);
            assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
            assert.deepEqual(r.json, json);
        }
    });

    test('POST /api/v1/sessions/model: validation, then {success:true, sessionInfo}', async () => {
        const { sessionId } = await createV1(srv);
        const missing = { error: 'Missing required parameters: sessionId, model (with provider and id)' };
        for (const extra of [{}, { model: { provider: 'openai-compatible' } }, { model: { id: 'fake-model' } }]) {
            const r = await post(srv, '/api/v1/sessions/model', { sessionId, ...extra });
            assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
            assert.deepEqual(r.json, missing);
        }
        const bad = await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai', id: 'gpt-nope' } });
        assert.equal(bad.status, 400, bad.text);
        assert.deepEqual(bad.json, { error: 'Invalid model configuration' });
        const ok = await post(srv, '/api/v1/sessions/model', { sessionId, model: MODEL });
        assert.equal(ok.status, 200, ok.text);
        assert.deepEqual(Object.keys(ok.json).sort(), ['sessionInfo', 'success']);
        assert.equal(ok.json.success, true);
        assertSessionInfo(ok.json.sessionInfo, sessionId);
        assert.equal(ok.json.sessionInfo.metadata.modelConfig.provider, MODEL.provider);
        assert.equal(ok.json.sessionInfo.metadata.modelConfig.id, MODEL.id);
        assert.ok(!ok.text.includes(TEST_API_KEY));
        const query = q('text', 'after model switch');
        const r = await post(srv, '/api/v1/sessions/query', { sessionId, query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.content, textReply(query));
    });
});

describe('seed routes on the same store', () => {
    test('a /api/v1 session works on /api/sessions/*, and a seed session is visible on /api/v1', async () => {
        const { sessionId } = await createV1(srv);
        const query = q('text', 'seed on v1 session');
        const r = await post(srv, '/api/sessions/query', { sessionId, query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.content, textReply(query));
        assert.equal((await getEvents(srv, sessionId))[0].content, query);

        const seedSid = await createSession(srv);
        assert.ok((await listSessions(srv)).some((s) => s.id === seedSid), 'seed session listed');
        const d = await get(srv, `/api/v1/sessions/details?${qs(seedSid)}`);
        assert.equal(d.status, 200, d.text);
        assertSessionInfo(d.json.session, seedSid);
        const q2 = q('text', 'seed session');
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: seedSid, query: q2 })).status, 200);
        const stored = await getEvents(srv, seedSid);
        assert.deepEqual(stored.map((e) => e.type), ['user_message', 'agent_run_start', 'assistant_message', 'agent_run_end']);
        const q3 = q('text', 'v1 on seed session');
        const out = await streamV1(srv, seedSid, q3);
        assertFraming(out, { prevStoredId: stored.length });
        assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(q3));
    });
});
