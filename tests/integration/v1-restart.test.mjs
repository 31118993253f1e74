// SPDX-License-Identifier: MIT
// Durability: stop (SIGTERM) and restart on the same database keeps sessions, events and the
// model's history; kill -9 in the middle of a run loses no event any client has seen, and the cut-off
// run is marked as interrupted (once) when the session is next loaded.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import { cleanup, createSession, get, ofType, post, q, sleep, startServer, streamQuery, test } from './lib/server.mjs';
import {
    DELTA_TYPES,
    createV1,
    eventStream,
    getEvents,
    getStatus,
    listSessions,
    normalizeMessages,
    persisted,
    streamV1,
} from './lib/v1-client.mjs';

const INTERRUPTED = 'Run interrupted: the server stopped before the run finished';

let fake;

before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

const json = (e) => JSON.stringify(e);

/**
 * After a crash and a reload: every persisted-type frame the client saw is stored at position
 * id-1 with the same JSON, the seen events are a prefix of the log, and the log ends with the
 * interruption marking. Returns the stored events.
 */
function assertCrashLog(stored, seenFrames, sid) {
    const seen = seenFrames.filter((f) => !DELTA_TYPES.has(f.event.type));
    for (const f of seen) {
        const n = Number(f.id);
        assert.ok(n >= 1 && n <= stored.length, `seen stored event id ${n} is beyond the log (${stored.length})`);
        assert.equal(json(stored[n - 1]), json(f.event), `the event with SSE id ${n} is stored as seen`);
    }
    assert.deepEqual(
        stored.slice(0, seen.length).map(json),
        seen.map((f) => json(f.event)),
        'the seen events are the start of the stored log, in order',
    );
    assertEventBasics(stored);
    const [sys, end] = stored.slice(-2);
    assert.equal(sys.type, 'system', `second to last stored event: ${json(sys)}`);
    assert.equal(sys.level, 'error');
    assert.equal(sys.message, INTERRUPTED);
    assert.equal(end.type, 'agent_run_end', `last stored event: ${json(end)}`);
    assert.equal(end.status, 'error');
    assert.equal(end.sessionId, sid);
    const between = stored.slice(seen.length, -2);
    assert.ok(!between.some((e) => e.type === 'agent_run_end' || DELTA_TYPES.has(e.type)), `unexpected ${between.map((e) => e.type)}`);
    assert.equal(stored.filter((e) => e.type === 'system' && e.message === INTERRUPTED).length, 1, 'marked once');
    return stored;
}

describe('stop and restart (SIGTERM)', () => {
    test('sessions, events and the model history survive; ids continue; seed routes too', { timeout: 45000 }, async () => {
        const s = await startServer({ fake });
        let s2;
        try {
            const a = (await createV1(s)).sessionId;
            const b = (await createV1(s)).sessionId;
            const c = await createSession(s); // seed route
            assert.equal((await post(s, '/api/v1/sessions/update', { sessionId: a, metadata: { name: 'Kept name' } })).status, 200);
            const qa = q('tool path=restart.txt', 'A before restart');
            const outA = await streamV1(s, a, qa);
            assertRunEnd(outA.events, a, 3);
            const qb = q('text', 'B before restart');
            assert.equal((await post(s, '/api/v1/sessions/query', { sessionId: b, query: qb })).status, 200);
            const qc = q('text', 'C before restart');
            const outC = await streamQuery(s, c, qc);
            assertRunEnd(outC.events, c, 1);
            const listBefore = await listSessions(s);
            const before = {};
            for (const sid of [a, b, c]) before[sid] = await getEvents(s, sid);
            const lastReqA = fake.requestsMatching(qa).at(-1);
            const finalA = ofType(outA.events, 'assistant_message').at(-1);

            const d = (await createV1(s)).sessionId;
            assert.equal((await post(s, '/api/v1/sessions/delete', { sessionId: d })).status, 200);

            await s.stop();
            s2 = await s.restart();

            // listing does not need the sessions loaded; the deleted one stays deleted
            assert.deepEqual(await listSessions(s2), listBefore, 'the same sessions, same info, same order');
            assert.equal((await get(s2, `/api/v1/sessions/details?sessionId=${d}`)).status, 404);

            // each session is loaded transparently by whichever route touches it first:
            // A by the resumable stream (ids are positions in the stored log)
            const replay = await eventStream(s2, a, { after: 2, timeoutMs: 5000 });
            assert.ok(replay.ended);
            assert.deepEqual(replay.frames.map((f) => f.id), before[a].slice(2).map((_, i) => String(i + 3)));
            assert.deepEqual(replay.events.map(json), before[a].slice(2).map(json));
            for (const sid of [a, c]) {
                assert.deepEqual((await getEvents(s2, sid)).map(json), before[sid].map(json), `events of ${sid}`);
            }
            const dd = await get(s2, `/api/v1/sessions/details?sessionId=${a}`);
            assert.equal(dd.json.session.metadata.name, 'Kept name');
            assert.deepEqual(await getStatus(s2, a), { isProcessing: false, state: 'idle' });

            // A continues: the model gets the whole first conversation, rebuilt from the store
            const qa2 = q('text', 'A after restart');
            const outA2 = await streamV1(s2, a, qa2);
            assertFraming(outA2, { prevStoredId: before[a].length });
            assertRunEnd(outA2.events, a, 1);
            const got = normalizeMessages(fake.requestsMatching(qa2)[0].body.messages);
            const expected = [
                ...normalizeMessages(lastReqA.body.messages),
                { role: 'assistant', content: finalA.content },
                { role: 'user', content: qa2 },
            ];
            assert.deepEqual(got, expected, 'history after the restart = history the model would have had without it');
            assert.deepEqual(got.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'user']);
            const afterA = await getEvents(s2, a);
            assert.deepEqual(afterA.slice(0, before[a].length).map(json), before[a].map(json));
            assert.deepEqual(afterA.slice(before[a].length).map(json), persisted(outA2.events).map(json));

            // B is first touched by the non-streaming v1 query, C (a seed session) by the seed stream route
            const qb2 = q('text', 'B after restart');
            const rb = await post(s2, '/api/v1/sessions/query', { sessionId: b, query: qb2 });
            assert.equal(rb.status, 200, rb.text);
            assert.equal(rb.json.result.content, textReply(qb2));
            assert.deepEqual((await getEvents(s2, b)).slice(0, before[b].length).map(json), before[b].map(json));
            const mb = normalizeMessages(fake.requestsMatching(qb2)[0].body.messages);
            assert.deepEqual(mb.slice(1), [
                { role: 'user', content: qb },
                { role: 'assistant', content: textReply(qb) },
                { role: 'user', content: qb2 },
            ]);
            const qc2 = q('text', 'C after restart');
            const outC2 = await streamQuery(s2, c, qc2);
            assertFraming(outC2, { prevStoredId: before[c].length });
            const mc = normalizeMessages(fake.requestsMatching(qc2)[0].body.messages);
            assert.deepEqual(mc.slice(1), [
                { role: 'user', content: qc },
                { role: 'assistant', content: textReply(qc) },
                { role: 'user', content: qc2 },
            ]);
        } finally {
            await cleanup(s, s2);
        }
    });

    test('SIGTERM during a streaming run: the process exits 0 and the run is not left "executing"', { timeout: 30000 }, async () => {
        const s = await startServer({ fake });
        let s2;
        try {
            const sid = (await createV1(s)).sessionId;
            const query = q('slow delay=50 n=200');
            const streaming = streamV1(s, sid, query, { timeoutMs: 20000 });
            await fake.waitForRequest((r) => r.query === query, 5000);
            await sleep(200);
            await s.stop();
            await streaming;
            s2 = await s.restart();
            const st = await getStatus(s2, sid);
            assert.equal(st.isProcessing, false);
            const stored = await getEvents(s2, sid);
            const last = stored.at(-1);
            assert.equal(last.type, 'agent_run_end', `the run got an end: ${stored.map((e) => e.type)}`);
            assert.notEqual(last.status, 'executing');
            const q2 = q('text', 'after SIGTERM');
            const out = await streamV1(s2, sid, q2);
            assertFraming(out, { prevStoredId: stored.length });
            assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(q2));
        } finally {
            await cleanup(s, s2);
        }
    });
});

describe('kill -9', () => {
    test('mid-stream after two tool rounds: every seen event is stored, the run is marked interrupted once', { timeout: 45000 }, async () => {
        const s = await startServer({ fake });
        let s2;
        let s3;
        try {
            const sid = (await createV1(s)).sessionId;
            const other = (await createV1(s)).sessionId;
            assert.equal((await post(s, '/api/v1/sessions/query', { sessionId: other, query: q('text', 'finished before the crash') })).status, 200);
            const otherBefore = await getEvents(s, other);

            const query = q('tool delay=40 path=crash.txt', 'crash me');
            let toolResults = 0;
            let killed = false;
            const out = await streamV1(s, sid, query, {
                timeoutMs: 20000,
                onFrame: async (f) => {
                    if (f.event.type === 'tool_result') toolResults++;
                    if (!killed && toolResults === 2 && f.event.type === 'assistant_streaming_message') {
                        killed = true;
                        await s.kill9();
                    }
                },
            });
            assert.ok(killed, `killed mid-stream; saw ${out.events.map((e) => e.type)}`);
            assert.equal(s.exit.signal, 'SIGKILL');
            assert.ok(!out.ended || out.readError, 'the stream was cut, not finished');
            const thirdCall = fake.requestsMatching(query).find((r) => r.step === 2);
            assert.ok(thirdCall, 'the third model call had started');

            s2 = await s.restart();
            const stored = assertCrashLog(await getEvents(s2, sid), out.frames, sid);
            const seenPersisted = persisted(out.events);
            assert.deepEqual(
                seenPersisted.map((e) => e.type),
                ['user_message', 'agent_run_start', 'assistant_message', 'tool_call', 'tool_result', 'assistant_message', 'tool_call', 'tool_result'],
            );
            assert.equal(stored.length, seenPersisted.length + 2, 'nothing else was stored');
            assert.deepEqual(await getStatus(s2, sid), { isProcessing: false, state: 'error' });
            assert.deepEqual((await getEvents(s2, other)).map(json), otherBefore.map(json), 'a finished run is not marked');

            // a new query works; the model gets the interrupted run's tool rounds, then the new query
            const q2 = q('text', 'after the crash');
            const out2 = await streamV1(s2, sid, q2);
            assertFraming(out2, { prevStoredId: stored.length });
            assertRunEnd(out2.events, sid, 1);
            const got = normalizeMessages(fake.requestsMatching(q2)[0].body.messages);
            assert.deepEqual(got, [...normalizeMessages(thirdCall.body.messages), { role: 'user', content: q2 }]);
            assert.deepEqual(await getStatus(s2, sid), { isProcessing: false, state: 'idle' });

            // another restart: no second marking, everything kept
            const all = await getEvents(s2, sid);
            await s2.stop();
            s3 = await s2.restart();
            assert.deepEqual((await getEvents(s3, sid)).map(json), all.map(json));
            assert.deepEqual(await getStatus(s3, sid), { isProcessing: false, state: 'idle' });
        } finally {
            await cleanup(s, s2, s3);
        }
    });

    for (const when of ['user_message', 'agent_run_start', '10 deltas', 'non-streaming run']) {
        test(`kill -9 at "${when}": seen events stored, run marked interrupted, session usable`, { timeout: 30000 }, async () => {
            const s = await startServer({ fake });
            let s2;
            try {
                const sid = (await createV1(s)).sessionId;
                const query = q('slow delay=30 n=200');
                let out = { frames: [] };
                if (when === 'non-streaming run') {
                    const pending = post(s, '/api/v1/sessions/query', { sessionId: sid, query }).catch((e) => e);
                    await fake.waitForRequest((r) => r.query === query, 5000);
                    await sleep(100);
                    await s.kill9();
                    await pending;
                } else {
                    let deltas = 0;
                    let killed = false;
                    out = await streamV1(s, sid, query, {
                        timeoutMs: 20000,
                        onFrame: async (f) => {
                            if (DELTA_TYPES.has(f.event.type)) deltas++;
                            const hit = when === '10 deltas' ? deltas >= 10 : f.event.type === when;
                            if (hit && !killed) {
                                killed = true;
                                await s.kill9();
                            }
                        },
                    });
                    assert.ok(killed, `saw ${out.events.map((e) => e.type)}`);
                }
                s2 = await s.restart();
                const stored = assertCrashLog(await getEvents(s2, sid), out.frames, sid);
                assert.equal(stored[0].type, 'user_message');
                assert.equal(stored[0].content, query);
                assert.deepEqual(await getStatus(s2, sid), { isProcessing: false, state: 'error' });
                const q2 = q('text', `after kill at ${when}`);
                const r = await post(s2, '/api/v1/sessions/query', { sessionId: sid, query: q2 });
                assert.equal(r.status, 200, r.text);
                assert.equal(r.json.result.content, textReply(q2));
                const msgs = normalizeMessages(fake.requestsMatching(q2)[0].body.messages);
                assert.equal(msgs[1].role, 'user');
                assert.equal(msgs[1].content, query, 'the interrupted query is in the history');
                assert.deepEqual(msgs.at(-1), { role: 'user', content: q2 });
            } finally {
                await cleanup(s, s2);
            }
        });
    }

    test('kill -9 with many sessions mid-run: each one is marked, none loses a seen event', { timeout: 45000 }, async () => {
        const s = await startServer({ fake });
        let s2;
        try {
            const N = 8;
            const sids = [];
            for (let i = 0; i < N; i++) sids.push((await createV1(s)).sessionId);
            const seen = sids.map(() => []);
            let started = 0;
            const allStarted = new Promise((resolve) => {
                sids.forEach((sid, i) => {
                    streamV1(s, sid, q('slow delay=20 n=300', `many ${i}`), {
                        timeoutMs: 20000,
                        onFrame: (f) => {
                            seen[i].push(f);
                            if (DELTA_TYPES.has(f.event.type) && seen[i].filter((x) => DELTA_TYPES.has(x.event.type)).length === 3) {
                                started++;
                                if (started === N) resolve();
                            }
                        },
                    }).catch(() => {});
                });
            });
            await allStarted;
            await s.kill9();
            await sleep(100);
            s2 = await s.restart();
            const list = await listSessions(s2);
            assert.equal(list.length, N);
            for (let i = 0; i < N; i++) {
                assertCrashLog(await getEvents(s2, sids[i]), seen[i], sids[i]);
                assert.equal((await getStatus(s2, sids[i])).state, 'error');
            }
        } finally {
            await cleanup(s, s2);
        }
    });
});
