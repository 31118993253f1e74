// SPDX-License-Identifier: MIT
// Abort during the LLM stream and between a tool and the next LLM call, abort when idle, a second
// query while a run is executing, and a client that disconnects mid-stream.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import {
    cleanup,
    collapsedTypes,
    createSession,
    get,
    ofType,
    post,
    q,
    sleep,
    startServer,
    streamQuery,
    test,
    waitFor,
} from './lib/server.mjs';

const ALREADY_RUNNING =
    'Agent is already executing a task. Complete or abort the current task before starting a new one.';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

/** The tail of an aborted stream: system warning, abort message, agent_run_end aborted. */
function assertAbortedTail(out, sid) {
    assertFraming(out);
    assertEventBasics(out.events);
    const ev = out.events;
    assert.deepEqual(collapsedTypes(ev).slice(-3), ['system', 'assistant_message', 'agent_run_end'], collapsedTypes(ev).join(','));
    const [sys, msg, end] = ev.slice(-3);
    assert.equal(sys.level, 'warning');
    assert.equal(sys.message, 'Request was aborted');
    assert.equal(msg.content, 'Request was aborted');
    assert.equal(msg.finishReason, 'abort');
    assert.equal(end.sessionId, sid);
    assert.equal(end.status, 'aborted');
}

describe('abort', () => {
    test('during the LLM stream: success true, stream ends aborted, LLM transfer dropped', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=100 n=100');
        let abortRes = null;
        let abortedAt = 0;
        const t0 = Date.now();
        const out = await streamQuery(srv, sid, query, {
            onEvent: async (ev) => {
                if (ev.type === 'assistant_streaming_message' && !abortRes) {
                    abortRes = await post(srv, '/api/sessions/abort', { sessionId: sid });
                    abortedAt = Date.now();
                }
            },
        });
        assert.ok(abortRes, 'saw streaming deltas before aborting');
        assert.equal(abortRes.status, 200);
        assert.deepEqual(abortRes.json, { success: true });
        assert.ok(Date.now() - abortedAt < 3000, 'the stream ended promptly after the abort');
        assert.ok(Date.now() - t0 < 8000, 'the run did not wait for the slow model to finish');
        assertAbortedTail(out, sid);
        const [rec] = fake.requestsMatching(query);
        await fake.waitForRequest((r) => r === rec && r.endedAt !== null, 3000);
        assert.equal(rec.closedEarly, true, 'the fake saw its connection closed before the answer ended');
        assert.equal(rec.completed, false);

        // idle again: abort answers false and a new query works
        const r = await post(srv, '/api/sessions/abort', { sessionId: sid });
        assert.deepEqual(r.json, { success: false });
        const q2 = q('text', 'after abort');
        const out2 = await streamQuery(srv, sid, q2);
        assert.equal(ofType(out2.events, 'assistant_message')[0].content, textReply(q2));
        assertRunEnd(out2.events, sid);
    });

    test('via POST /api/sessions/:sessionId/abort', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=100 n=100');
        let abortRes = null;
        const out = await streamQuery(srv, sid, query, {
            onEvent: async (ev) => {
                if (ev.type === 'assistant_streaming_message' && !abortRes) {
                    abortRes = await post(srv, `/api/sessions/${sid}/abort`);
                }
            },
        });
        assert.deepEqual(abortRes.json, { success: true });
        assertAbortedTail(out, sid);
    });

    test('between a tool and the next LLM call (request held by the model)', async () => {
        const sid = await createSession(srv);
        const query = q('toolthenhold hold=15000');
        const streaming = streamQuery(srv, sid, query);
        const held = await fake.waitForRequest((r) => r.query === query && r.step === 1, 10000);
        const ab = await post(srv, '/api/sessions/abort', { sessionId: sid });
        assert.deepEqual(ab.json, { success: true });
        const out = await streaming;
        assertAbortedTail(out, sid);
        const types = collapsedTypes(out.events);
        assert.ok(types.includes('tool_call') && types.includes('tool_result'), types.join(','));
        assert.ok(types.indexOf('tool_result') < types.indexOf('system'));
        await fake.waitForRequest((r) => r === held && r.endedAt !== null, 3000);
        assert.equal(held.closedEarly, true, 'the held LLM request was dropped');
        assert.equal(fake.requestsMatching(query).length, 2, 'no LLM call after the abort');
    });

    test('non-streaming query aborted -> 200 {result: "Request was aborted"}', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=100 n=100');
        const pending = post(srv, '/api/sessions/query', { sessionId: sid, query });
        await fake.waitForRequest((r) => r.query === query, 5000);
        await sleep(150);
        const ab = await post(srv, '/api/sessions/abort', { sessionId: sid });
        assert.deepEqual(ab.json, { success: true });
        const r = await pending;
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.type, 'assistant_message');
        assert.equal(r.json.result.content, 'Request was aborted');
        assert.equal(r.json.result.finishReason, 'abort');
    });

    test('right at agent_run_start: success true, the run ends aborted', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=100 n=100');
        let abortRes = null;
        const out = await streamQuery(srv, sid, query, {
            onEvent: async (ev) => {
                if (ev.type === 'agent_run_start') abortRes = await post(srv, '/api/sessions/abort', { sessionId: sid });
            },
        });
        assert.deepEqual(abortRes.json, { success: true });
        assertAbortedTail(out, sid);
        assert.equal(ofType(out.events, 'assistant_message').length, 1, 'only the abort message');
        // whatever reached the model was dropped
        for (const rec of fake.requestsMatching(query)) {
            await fake.waitForRequest((r) => r === rec && r.endedAt !== null, 3000);
            assert.equal(rec.completed, false);
        }
        const q2 = q('text', 'after early abort');
        const out2 = await streamQuery(srv, sid, q2);
        assert.equal(ofType(out2.events, 'assistant_message')[0].content, textReply(q2));
    });

    test('abort of an idle session answers success false', async () => {
        const sid = await createSession(srv);
        await streamQuery(srv, sid, q('text'));
        const r = await post(srv, '/api/sessions/abort', { sessionId: sid });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: false });
    });
});

describe('one run at a time', () => {
    test('a second query while running -> 500, the first run is not disturbed', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=30 n=40');
        let second = null;
        let secondNs = null;
        const out = await streamQuery(srv, sid, query, {
            onEvent: async (ev) => {
                if (ev.type === 'assistant_streaming_message' && !second) {
                    second = await post(srv, '/api/sessions/query/stream', { sessionId: sid, query: q('text') });
                    secondNs = await post(srv, '/api/sessions/query', { sessionId: sid, query: q('text') });
                }
            },
        });
        assert.ok(second, 'the second query was sent during the run');
        assert.equal(second.status, 500);
        assert.match(second.headers.get('content-type'), /^application\/json/);
        assert.deepEqual(second.json, { error: 'Failed to process streaming query', message: ALREADY_RUNNING });
        assert.equal(secondNs.status, 500);
        assert.deepEqual(secondNs.json, { error: 'Failed to process query', message: ALREADY_RUNNING });
        // the first run finished normally with all of its text
        assertFraming(out);
        const final = ofType(out.events, 'assistant_message');
        assert.equal(final.length, 1);
        const words = [];
        for (let i = 0; i < 40; i++) words.push(`w${i}`);
        assert.equal(final[0].content, words.join(' '));
        assertRunEnd(out.events, sid, 1);
        // the rejected queries never reached the model and are not in the history
        const q3 = q('text', 'third');
        await streamQuery(srv, sid, q3);
        const msgs = fake.requestsMatching(q3)[0].body.messages;
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
    });
});

describe('client disconnect', () => {
    test('a client that disconnects mid-stream does not stop the run; the session stays usable', async () => {
        const sid = await createSession(srv);
        const query = q('slow delay=40 n=30');
        const ctrl = new AbortController();
        const res = await fetch(`${srv.url}/api/sessions/query/stream`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ sessionId: sid, query }),
            signal: ctrl.signal,
        });
        assert.equal(res.status, 200);
        const reader = res.body.getReader();
        let got = '';
        const dec = new TextDecoder();
        while (!got.includes('assistant_streaming_message')) {
            const { value, done } = await reader.read();
            if (done) break;
            got += dec.decode(value, { stream: true });
        }
        ctrl.abort();
        await reader.cancel().catch(() => {});

        // the server stays healthy while the run continues
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
        // the model's answer is read to the end
        const [rec] = fake.requestsMatching(query);
        await fake.waitForRequest((r) => r === rec && r.endedAt !== null, 10000);
        assert.equal(rec.completed, true, 'the LLM transfer was not dropped');
        // once the run is over the session takes a new query
        const q2 = q('text', 'after disconnect');
        const out = await waitFor(
            async () => {
                const o = await streamQuery(srv, sid, q2);
                return o.status === 200 ? o : null;
            },
            { timeoutMs: 10000, intervalMs: 200, what: 'the session to become idle' },
        );
        assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(q2));
        // the finished run is in the history
        const msgs = fake.requestsMatching(q2)[0].body.messages;
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
    });

    test('many clients that disconnect at once leave the server healthy', async () => {
        const sids = await Promise.all(Array.from({ length: 20 }, () => createSession(srv)));
        const queries = sids.map(() => q('slow delay=20 n=20'));
        await Promise.all(
            sids.map(async (sid, i) => {
                const ctrl = new AbortController();
                const res = await fetch(`${srv.url}/api/sessions/query/stream`, {
                    method: 'POST',
                    headers: { 'content-type': 'application/json' },
                    body: JSON.stringify({ sessionId: sid, query: queries[i] }),
                    signal: ctrl.signal,
                });
                const reader = res.body.getReader();
                await reader.read();
                ctrl.abort();
                await reader.cancel().catch(() => {});
            }),
        );
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
        // every run reads its model answer to the end, and each session then takes a new query
        for (const query of queries) {
            const rec = await fake.waitForRequest((r) => r.query === query && r.endedAt !== null, 10000);
            assert.equal(rec.completed, true);
        }
        await Promise.all(
            sids.map(async (sid) => {
                const q2 = q('text', 'again');
                const out = await waitFor(
                    async () => {
                        const o = await streamQuery(srv, sid, q2);
                        return o.status === 200 ? o : null;
                    },
                    { timeoutMs: 10000, intervalMs: 100, what: `session ${sid} idle` },
                );
                assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(q2));
            }),
        );
    });
});
