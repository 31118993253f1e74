// SPDX-License-Identifier: MIT
// Resumable streams: GET /api/v1/sessions/events/stream replays the stored log after a given id
// (?after= or Last-Event-ID) and then follows the run in progress; reconnecting with the last seen
// id gives every stored event exactly once, in order. A client that drops POST .../query/stream
// does not stop the run, and its events are stored.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertFraming, assertRunEnd } from './lib/checks.mjs';
import { cleanup, ofType, post, q, sleep, startServer, test } from './lib/server.mjs';
import {
    DELTA_TYPES,
    assertExactlyOnce,
    createV1,
    eventStream,
    getEvents,
    getStatus,
    persisted,
    sseRequest,
    streamV1,
    waitEvents,
    waitIdle,
} from './lib/v1-client.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

const json = (e) => JSON.stringify(e);

function assertSseHeaders(out) {
    assert.equal(out.status, 200, out.raw);
    assert.match(out.headers.get('content-type') || '', /^text\/event-stream/);
    assert.equal(out.headers.get('cache-control'), 'no-cache');
    assert.equal(out.headers.get('x-content-type-options'), 'nosniff');
}

/** The frames of a GET stream that follows a run: framing, ids and the stored log. */
function assertFollowed(out, prevStoredId) {
    assertSseHeaders(out);
    assert.deepEqual(out.errors, [], out.raw.slice(0, 400));
    if (out.frames.length) assertFraming(out, { prevStoredId });
}

describe('replay of stored events', () => {
    test('after=0: every stored event with ids 1..N, then the response ends', async () => {
        const { sessionId } = await createV1(srv);
        await streamV1(srv, sessionId, q('tool path=replay.txt'));
        const stored = await getEvents(srv, sessionId);
        const N = stored.length;
        const t0 = Date.now();
        const out = await eventStream(srv, sessionId, { timeoutMs: 5000 });
        assert.ok(Date.now() - t0 < 3000, 'no run in progress: the stream ends right after the replay');
        assertFollowed(out, 0);
        assert.ok(out.ended);
        assert.deepEqual(out.frames.map((f) => f.id), stored.map((_, i) => String(i + 1)));
        assert.deepEqual(out.events.map(json), stored.map(json));
        assert.ok(out.raw.startsWith('id: 1\ndata: {'), out.raw.slice(0, 40));
        assert.ok(N >= 10, `tool run stored ${N} events`);
    });

    test('a log bigger than the connection\'s write queue (8 MiB) is replayed whole, in batches', { timeout: 60000 }, async () => {
        const { sessionId } = await createV1(srv);
        // Each run stores the query three times (user_message, agent_run_start, the echoed
        // answer): 6 runs of a 600 KB query make a log of more than 10 MB.
        const big = 'x'.repeat(600 * 1024);
        for (let i = 0; i < 6; i++) await streamV1(srv, sessionId, `${big} ${i}`, { timeoutMs: 20000 });
        const stored = await getEvents(srv, sessionId);
        const bytes = stored.reduce((a, e) => a + JSON.stringify(e).length, 0);
        assert.ok(bytes > 10 * 1024 * 1024, `log of ${bytes} bytes`);
        const out = await eventStream(srv, sessionId, { timeoutMs: 30000 });
        assert.ok(out.ended);
        assert.deepEqual(out.frames.map((f) => f.id), stored.map((_, i) => String(i + 1)));
        assert.deepEqual(out.events.map(json), stored.map(json));
    });

    test('?after=k and Last-Event-ID: k send exactly the events after k', async () => {
        const { sessionId } = await createV1(srv);
        await streamV1(srv, sessionId, q('tool path=replay2.txt'));
        const stored = await getEvents(srv, sessionId);
        const N = stored.length;
        for (const k of [1, 3, N - 1, N, N + 5]) {
            for (const opts of [{ after: k }, { lastEventId: k }]) {
                const out = await eventStream(srv, sessionId, { ...opts, timeoutMs: 5000 });
                assertFollowed(out, Math.min(k, N));
                assert.ok(out.ended, JSON.stringify(opts));
                const want = stored.slice(k);
                assert.deepEqual(out.frames.map((f) => f.id), want.map((_, i) => String(k + i + 1)), JSON.stringify(opts));
                assert.deepEqual(out.events.map(json), want.map(json), JSON.stringify(opts));
            }
        }
    });

    test('a session with no events: an empty stream that ends', async () => {
        const { sessionId } = await createV1(srv);
        const out = await eventStream(srv, sessionId, { timeoutMs: 5000 });
        assertSseHeaders(out);
        assert.ok(out.ended);
        assert.deepEqual(out.frames, []);
        assert.deepEqual(out.errors, []);
    });
});

describe('following a run in progress', () => {
    test('connect mid-run: stored events, then live events (deltas too) until agent_run_end', { timeout: 30000 }, async () => {
        const { sessionId } = await createV1(srv);
        const query = q('slow delay=30 n=60');
        const posting = streamV1(srv, sessionId, query, { timeoutMs: 20000 });
        await fake.waitForRequest((r) => r.query === query, 5000);
        await sleep(300);
        const [live, live2] = await Promise.all([
            eventStream(srv, sessionId, { timeoutMs: 15000 }),
            eventStream(srv, sessionId, { lastEventId: 0, timeoutMs: 15000 }),
        ]);
        const posted = await posting;
        assertRunEnd(posted.events, sessionId, 1);
        const stored = await getEvents(srv, sessionId);
        for (const out of [live, live2]) {
            assertFollowed(out, 0);
            assert.ok(out.ended, 'ends by itself after the run');
            assert.equal(out.events.at(-1).type, 'agent_run_end');
            assertExactlyOnce(persisted(out.events), stored, 'live follower');
            // the live deltas are exactly the POST stream's deltas from some point on, same JSON
            const postDeltas = posted.events.filter((e) => DELTA_TYPES.has(e.type)).map(json);
            const liveDeltas = out.events.filter((e) => DELTA_TYPES.has(e.type)).map(json);
            assert.ok(liveDeltas.length >= 10, `${liveDeltas.length} live deltas`);
            const start = postDeltas.indexOf(liveDeltas[0]);
            assert.ok(start >= 0, 'a live delta is one the POST stream sent');
            assert.deepEqual(liveDeltas, postDeltas.slice(start), 'no delta lost or reordered while following');
            // and every frame carries the same id as on the POST stream
            const postIds = new Map(posted.frames.map((f) => [f.event.id, f.id]));
            for (const f of out.frames) assert.equal(f.id, postIds.get(f.event.id), `SSE id of ${f.event.type}`);
        }
    });

    test('following a non-streaming run: its stored events live, then the stream ends', { timeout: 30000 }, async () => {
        const { sessionId } = await createV1(srv);
        const query = q('tool delay=30 path=follow-ns.txt');
        const pending = post(srv, '/api/v1/sessions/query', { sessionId, query });
        await fake.waitForRequest((r) => r.query === query, 5000);
        const live = await eventStream(srv, sessionId, { timeoutMs: 15000 });
        const r = await pending;
        assert.equal(r.status, 200, r.text);
        assertFollowed(live, 0);
        assert.ok(live.ended);
        assert.equal(live.events.at(-1).type, 'agent_run_end');
        const stored = await getEvents(srv, sessionId);
        assertExactlyOnce(persisted(live.events), stored, 'non-streaming follower');
        assert.deepEqual(live.events.find((e) => e.id === r.json.result.id), r.json.result);
    });

    for (const mode of ['lastEventId', 'after']) {
        test(`resume by ${mode === 'after' ? '?after=' : 'Last-Event-ID'} several times mid-run: exactly once, no gaps, in order`, { timeout: 40000 }, async () => {
            const { sessionId } = await createV1(srv);
            const query = q('tool delay=25 path=resume.txt', 'resume me');
            const posting = streamV1(srv, sessionId, query, { timeoutMs: 30000 });
            await fake.waitForRequest((r) => r.query === query, 5000);
            const collected = [];
            let last = 0;
            let rounds = 0;
            for (; rounds < 6; rounds++) {
                let n = 0;
                const out = await eventStream(srv, sessionId, {
                    [mode]: last,
                    timeoutMs: 15000,
                    onFrame: () => (++n >= 4 ? 'disconnect' : undefined),
                });
                assertFollowed(out, last);
                for (const f of out.frames) {
                    if (!DELTA_TYPES.has(f.event.type)) assert.ok(Number(f.id) > last, `replayed id ${f.id} <= ${last}`);
                }
                collected.push(...out.frames);
                if (out.frames.length) last = Number(out.frames.at(-1).id);
                if (out.ended) break;
                await sleep(120); // events happen while we are away
            }
            if (!collected.length || collected.at(-1).event.type !== 'agent_run_end') {
                const rest = await eventStream(srv, sessionId, { [mode]: last, timeoutMs: 15000 });
                assertFollowed(rest, last);
                assert.ok(rest.ended);
                collected.push(...rest.frames);
            }
            const posted = await posting;
            assertRunEnd(posted.events, sessionId, 3);
            const stored = await getEvents(srv, sessionId);
            const mine = collected.filter((f) => !DELTA_TYPES.has(f.event.type));
            assert.deepEqual(mine.map((f) => f.id), stored.map((_, i) => String(i + 1)), 'ids 1..N, each once');
            assertExactlyOnce(mine.map((f) => f.event), stored, 'resumed reads');
            assert.equal(collected.at(-1).event.type, 'agent_run_end');
            assert.ok(rounds >= 2, `the run outlived ${rounds} reconnects`);
        });
    }

    test('a run that ends in an error: the follower gets the error frame and the stream ends', { timeout: 30000 }, async () => {
        const s = await startServer({ fake, args: ['--llm.idleTimeoutMs', '1500', '--llm.maxRetries', '0'] });
        try {
            const { sessionId } = await createV1(s);
            const query = q('stall');
            const posting = streamV1(s, sessionId, query, { timeoutMs: 15000 });
            await fake.waitForRequest((r) => r.query === query, 5000);
            const live = await eventStream(s, sessionId, { timeoutMs: 10000 });
            const posted = await posting;
            assertFollowed(live, 0);
            assert.ok(live.ended);
            const err = live.events.filter((e) => e.type === 'system' && e.level === 'error');
            assert.equal(err.length, 1, live.raw);
            assert.equal(live.events.at(-1).type === 'system' || live.events.at(-1).type === 'agent_run_end', true);
            const postedErr = posted.events.filter((e) => e.type === 'system' && e.level === 'error');
            assert.deepEqual(err.map(json), postedErr.map(json));
            await waitIdle(s, sessionId);
            const stored = await getEvents(s, sessionId);
            assert.deepEqual(persisted(live.events).map(json), stored.slice(0, persisted(live.events).length).map(json));
            // a reconnect with the last id gets whatever was stored after it, then ends
            const rest = await eventStream(s, sessionId, { after: Number(live.frames.at(-1).id), timeoutMs: 5000 });
            assert.ok(rest.ended);
            assertExactlyOnce([...persisted(live.events), ...rest.events], stored, 'error run');
        } finally {
            await cleanup(s);
        }
    });
});

describe('client disconnects', () => {
    test('dropping POST /api/v1/sessions/query/stream mid-run: the run goes on and is stored', { timeout: 30000 }, async () => {
        const { sessionId } = await createV1(srv);
        const query = q('slow delay=30 n=40');
        let deltas = 0;
        const out = await streamV1(srv, sessionId, query, {
            onFrame: (f) => (DELTA_TYPES.has(f.event.type) && ++deltas >= 5 ? 'disconnect' : undefined),
        });
        assert.ok(out.disconnected);
        const [rec] = fake.requestsMatching(query);
        await fake.waitForRequest((r) => r === rec && r.endedAt !== null, 10000);
        assert.equal(rec.completed, true, 'the model answer was read to the end');
        const stored = await waitEvents(srv, sessionId, (ev) => ev.at(-1) && ev.at(-1).type === 'agent_run_end', 10000, 'the run to end');
        const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
        assert.equal(ofType(stored, 'assistant_message')[0].content, words);
        assert.equal(stored.at(-1).status, 'idle');
        const seen = persisted(out.events);
        assert.deepEqual(stored.slice(0, seen.length).map(json), seen.map(json), 'what the client saw is stored as seen');
        assert.deepEqual(await getStatus(srv, sessionId), { isProcessing: false, state: 'idle' });
        // the rest can be fetched from the log, and the session takes a new query
        const rest = await eventStream(srv, sessionId, { after: Number(out.frames.at(-1).id), timeoutMs: 5000 });
        assert.ok(rest.ended);
        assert.equal(rest.events.at(-1).type, 'agent_run_end');
        const q2 = q('text', 'after dropping the stream');
        const out2 = await streamV1(srv, sessionId, q2);
        assertFraming(out2, { prevStoredId: stored.length });
        assert.equal(ofType(out2.events, 'assistant_message')[0].content, textReply(q2));
    });

    test('dropping the oneshot stream right after session_created: the run is stored', { timeout: 30000 }, async () => {
        const query = q('slow delay=20 n=30');
        let created = null;
        const out = await sseRequest(srv, 'POST', '/api/v1/oneshot/query/stream', {
            body: { query },
            // any parser that yields the first data block is enough here
            parse: (raw) => {
                const m = /^data: (.*)\n\n/.exec(raw);
                return { frames: m ? [{ id: null, data: m[1], event: JSON.parse(m[1]) }] : [], errors: [] };
            },
            onFrame: (f) => {
                created = f.event;
                return 'disconnect';
            },
        });
        assert.ok(out.disconnected);
        assert.equal(created.type, 'session_created');
        const stored = await waitEvents(srv, created.sessionId, (ev) => ev.at(-1) && ev.at(-1).type === 'agent_run_end', 10000, 'the oneshot run to end');
        assert.equal(stored[0].content, query);
        assert.equal(stored.at(-1).status, 'idle');
    });
});
