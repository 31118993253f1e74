// SPDX-License-Identifier: MIT
// Concurrency control: --server.exclusive (409 for new sessions and oneshot runs while any session
// runs) and --server.maxConcurrentRuns / --server.maxQueuedRuns (runs beyond the limit wait in FIFO
// order; a full queue answers 429 with Retry-After, also on stream routes before any SSE byte).

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertFraming, assertRunEnd } from './lib/checks.mjs';
import { cleanup, ofType, post, q, sleep, startServer, test } from './lib/server.mjs';
import { createV1, getEvents, listSessions, sseRequest, streamV1, waitIdle } from './lib/v1-client.mjs';

const EXCLUSIVE_ERROR = 'Server is in exclusive mode and another session is currently running';
const TOO_MANY = { error: 'Too many concurrent runs, try again later' };

let fake;

before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

describe('--server.exclusive', () => {
    test('create and oneshot answer 409 while a session runs, and work again afterwards', { timeout: 40000 }, async () => {
        const s = await startServer({ fake, args: ['--server.exclusive'] });
        try {
            const a = (await createV1(s)).sessionId;
            const b = (await createV1(s)).sessionId;
            const qa = q('slow delay=50 n=200');
            const streaming = streamV1(s, a, qa, { timeoutMs: 20000 });
            await fake.waitForRequest((r) => r.query === qa, 5000);
            const busy = { error: EXCLUSIVE_ERROR, runningSessionId: a };
            const r1 = await post(s, '/api/v1/sessions/create', {});
            assert.equal(r1.status, 409, r1.text);
            assert.deepEqual(r1.json, busy);
            const r2 = await post(s, '/api/v1/oneshot/query', { query: q('text') });
            assert.equal(r2.status, 409, r2.text);
            assert.deepEqual(r2.json, busy);
            const r3 = await sseRequest(s, 'POST', '/api/v1/oneshot/query/stream', { body: { query: q('text') }, timeoutMs: 5000 });
            assert.equal(r3.status, 409, r3.raw);
            assert.match(r3.headers.get('content-type') || '', /^application\/json/);
            assert.deepEqual(r3.json, busy);
            assert.equal((await listSessions(s)).length, 2, 'the refused calls created no session');

            const ab = await post(s, '/api/v1/sessions/abort', { sessionId: a });
            assert.deepEqual(ab.json, { success: true });
            await streaming;
            await waitIdle(s, a);
            assert.equal((await post(s, '/api/v1/sessions/create', {})).status, 201, 'free again after the abort');

            // a non-streaming run holds the mark too, and releases it when it ends
            const qb = q('slow delay=20 n=30');
            const pending = post(s, '/api/v1/sessions/query', { sessionId: b, query: qb });
            await fake.waitForRequest((r) => r.query === qb, 5000);
            const r4 = await post(s, '/api/v1/sessions/create', {});
            assert.equal(r4.status, 409, r4.text);
            assert.deepEqual(r4.json, { error: EXCLUSIVE_ERROR, runningSessionId: b });
            assert.equal((await pending).status, 200);
            assert.equal((await post(s, '/api/v1/sessions/create', {})).status, 201, 'free again after the run');

            // a run that fails releases it
            const failed = await streamV1(s, a, q('auth401'));
            assert.equal(failed.events.at(-1).type === 'system' || failed.events.at(-1).type === 'agent_run_end', true);
            await waitIdle(s, a);
            const r5 = await post(s, '/api/v1/oneshot/query', { query: q('text', 'oneshot when free') });
            assert.equal(r5.status, 200, r5.text);
        } finally {
            await cleanup(s);
        }
    });

    test('without --server.exclusive a running session does not block create', async () => {
        const s = await startServer({ fake });
        try {
            const a = (await createV1(s)).sessionId;
            const qa = q('slow delay=50 n=200');
            const streaming = streamV1(s, a, qa, { timeoutMs: 20000 });
            await fake.waitForRequest((r) => r.query === qa, 5000);
            assert.equal((await post(s, '/api/v1/sessions/create', {})).status, 201);
            await post(s, '/api/v1/sessions/abort', { sessionId: a });
            await streaming;
        } finally {
            await cleanup(s);
        }
    });
});

describe('--server.maxConcurrentRuns / --server.maxQueuedRuns', () => {
    async function limited(max, queued) {
        const f = await startFakeOpenAI();
        const s = await startServer({ fake: f, args: ['--server.maxConcurrentRuns', String(max), '--server.maxQueuedRuns', String(queued)] });
        return { f, s };
    }

    async function assert429(res, what) {
        assert.equal(res.status, 429, `${what}: ${res.status} ${res.raw || res.text}`);
        assert.equal(res.headers.get('retry-after'), '1', what);
        assert.match(res.headers.get('content-type') || '', /^application\/json/, what);
        assert.deepEqual(res.json, TOO_MANY, what);
    }

    test('1 running + 1 queued: the second waits then completes, the third gets 429 + Retry-After', { timeout: 40000 }, async () => {
        const { f, s } = await limited(1, 1);
        try {
            const [a, b, c] = [(await createV1(s)).sessionId, (await createV1(s)).sessionId, (await createV1(s)).sessionId];
            const qa = q('slow delay=30 n=50');
            const streamA = streamV1(s, a, qa, { timeoutMs: 20000 });
            await f.waitForRequest((r) => r.query === qa, 5000);
            const qb = q('text', 'queued B');
            let bFirstByteAt = null;
            const streamB = streamV1(s, b, qb, {
                timeoutMs: 20000,
                onFrame: () => {
                    bFirstByteAt = bFirstByteAt || Date.now();
                },
            });
            await sleep(400);
            assert.equal(f.requestsMatching(qb).length, 0, 'B does not reach the model while A runs');

            // the queue is full: every way to start a run is refused at once
            await assert429(await streamV1(s, c, q('text', 'C stream'), { timeoutMs: 5000 }), 'query/stream');
            await assert429(await post(s, '/api/v1/sessions/query', { sessionId: c, query: q('text', 'C') }), 'query');
            await assert429(await post(s, '/api/v1/oneshot/query', { query: q('text', 'C oneshot') }), 'oneshot/query');
            await assert429(await sseRequest(s, 'POST', '/api/v1/oneshot/query/stream', { body: { query: q('text') }, timeoutMs: 5000 }), 'oneshot/query/stream');
            assert.deepEqual(await getEvents(s, c), [], 'a refused run stores nothing');

            const outA = await streamA;
            assertRunEnd(outA.events, a, 1);
            const outB = await streamB;
            assertFraming(outB, { prevStoredId: 0 });
            assertRunEnd(outB.events, b, 1);
            assert.equal(ofType(outB.events, 'assistant_message')[0].content, textReply(qb));
            // A's answer takes 50 chunks x 30 ms; B's model call may only start once it is over
            // (measured from A's start: the fake's own end-of-response time can trail the [DONE])
            const recA = f.requestsMatching(qa)[0];
            const recB = f.requestsMatching(qb)[0];
            assert.ok(recB.startedAt - recA.startedAt >= 1350, `B's model call started ${recB.startedAt - recA.startedAt} ms after A's`);

            // with the slot free, C runs
            const qc = q('text', 'C later');
            const rc = await post(s, '/api/v1/sessions/query', { sessionId: c, query: qc });
            assert.equal(rc.status, 200, rc.text);
            assert.equal(rc.json.result.content, textReply(qc));
        } finally {
            await cleanup(s, f);
        }
    });

    test('a queued non-streaming query waits and answers 200', { timeout: 30000 }, async () => {
        const { f, s } = await limited(1, 1);
        try {
            const a = (await createV1(s)).sessionId;
            const b = (await createV1(s)).sessionId;
            const qa = q('slow delay=20 n=50');
            const streamA = streamV1(s, a, qa, { timeoutMs: 20000 });
            await f.waitForRequest((r) => r.query === qa, 5000);
            const qb = q('text', 'queued non-streaming');
            const t0 = Date.now();
            const rb = await post(s, '/api/v1/sessions/query', { sessionId: b, query: qb });
            assert.equal(rb.status, 200, rb.text);
            assert.equal(rb.json.result.content, textReply(qb));
            assert.ok(Date.now() - t0 >= 300, 'it waited for A');
            await streamA;
        } finally {
            await cleanup(s, f);
        }
    });

    test('queued runs start in arrival order (FIFO)', { timeout: 40000 }, async () => {
        const { f, s } = await limited(1, 3);
        try {
            const sids = [];
            for (let i = 0; i < 4; i++) sids.push((await createV1(s)).sessionId);
            const q0 = q('slow delay=20 n=40');
            const runs = [streamV1(s, sids[0], q0, { timeoutMs: 30000 })];
            await f.waitForRequest((r) => r.query === q0, 5000);
            const qs = [q0];
            for (let i = 1; i < 4; i++) {
                qs.push(q('text delay=10', `fifo ${i}`));
                runs.push(streamV1(s, sids[i], qs[i], { timeoutMs: 30000 }));
                await sleep(100);
            }
            const outs = await Promise.all(runs);
            outs.forEach((o, i) => assertRunEnd(o.events, sids[i], 1));
            const starts = qs.map((x) => f.requestsMatching(x)[0].startedAt);
            for (let i = 1; i < 4; i++) assert.ok(starts[i] >= starts[i - 1], `run ${i} started before run ${i - 1}`);
            assert.ok(starts[1] - starts[0] >= 700, `the first queued run started ${starts[1] - starts[0]} ms after the running one (40 x 20 ms)`);
        } finally {
            await cleanup(s, f);
        }
    });

    test('maxConcurrentRuns 2: two run at once, the third waits', { timeout: 30000 }, async () => {
        const { f, s } = await limited(2, 5);
        try {
            const sids = [];
            for (let i = 0; i < 3; i++) sids.push((await createV1(s)).sessionId);
            const qs = sids.map((_, i) => q('slow delay=20 n=40', `pair ${i}`));
            const runs = sids.map((sid, i) => streamV1(s, sid, qs[i], { timeoutMs: 20000 }));
            const outs = await Promise.all(runs);
            outs.forEach((o, i) => assertRunEnd(o.events, sids[i], 1));
            const starts = qs.map((x) => f.requestsMatching(x)[0].startedAt).sort((x, y) => x - y);
            assert.ok(starts[1] - starts[0] < 500, `two ran at once (${starts[1] - starts[0]} ms apart)`);
            assert.ok(starts[2] - starts[0] >= 700, `the third waited (${starts[2] - starts[0]} ms after the first; each takes 40 x 20 ms)`);
        } finally {
            await cleanup(s, f);
        }
    });
});
