// SPDX-License-Identifier: MIT
// Many sessions at once: 100 concurrent streaming runs must each get exactly their own text, the
// LLM calls must overlap (no serialisation), and mixed streaming / non-streaming / tool runs work.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { FILE_CONTENT, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { assertFraming, assertRunEnd, joinDeltas } from './lib/checks.mjs';
import { cleanup, createSession, get, ofType, post, q, startServer, streamQuery, test } from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake, args: ['--isolate-sessions'] });
});
after(() => cleanup(srv, fake));

describe('concurrency', () => {
    test('100 concurrent streaming sessions each get exactly their own text', { timeout: 60000 }, async () => {
        const N = 100;
        const sids = await Promise.all(Array.from({ length: N }, () => createSession(srv)));
        assert.equal(new Set(sids).size, N);
        const queries = sids.map((_, i) => q('text delay=15', `session number ${i} token-${i * 7919}`));
        const t0 = Date.now();
        const outs = await Promise.all(sids.map((sid, i) => streamQuery(srv, sid, queries[i], { timeoutMs: 45000 })));
        const took = Date.now() - t0;
        for (let i = 0; i < N; i++) {
            const out = outs[i];
            assert.equal(out.status, 200);
            assertFraming(out);
            const final = ofType(out.events, 'assistant_message');
            assert.equal(final.length, 1, `session ${i}`);
            assert.equal(final[0].content, textReply(queries[i]), `session ${i} got someone else's text`);
            assert.equal(joinDeltas(out.events), final[0].content, `session ${i} deltas`);
            assert.equal(out.events[0].content, queries[i]);
            assertRunEnd(out.events, sids[i], 1);
        }
        // every model call was made once, and they overlapped
        for (const query of queries) assert.equal(fake.requestsMatching(query).length, 1);
        assert.ok(fake.maxConcurrent >= 10, `at most ${fake.maxConcurrent} LLM calls overlapped`);
        assert.ok(took < 30000, `100 runs took ${took} ms`);
        assert.equal((await get(srv, '/api/v1/health')).status, 200);
    });

    test('mixed streaming, non-streaming and tool runs in parallel', { timeout: 60000 }, async () => {
        const N = 30;
        const sids = await Promise.all(Array.from({ length: N }, () => createSession(srv)));
        const jobs = sids.map(async (sid, i) => {
            const kind = i % 3;
            if (kind === 0) {
                const query = q('text delay=5', `mixed ${i}`);
                const out = await streamQuery(srv, sid, query, { timeoutMs: 45000 });
                assert.equal(ofType(out.events, 'assistant_message')[0].content, textReply(query));
            } else if (kind === 1) {
                const query = q('text delay=5', `mixed ${i}`);
                const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
                assert.equal(r.status, 200, r.text);
                assert.equal(r.json.result.content, textReply(query));
            } else {
                const out = await streamQuery(srv, sid, q(`tool path=own-${i}.txt`), { timeoutMs: 45000 });
                assertRunEnd(out.events, sid, 3);
                assert.equal(fs.readFileSync(path.join(srv.workspace, sid, `own-${i}.txt`), 'utf8'), FILE_CONTENT);
            }
        });
        await Promise.all(jobs);
    });

    test('many sessions created in parallel have unique ids and directories', async () => {
        const sids = await Promise.all(Array.from({ length: 200 }, () => createSession(srv)));
        assert.equal(new Set(sids).size, 200);
        for (const sid of sids) assert.ok(fs.statSync(path.join(srv.workspace, sid)).isDirectory());
    });
});
