// SPDX-License-Identifier: MIT
// AGIO telemetry (issue 14): with agio.provider set, runs become the original's AGIO events,
// POSTed as {events: [...]} in batches of at most 20 (or every 5 s) to a local receiver; errors
// of the receiver are ignored.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { addToolScenarios, toolQuery } from './lib/tools-scenarios.mjs';
import { cleanup, createSession, get, post, q, startServer, test, waitFor } from './lib/server.mjs';

async function startReceiver(status = 200) {
    const posts = [];
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            posts.push({ url: req.url, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
            res.writeHead(status);
            res.end();
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
        posts,
        url: `http://127.0.0.1:${server.address().port}/agio`,
        events: () => posts.flatMap((p) => p.body.events),
        close: () => new Promise((resolve) => server.close(resolve)),
    };
}

let fake;
let recv;
let srv;

before(async () => {
    addToolScenarios();
    fake = await startFakeOpenAI();
    recv = await startReceiver();
    srv = await startServer({ fake, args: ['--agio.provider', recv.url] });
});
after(() => cleanup(srv, fake, recv));

describe('agio', () => {
    test('a run with a tool call: the original event types, one runId, batches of at most 20', async () => {
        const sid = await createSession(srv);
        const query = toolQuery([['list_directory', { path: '.' }]]);
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: sid, query })).status, 200);
        await waitFor(() => recv.events().some((e) => e.sessionId === sid && e.type === 'agent_run_end'), { timeoutMs: 12000, what: 'agent_run_end' });
        for (const p of recv.posts) {
            assert.equal(p.url, '/agio');
            assert.match(p.headers['content-type'], /^application\/json/);
            assert.deepEqual(Object.keys(p.body), ['events']);
            assert.ok(p.body.events.length >= 1 && p.body.events.length <= 20);
        }
        const ev = recv.events().filter((e) => e.sessionId === sid);
        assert.deepEqual(
            ev.map((e) => e.type),
            ['agent_initialized', 'agent_run_start', 'agent_loop_start', 'agent_ttft', 'agent_tps', 'tool_call', 'tool_result', 'agent_loop_end',
                'agent_loop_start', 'agent_ttft', 'agent_tps', 'agent_loop_end', 'agent_run_end'],
        );
        for (const e of ev) {
            assert.equal(typeof e.timestamp, 'number');
            assert.ok(Math.abs(e.timestamp - Date.now()) < 60000);
        }
        const runId = ev[1].runId;
        assert.match(runId, /^[0-9a-f-]{36}$/);
        assert.ok(ev.slice(1).every((e) => e.runId === runId), 'one runId for the run');
        const [init, start] = ev;
        assert.deepEqual(init.config, { modelProvider: 'openai-compatible', modelName: 'fake-model' });
        assert.equal(init.system.platform, 'linux');
        assert.equal(start.streaming, false);
        assert.ok(!JSON.stringify(ev).includes('use the tools'), 'no user input leaves the server');
        assert.deepEqual(ev.filter((e) => e.type === 'agent_loop_start').map((e) => e.iteration), [1, 2]);
        const ttft = ev.find((e) => e.type === 'agent_ttft');
        assert.ok(Number.isInteger(ttft.ttftMs) && ttft.ttftMs >= 0);
        const tps = ev.find((e) => e.type === 'agent_tps');
        assert.equal(tps.modelName, 'fake-model');
        assert.ok(tps.tokenCount > 0 && tps.tps > 0 && tps.durationMs >= 0);
        const call = ev.find((e) => e.type === 'tool_call');
        const result = ev.find((e) => e.type === 'tool_result');
        assert.equal(call.toolName, 'list_directory');
        assert.equal(result.toolCallId, call.toolCallId);
        assert.equal(result.successful, true);
        assert.ok(result.resultSize > 0);
        assert.equal(call.arguments, undefined, 'arguments are left out');
        const end = ev.at(-1);
        assert.equal(end.successful, true);
        assert.equal(end.loopCount, 2);
        assert.ok(end.executionTimeMs >= 0);
        assert.equal(end.tokenUsage.total, end.tokenUsage.input + end.tokenUsage.output);
        assert.ok(end.tokenUsage.input > 0 && end.tokenUsage.output > 0);
    });

    test('a failed run: successful false with the error', async () => {
        const sid = await createSession(srv);
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: sid, query: q('auth401') })).status, 500);
        await waitFor(() => recv.events().some((e) => e.sessionId === sid && e.type === 'agent_run_end'), { timeoutMs: 12000, what: 'agent_run_end' });
        const end = recv.events().find((e) => e.sessionId === sid && e.type === 'agent_run_end');
        assert.equal(end.successful, false);
        assert.match(end.error.message, /401/);
        assert.equal(end.error.code, 'error');
    });

    test('a receiver that fails is ignored: runs go on, failures are counted', async () => {
        const bad = await startReceiver(500);
        const s2 = await startServer({ fake, args: ['--agio.provider', bad.url] });
        try {
            for (let i = 0; i < 3; i++) {
                const sid = await createSession(s2);
                assert.equal((await post(s2, '/api/sessions/query', { sessionId: sid, query: q('text', `n${i}`) })).status, 200);
            }
            await waitFor(() => bad.posts.length > 0, { timeoutMs: 12000, what: 'a POST to the failing receiver' });
            await waitFor(async () => /tars_agio_events_total\{result="failed"\} [1-9]/.test((await get(s2, '/metrics')).text), { timeoutMs: 5000, what: 'failed AGIO events counted' });
        } finally {
            await cleanup(s2, bad);
        }
    });
});
