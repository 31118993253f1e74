// SPDX-License-Identifier: MIT
// LLM failures: 401 (not retried), 429 with Retry-After (retried, succeeds), 500 until retries run
// out, a dropped stream, an error object inside a 200 stream, a stalled stream, no model at all;
// and the API key never leaking into output or responses.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { OPENAI_500_MESSAGE, STREAM_ERROR_MESSAGE, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import {
    cleanup,
    collapsedTypes,
    createSession,
    get,
    ofType,
    post,
    q,
    startServer,
    streamQuery,
    test,
} from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({
        fake,
        args: ['--llm.maxRetries', '1', '--llm.retryBaseMs', '10', '--llm.idleTimeoutMs', '300'],
    });
});
after(() => cleanup(srv, fake));

/** The stream ended right after a system error event; returns it. */
function assertEndsWithError(out) {
    assertFraming(out);
    assertEventBasics(out.events);
    const last = out.events.at(-1);
    assert.equal(last.type, 'system', `last event: ${JSON.stringify(last)}`);
    assert.equal(last.level, 'error');
    assert.equal(typeof last.message, 'string');
    assert.match(last.message, /^Error in agent execution: /);
    assert.deepEqual(collapsedTypes(out.events).slice(0, 2), ['user_message', 'agent_run_start']);
    assert.equal(ofType(out.events, 'agent_run_end').length, 0, 'no agent_run_end after the error frame');
    return last;
}

/** After a failed run the session is idle again and answers a normal query; ids keep going up. */
async function assertSessionUsable(s, sid, prevOut) {
    const query = q('text', 'recovery');
    const out = await streamQuery(s, sid, query);
    assert.equal(out.status, 200, out.raw);
    assertFraming(out);
    if (prevOut) {
        const lastPrev = Number(prevOut.frames.at(-1).id);
        assert.ok(Number(out.frames[0].id) > lastPrev, `ids went from ${lastPrev} to ${out.frames[0].id}`);
    }
    assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(query));
    assertRunEnd(out.events, sid);
}

describe('HTTP errors from the model', () => {
    test('401: one attempt, system error "401 Incorrect API key provided", stream closes', async () => {
        const sid = await createSession(srv);
        const query = q('auth401');
        const out = await streamQuery(srv, sid, query);
        const err = assertEndsWithError(out);
        assert.equal(err.message, 'Error in agent execution: 401 Incorrect API key provided');
        assert.equal(fake.requestsMatching(query).length, 1, '4xx is not retried');
        await assertSessionUsable(srv, sid, out);
    });

    test('401 non-streaming -> 500 Failed to process query with the reason', async () => {
        const sid = await createSession(srv);
        const query = q('auth401');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 500, r.text);
        assert.equal(r.json.error, 'Failed to process query');
        assert.match(r.json.message, /401 Incorrect API key provided/);
        assert.equal(fake.requestsMatching(query).length, 1);
        await assertSessionUsable(srv, sid);
    });

    test('429 with retry-after: 1 is retried after the pause and the run succeeds', async () => {
        const sid = await createSession(srv);
        const query = q('rate429 ra=1');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        assert.equal(ofType(out.events, 'system').length, 0, JSON.stringify(ofType(out.events, 'system')));
        assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(query));
        assertRunEnd(out.events, sid, 1);
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 2);
        assert.equal(reqs[0].status, 429);
        const gap = reqs[1].startedAt - reqs[0].endedAt;
        assert.ok(gap >= 900, `retry came ${gap} ms after the 429; retry-after asked for 1000 ms`);
    });

    test('429 with retry-after-ms is honoured too', async () => {
        const sid = await createSession(srv);
        const query = q('rate429 ms=400');
        const out = await streamQuery(srv, sid, query);
        assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(query));
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 2);
        const gap = reqs[1].startedAt - reqs[0].endedAt;
        assert.ok(gap >= 350, `retry came ${gap} ms after the 429; retry-after-ms asked for 400 ms`);
    });

    test('500 every time: 1 + maxRetries attempts, then a system error', async () => {
        const sid = await createSession(srv);
        const query = q('err500');
        const out = await streamQuery(srv, sid, query);
        const err = assertEndsWithError(out);
        assert.equal(err.message, `Error in agent execution: 500 ${OPENAI_500_MESSAGE}`);
        assert.equal(fake.requestsMatching(query).length, 2, '--llm.maxRetries 1 -> 2 attempts');
        await assertSessionUsable(srv, sid, out);
    });

    test('500 non-streaming -> 500 with the reason', async () => {
        const sid = await createSession(srv);
        const query = q('err500');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 500);
        assert.equal(r.json.error, 'Failed to process query');
        assert.ok(r.json.message.includes(`500 ${OPENAI_500_MESSAGE}`), r.json.message);
    });
});

describe('broken streams', () => {
    test('a dropped stream ends the run with a system error (not retried once started)', async () => {
        const sid = await createSession(srv);
        const query = q('drop');
        const out = await streamQuery(srv, sid, query);
        assertEndsWithError(out);
        assert.equal(fake.requestsMatching(query).length, 1);
        await assertSessionUsable(srv, sid, out);
    });

    test('an error object inside a 200 stream ends the run with its message', async () => {
        const sid = await createSession(srv);
        const query = q('streamerror');
        const out = await streamQuery(srv, sid, query);
        const err = assertEndsWithError(out);
        assert.ok(err.message.includes(STREAM_ERROR_MESSAGE), err.message);
        await assertSessionUsable(srv, sid, out);
    });

    test('a stalled stream times out after --llm.idleTimeoutMs and the transfer is dropped', async () => {
        const sid = await createSession(srv);
        const query = q('stall');
        const t0 = Date.now();
        const out = await streamQuery(srv, sid, query, { timeoutMs: 10000 });
        const took = Date.now() - t0;
        assertEndsWithError(out);
        assert.ok(took >= 250, `gave up after ${took} ms, before the idle timeout`);
        assert.ok(took < 5000, `took ${took} ms to notice a stall with a 300 ms idle timeout`);
        const [rec] = fake.requestsMatching(query);
        const closed = await fake.waitForRequest((r) => r === rec && r.closedEarly, 3000).catch(() => null);
        assert.ok(closed, 'the fake saw the stalled connection closed');
        await assertSessionUsable(srv, sid, out);
    });

    test('non-streaming stalled query -> 500', async () => {
        const sid = await createSession(srv);
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query: q('stall') });
        assert.equal(r.status, 500);
        assert.equal(r.json.error, 'Failed to process query');
        assert.equal(typeof r.json.message, 'string');
    });

    test('an unreachable model endpoint ends with a system error', async () => {
        const dead = await startFakeOpenAI();
        const baseURL = dead.baseURL;
        await dead.close(); // nothing listens there any more
        const s = await startServer({
            args: ['--model.provider', 'openai-compatible', '--model.id', 'm', '--model.baseURL', baseURL, '--model.apiKey', 'k',
                '--llm.maxRetries', '1', '--llm.retryBaseMs', '10'],
        });
        try {
            const sid = await createSession(s);
            const out = await streamQuery(s, sid, q('text'));
            assertEndsWithError(out);
            assert.equal((await get(s, '/api/v1/health')).status, 200);
        } finally {
            await s.stop();
        }
    });
});

describe('no model configured', () => {
    test('the server starts; a query ends with "no model configured: ..."', async () => {
        const s = await startServer({ args: [] }); // no model flags, no OPENAI_* env
        try {
            assert.equal((await get(s, '/api/v1/health')).status, 200);
            const sid = await createSession(s);
            const out = await streamQuery(s, sid, 'hello');
            assertFraming(out);
            const last = out.events.at(-1);
            assert.equal(last.type, 'system');
            assert.equal(last.level, 'error');
            assert.match(last.message, /^(Error in agent execution: )?no model configured: /);
            const r = await post(s, '/api/sessions/query', { sessionId: sid, query: 'hello' });
            assert.ok(r.status >= 400, `non-streaming answered ${r.status}`);
            assert.equal(r.json.error, 'Failed to process query');
            assert.match(r.json.message, /no model configured: /);
        } finally {
            await s.stop();
        }
    });
});

describe('the API key never leaks', () => {
    test('not in stdout, stderr (debug logs) or any response', async () => {
        const KEY = 'sk-LEAKCHECK-5e8f1a2b3c4d5e6f7a8b9c0d';
        const f = await startFakeOpenAI();
        const s = await startServer({ fake: f, apiKey: KEY, args: ['--logLevel', 'debug'] });
        const bodies = [];
        try {
            const sid = await createSession(s);
            for (const sc of ['text', 'tool', 'auth401', 'err500', 'streamerror']) {
                const out = await streamQuery(s, sid, q(sc));
                bodies.push(out.raw);
            }
            for (const sc of ['text', 'auth401']) {
                const r = await post(s, '/api/sessions/query', { sessionId: sid, query: q(sc) });
                bodies.push(r.text);
            }
            bodies.push((await get(s, '/api/v1/health')).text);
            bodies.push((await get(s, '/api/nope')).text);
            // the key did reach the model
            assert.ok(f.requests.length > 0);
            assert.equal(f.requests[0].headers.authorization, `Bearer ${KEY}`);
        } finally {
            await cleanup(s, f);
        }
        const secret = KEY.slice(3); // also catches a key printed without its "sk-" prefix
        for (const [name, text] of [['stdout', s.stdout], ['stderr', s.stderr], ...bodies.map((b, i) => [`response ${i}`, b])]) {
            assert.ok(!text.includes(secret), `the API key appears in ${name}`);
        }
    });
});
