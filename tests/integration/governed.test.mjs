// SPDX-License-Identifier: MIT
// Governed runs (issue 13) against the real binary and the scripted fake model: tool approval
// (approve, deny, policy deny, two at once, timeout, abort while waiting, Socket.IO, a restart
// while waiting), token usage on events and sessions, the budgets, and the run time limit.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { io } from 'socket.io-client';
import { ANTHROPIC_KEY, startFakeAnthropic } from './lib/fake-anthropic.mjs';
import { SUMMARY_TEXT, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { cleanup, createSession, get, ofType, post, q, startServer, streamQuery, test, waitFor } from './lib/server.mjs';
import { addToolScenarios, finalText, pidsWithMarker, toolQuery, uniqueMarker } from './lib/tools-scenarios.mjs';

addToolScenarios();

const FAKE_USAGE = { promptTokens: 42, completionTokens: 17, totalTokens: 59 };

const status = async (srv, sid) => (await get(srv, `/api/v1/sessions/status?sessionId=${sid}`)).json.status;
const approve = (srv, sessionId, toolCallId, approved, reason) => post(srv, '/api/v1/sessions/tool-approval', { sessionId, toolCallId, approved, reason });

/** Streams a scripted run and calls decide(request event) for every approval request. */
async function runWithApprovals(srv, steps, decide, opts = {}) {
    const sid = opts.sid || (await createSession(srv));
    const out = await streamQuery(srv, sid, toolQuery(steps, opts.text), {
        timeoutMs: 20000,
        onEvent: async (ev) => {
            if (ev.type === 'tool_approval_request') await decide(ev, sid);
        },
    });
    return { sid, out, events: out.events };
}

/** The types of the tool-related events, in order. */
const toolFlow = (events) =>
    events.filter((e) => ['tool_approval_request', 'tool_approval_result', 'tool_call', 'tool_result'].includes(e.type)).map((e) => (e.type === 'tool_approval_result' ? `${e.type}:${e.approved}` : e.type));

describe('tool approval', () => {
    let fake, srv;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({
            fake,
            args: ['--tools.approval.write_file', 'ask', '--tools.approval.run_*', 'deny', '--tools.approval.read_file', 'auto'],
        });
    });
    after(() => cleanup(srv, fake));

    test('ask: the run waits, the status shows the request, approval runs the tool', async () => {
        let seen = null;
        const { sid, events } = await runWithApprovals(srv, [['write_file', { path: 'approved.txt', content: 'yes' }]], async (ev, sessionId) => {
            assert.deepEqual(ev.arguments, { path: 'approved.txt', content: 'yes' });
            assert.equal(ev.name, 'write_file');
            assert.ok(ev.expiresAt > Date.now() + 9 * 60e3, 'expires in about 10 minutes');
            const st = await status(srv, sessionId);
            assert.equal(st.isProcessing, true);
            assert.equal(st.state, 'awaiting_approval');
            assert.deepEqual(st.pendingApprovals, [{ toolCallId: ev.toolCallId, name: 'write_file', arguments: ev.arguments, expiresAt: ev.expiresAt }]);
            assert.ok(!fs.existsSync(path.join(srv.workspace, 'approved.txt')), 'nothing ran before the approval');
            const r = await approve(srv, sessionId, ev.toolCallId, true);
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(r.json, { success: true });
            seen = ev;
        });
        assert.ok(seen);
        assert.deepEqual(toolFlow(events), ['tool_approval_request', 'tool_approval_result:true', 'tool_call', 'tool_result']);
        const res = ofType(events, 'tool_approval_result')[0];
        assert.deepEqual([res.toolCallId, res.approved, res.reason, res.by], [seen.toolCallId, true, null, 'api']);
        assert.equal(ofType(events, 'tool_result')[0].error, undefined);
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'approved.txt'), 'utf8'), 'yes');
        assert.equal(events.at(-1).status, 'idle');
        assert.equal((await status(srv, sid)).state, 'idle');
        // decided: a second decision is refused
        assert.equal((await approve(srv, sid, seen.toolCallId, false)).status, 404);
    });

    test('deny with a reason: no call, the model reads why, the run goes on', async () => {
        const { events } = await runWithApprovals(srv, [['write_file', { path: 'denied.txt', content: 'no' }]], async (ev, sid) => {
            assert.equal((await approve(srv, sid, ev.toolCallId, false, 'not now')).status, 200);
        });
        assert.deepEqual(toolFlow(events), ['tool_approval_request', 'tool_approval_result:false', 'tool_call', 'tool_result']);
        const tr = ofType(events, 'tool_result')[0];
        assert.equal(tr.error, 'denied by the user: not now');
        assert.equal(tr.content, 'Error: denied by the user: not now');
        assert.ok(!fs.existsSync(path.join(srv.workspace, 'denied.txt')));
        assert.equal(ofType(events, 'assistant_message').at(-1).content, finalText('Error: denied by the user: not now'));
        assert.equal(events.at(-1).status, 'idle');
    });

    test('deny policy (a glob): refused without asking; auto runs', async () => {
        const { events } = await runWithApprovals(srv, [{ calls: [['run_command', { command: 'touch policy-ran.txt' }], ['read_file', { path: 'approved.txt' }]] }], () => {
            throw new Error('nothing should ask');
        });
        assert.deepEqual(toolFlow(events), ['tool_call', 'tool_result', 'tool_call', 'tool_result']);
        const [denied, read] = ofType(events, 'tool_result');
        assert.equal(denied.error, 'denied by policy (tools.approval)');
        assert.equal(read.error, undefined);
        assert.ok(!fs.existsSync(path.join(srv.workspace, 'policy-ran.txt')));
    });

    test('two calls of one turn ask at once; decided out of order, they run in order', async () => {
        const requests = [];
        const { events } = await runWithApprovals(srv, [{ calls: [['write_file', { path: 'one.txt', content: '1' }], ['write_file', { path: 'two.txt', content: '2' }]] }], async (ev, sid) => {
            requests.push(ev);
            if (requests.length < 2) return;
            const st = await status(srv, sid);
            assert.equal(st.pendingApprovals.length, 2);
            assert.equal((await approve(srv, sid, requests[1].toolCallId, true)).status, 200);
            assert.equal((await status(srv, sid)).pendingApprovals.length, 1, 'the first call still waits');
            assert.equal((await approve(srv, sid, requests[0].toolCallId, true)).status, 200);
        });
        assert.deepEqual(toolFlow(events), ['tool_approval_request', 'tool_approval_request', 'tool_approval_result:true', 'tool_approval_result:true', 'tool_call', 'tool_result', 'tool_call', 'tool_result']);
        assert.deepEqual(ofType(events, 'tool_call').map((e) => path.basename(e.arguments.path)), ['one.txt', 'two.txt']);
    });

    test('abort while waiting ends the run as any abort', async () => {
        const { sid, events } = await runWithApprovals(srv, [['write_file', { path: 'aborted.txt', content: 'x' }]], async (ev, sessionId) => {
            assert.deepEqual((await post(srv, '/api/v1/sessions/abort', { sessionId })).json, { success: true });
        });
        assert.equal(events.at(-1).type, 'agent_run_end');
        assert.equal(events.at(-1).status, 'aborted');
        assert.ok(!fs.existsSync(path.join(srv.workspace, 'aborted.txt')));
        const st = await status(srv, sid);
        assert.equal(st.isProcessing, false);
        assert.equal(st.pendingApprovals, undefined);
        // the session goes on: the next query works
        const out = await streamQuery(srv, sid, q('text', 'after the abort'));
        assert.equal(out.events.at(-1).status, 'idle');
    });

    test('bad bodies 400, unknown ids 404, unknown sessions 404', async () => {
        const sid = await createSession(srv);
        for (const body of [{ sessionId: sid }, { sessionId: sid, toolCallId: 'x' }, { sessionId: sid, toolCallId: 'x', approved: 'yes' }, { sessionId: sid, toolCallId: 1, approved: true }, { sessionId: sid, toolCallId: 'x', approved: true, reason: 5 }]) {
            assert.equal((await post(srv, '/api/v1/sessions/tool-approval', body)).status, 400, JSON.stringify(body));
        }
        assert.equal((await approve(srv, sid, 'call_nope', true)).status, 404);
        assert.equal((await approve(srv, 'no-such-session', 'call_nope', true)).status, 404);
    });

    test('Socket.IO: tool-approval answered by ack', async () => {
        const socket = io(srv.url, { reconnection: false, forceNew: true, transports: ['websocket'] });
        try {
            await new Promise((resolve, reject) => {
                socket.once('connect', resolve);
                socket.once('connect_error', reject);
            });
            const acks = [];
            const { events } = await runWithApprovals(srv, [['write_file', { path: 'via-socket.txt', content: 's' }]], async (ev, sessionId) => {
                acks.push(await socket.timeout(5000).emitWithAck('tool-approval', { sessionId, toolCallId: ev.toolCallId, approved: true }));
                acks.push(await socket.timeout(5000).emitWithAck('tool-approval', { sessionId, toolCallId: ev.toolCallId, approved: true }));
            });
            assert.deepEqual(acks, [{ success: true }, { success: false, error: 'No pending approval for that toolCallId' }]);
            assert.equal(ofType(events, 'tool_approval_result')[0].by, 'socket.io');
            assert.equal(fs.readFileSync(path.join(srv.workspace, 'via-socket.txt'), 'utf8'), 's');
        } finally {
            socket.close();
        }
    });
});

describe('approval timeout and restarts', () => {
    let fake;
    before(async () => {
        fake = await startFakeOpenAI();
    });
    after(() => cleanup(fake));

    test('an unanswered request is denied when it expires, and the run goes on', async () => {
        const srv = await startServer({ fake, args: ['--tools.approval.write_file', 'ask', '--tools.approvalTimeoutMs', '300'] });
        try {
            const { events } = await runWithApprovals(srv, [['write_file', { path: 'late.txt', content: 'x' }]], () => {});
            const res = ofType(events, 'tool_approval_result')[0];
            assert.deepEqual([res.approved, res.reason, res.by], [false, 'approval timed out', 'timeout']);
            assert.equal(ofType(events, 'tool_result')[0].error, 'denied by the user: approval timed out');
            assert.equal(events.at(-1).status, 'idle');
        } finally {
            await cleanup(srv);
        }
    });

    for (const how of ['SIGTERM', 'SIGKILL']) {
        test(`a pending approval survives a restart (${how}) and approving it resumes the run to its end`, async () => {
            const srv = await startServer({ fake, args: ['--tools.approval.write_file', 'ask'] });
            let srv2 = null;
            try {
                const sid = await createSession(srv);
                const query = toolQuery([['write_file', { path: `resumed-${how}.txt`, content: 'after restart' }]]);
                const ctrl = new AbortController();
                const pending = streamQuery(srv, sid, query, { signal: ctrl.signal, timeoutMs: 20000 }).catch(() => null);
                const req = await waitFor(async () => (await status(srv, sid)).pendingApprovals?.[0], { what: 'the approval request' });
                if (how === 'SIGTERM') await srv.stop();
                else await srv.kill9();
                ctrl.abort();
                await pending;
                srv2 = await srv.restart();
                const st = await status(srv2, sid);
                assert.equal(st.state, 'awaiting_approval');
                assert.deepEqual(st.pendingApprovals, [req]);
                // follow the stored log live, then approve
                const before = (await get(srv2, `/api/v1/sessions/events?sessionId=${sid}`)).json.events.length;
                const follow = fetch(`${srv2.url}/api/v1/sessions/events/stream?sessionId=${sid}&after=${before}`).then((r) => r.text());
                assert.equal((await approve(srv2, sid, req.toolCallId, true)).status, 200);
                const tail = await follow;
                assert.match(tail, /"type":"tool_approval_result"/);
                assert.match(tail, /"type":"agent_run_end".*"status":"idle"/);
                assert.equal(fs.readFileSync(path.join(srv.workspace, `resumed-${how}.txt`), 'utf8'), 'after restart');
                const events = (await get(srv2, `/api/v1/sessions/events?sessionId=${sid}`)).json.events;
                assert.equal(ofType(events, 'agent_run_start').length, 1);
                assert.equal(ofType(events, 'agent_run_end').length, 1, 'exactly one end');
                assert.match(ofType(events, 'assistant_message').at(-1).content, /^Done\. The last tool said: /);
                assert.equal(ofType(events, 'tool_result')[0].error, undefined);
                // the model saw the whole history, rebuilt from the stored events
                const last = fake.requestsMatching(query).at(-1);
                assert.deepEqual(last.body.messages.map((m) => m.role), ['system', 'user', 'assistant', 'tool']);
            } finally {
                await cleanup(srv2, srv);
            }
        });
    }
});

describe('usage, budgets and the run time limit', () => {
    let fake;
    before(async () => {
        fake = await startFakeOpenAI();
    });
    after(() => cleanup(fake));

    test('usage on every answer, summed on agent_run_end and on the session (details and list), priced', async () => {
        const srv = await startServer({ fake, args: ['--model.pricing.inputPerMTokens', '2', '--model.pricing.outputPerMTokens', '10'] });
        try {
            const sid = await createSession(srv);
            const out = await streamQuery(srv, sid, toolQuery([['list_directory', { path: '.' }]]));
            const msgs = ofType(out.events, 'assistant_message');
            const cost = (42 * 2 + 17 * 10) / 1e6;
            for (const m of msgs) {
                assert.deepEqual({ ...m.usage, costUSD: undefined }, { ...FAKE_USAGE, costUSD: undefined });
                assert.ok(Math.abs(m.usage.costUSD - cost) < 1e-12);
            }
            const end = out.events.at(-1);
            assert.equal(end.usage.llmCalls, 2);
            assert.deepEqual([end.usage.promptTokens, end.usage.completionTokens, end.usage.totalTokens], [84, 34, 118]);
            await streamQuery(srv, sid, q('text', 'second run'));
            const d = (await get(srv, `/api/v1/sessions/details?sessionId=${sid}`)).json.session;
            assert.deepEqual([d.usage.promptTokens, d.usage.completionTokens, d.usage.totalTokens], [126, 51, 177]);
            assert.ok(Math.abs(d.usage.costUSD - 3 * cost) < 1e-12);
            const listed = (await get(srv, '/api/v1/sessions')).json.sessions.find((s) => s.id === sid);
            assert.equal(listed.usage.totalTokens, 177);
            // after a restart the session total is still there
            await srv.stop();
            const srv2 = await srv.restart();
            try {
                assert.equal((await get(srv2, `/api/v1/sessions/details?sessionId=${sid}`)).json.session.usage.totalTokens, 177);
                const again = await streamQuery(srv2, sid, q('text', 'third run'));
                assert.equal(again.events.at(-1).usage.totalTokens, 59);
                assert.equal((await get(srv2, `/api/v1/sessions/details?sessionId=${sid}`)).json.session.usage.totalTokens, 236);
            } finally {
                await cleanup(srv2);
            }
        } finally {
            await cleanup(srv);
        }
    });

    /** The stream ends with the error event (as every error); the stored log then has exactly
     * one agent_run_end, status error. */
    test('a provider without usage: estimated at four characters a token; Anthropic usage as it reports it', async () => {
        const srv = await startServer({ fake });
        try {
            const query = q('text nousage=1', 'estimate me');
            const out = await streamQuery(srv, await createSession(srv), query);
            const u = ofType(out.events, 'assistant_message')[0].usage;
            assert.equal(u.estimated, true);
            assert.equal(u.completionTokens, Math.ceil(Buffer.byteLength(textReply(query)) / 4));
            const sent = JSON.stringify(fake.requestsMatching(query)[0].body.messages).length;
            assert.ok(u.promptTokens > 0 && Math.abs(u.promptTokens - sent / 4) < sent / 8, `${u.promptTokens} for ${sent} chars`);
            assert.equal(u.totalTokens, u.promptTokens + u.completionTokens);
            assert.equal(out.events.at(-1).usage.estimated, true);
        } finally {
            await cleanup(srv);
        }
        const claude = await startFakeAnthropic();
        const asrv = await startServer({
            args: ['--model.provider', 'anthropic', '--model.id', 'claude-fake-1', '--model.baseURL', claude.baseURL, '--model.apiKey', ANTHROPIC_KEY],
        });
        try {
            const out = await streamQuery(asrv, await createSession(asrv), q('text', 'count my tokens'));
            assert.deepEqual(ofType(out.events, 'assistant_message')[0].usage, { promptTokens: 123, completionTokens: 42, totalTokens: 165 });
            assert.equal(out.events.at(-1).usage.totalTokens, 165);
        } finally {
            await cleanup(asrv, claude);
        }
    });

    const budgetEnd = async (srv, out, name) => {
        const events = out.events;
        const sys = ofType(events, 'system').find((e) => e.code === 'budget_exceeded' || e.code === 'run_timeout');
        assert.ok(sys, `a budget event in ${events.map((e) => e.type).join(',')}`);
        assert.equal(sys.level, 'error');
        assert.equal(sys.budget, name);
        assert.equal(events.at(-1), sys, 'the stream ends with it');
        const sid = events.find((e) => e.type === 'agent_run_start').sessionId;
        const stored = await waitFor(async () => {
            const all = (await get(srv, `/api/v1/sessions/events?sessionId=${sid}`)).json.events;
            return all.at(-1).type === 'agent_run_end' ? all : null;
        }, { what: 'agent_run_end stored' });
        assert.equal(ofType(stored, 'agent_run_end').filter((e) => e.timestamp >= events[0].timestamp).length, 1);
        assert.equal(stored.at(-1).status, 'error');
        return sys;
    };

    test('budget.maxTokensPerRun stops the run after the call that used it up', async () => {
        const srv = await startServer({ fake, args: ['--budget.maxTokensPerRun', '100'] });
        try {
            const out = await streamQuery(srv, await createSession(srv), toolQuery([['list_directory', { path: '.' }], ['list_directory', { path: '.' }], ['list_directory', { path: '.' }]]));
            const sys = await budgetEnd(srv, out, 'maxTokensPerRun');
            assert.equal(sys.message, 'budget exceeded: maxTokensPerRun (118 of 100 tokens)');
            assert.equal(ofType(out.events, 'tool_result').length, 1, 'one tool ran; the second turn was stopped');
        } finally {
            await cleanup(srv);
        }
    });

    test('budget.maxTokensPerSession: 429 for the next query once used up', async () => {
        const srv = await startServer({ fake, args: ['--budget.maxTokensPerSession', '100'] });
        try {
            const sid = await createSession(srv);
            assert.equal((await streamQuery(srv, sid, q('text', 'one'))).events.at(-1).status, 'idle');
            assert.equal((await streamQuery(srv, sid, q('text', 'two'))).events.at(-1).status, 'idle');
            for (const p of ['/api/v1/sessions/query', '/api/v1/sessions/query/stream']) {
                const r = await post(srv, p, { sessionId: sid, query: q('text', 'three') });
                assert.equal(r.status, 429, p);
                assert.equal(r.json.error, 'Session budget exceeded');
            }
            assert.equal((await post(srv, '/api/sessions/query', { sessionId: sid, query: 'x' })).status, 429);
            assert.equal(fake.requestsMatching('three').length, 0);
        } finally {
            await cleanup(srv);
        }
    });

    test('budget.maxToolCallsPerRun and budget.maxRunMs', async () => {
        const srv = await startServer({ fake, args: ['--budget.maxToolCallsPerRun', '1'] });
        try {
            const out = await streamQuery(srv, await createSession(srv), toolQuery([{ calls: [['list_directory', { path: '.' }], ['list_directory', { path: '.' }]] }]));
            const sys = await budgetEnd(srv, out, 'maxToolCallsPerRun');
            assert.equal(sys.message, 'budget exceeded: maxToolCallsPerRun (2 of 1)');
            assert.equal(ofType(out.events, 'tool_result').length, 1);
        } finally {
            await cleanup(srv);
        }
        const slow = await startServer({ fake, args: ['--budget.maxRunMs', '300'] });
        try {
            const out = await streamQuery(slow, await createSession(slow), q('slow n=200 delay=50'));
            const sys = await budgetEnd(slow, out, 'maxRunMs');
            assert.match(sys.message, /^budget exceeded: maxRunMs \(\d+ of 300 ms\)$/);
            await waitFor(() => fake.requests.at(-1).closedEarly, { what: 'the model stream was cut' });
        } finally {
            await cleanup(slow);
        }
    });

    test('run.maxMs ends a run whose model never answers, and one waiting for approval', async () => {
        const srv = await startServer({ fake, args: ['--run.maxMs', '400', '--llm.idleTimeoutMs', '60000'] });
        try {
            const sid = await createSession(srv);
            const out = await streamQuery(srv, sid, q('toolthenhold hold=20000'));
            const sys = await budgetEnd(srv, out, 'run.maxMs');
            assert.equal(sys.code, 'run_timeout');
            assert.match(sys.message, /^run time limit reached: run\.maxMs \(\d+ of 400 ms\)$/);
            assert.equal((await status(srv, sid)).isProcessing, false);
            // and the session takes the next query
            assert.equal((await streamQuery(srv, sid, q('text', 'next'))).events.at(-1).status, 'idle');
            // a command that hangs is ended with the run
            const marker = uniqueMarker('hang');
            const hung = await streamQuery(srv, sid, toolQuery([['run_command', { command: `sleep 30 # ${marker}`, timeout: 60 }]]));
            await budgetEnd(srv, hung, 'run.maxMs');
            await waitFor(() => pidsWithMarker(marker).length === 0, { what: 'the command is gone' });
        } finally {
            await cleanup(srv);
        }
        const asking = await startServer({ fake, args: ['--run.maxMs', '400', '--tools.approval.write_file', 'ask'] });
        try {
            const waiting = await runWithApprovals(asking, [['write_file', { path: 'never.txt', content: 'x' }]], () => {});
            await budgetEnd(asking, waiting.out, 'run.maxMs');
            assert.ok(!fs.existsSync(path.join(asking.workspace, 'never.txt')));
        } finally {
            await cleanup(asking);
        }
    });

    test('bad governance config stops the start', async () => {
        await assert.rejects(startServer({ args: ['--tools.approval.write_file', 'maybe'] }), /auto, ask or deny/);
        await assert.rejects(startServer({ args: ['--budget.maxRunMs', '-5'] }), /budget\.maxRunMs/);
    });
});

describe('context compaction', () => {
    let fake;
    before(async () => {
        fake = await startFakeOpenAI();
    });
    after(() => cleanup(fake));

    const size = (rec) => JSON.stringify(rec.body.messages).length;

    test('above context.maxPromptTokens the earlier turns become a summary; the store keeps everything; a restart rebuilds the compacted history', async () => {
        const srv = await startServer({ fake, args: ['--context.maxPromptTokens', '400'] });
        let srv2 = null;
        try {
            const sid = await createSession(srv);
            const q1 = q('text', 'A'.repeat(1500));
            const r1 = await streamQuery(srv, sid, q1);
            assert.equal(ofType(r1.events, 'context_compacted').length, 0, 'nothing before the first turn to compact');
            const q2 = q('text', 'second question');
            const r2 = await streamQuery(srv, sid, q2);
            const [cc] = ofType(r2.events, 'context_compacted');
            assert.ok(cc, r2.events.map((e) => e.type).join(','));
            assert.deepEqual([cc.removedMessages, cc.keptMessages, cc.summaryTokens, cc.summary], [2, 1, 17, SUMMARY_TEXT]);
            const summaryReq = fake.requests.filter((r) => r.scenario === 'summary').at(-1);
            assert.match(summaryReq.body.messages[1].content, /AAAAAAAAAA/, 'the earlier turns went to the summary call');
            assert.equal(summaryReq.body.tools, undefined, 'no tools offered to the summary call');
            const before = fake.requestsMatching('AAAAAAAAAA').find((r) => r.scenario === 'text' && r !== summaryReq);
            const after = fake.requestsMatching(q2).filter((r) => r.scenario === 'text').at(-1);
            assert.deepEqual(after.body.messages.map((m) => m.role), ['system', 'user']);
            assert.ok(after.body.messages[1].content.includes(SUMMARY_TEXT) && after.body.messages[1].content.endsWith(q2));
            assert.ok(size(after) < size(before), `the request shrank: ${size(after)} < ${size(before)}`);
            assert.equal(r2.events.at(-1).status, 'idle');
            assert.equal(r2.events.at(-1).usage.llmCalls, 1, 'the summary call is not an iteration');
            assert.equal(r2.events.at(-1).usage.totalTokens, 118, 'but its tokens count');
            // the store and the UI keep the whole history
            const stored = (await get(srv, `/api/v1/sessions/events?sessionId=${sid}`)).json.events;
            assert.equal(ofType(stored, 'user_message')[0].content, q1);
            await srv.stop();
            srv2 = await srv.restart();
            const q3 = q('text', 'third question');
            await streamQuery(srv2, sid, q3);
            const third = fake.requestsMatching(q3).filter((r) => r.scenario === 'text').at(-1);
            assert.deepEqual(third.body.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
            assert.ok(third.body.messages[1].content.includes(SUMMARY_TEXT), 'rebuilt with the summary');
            assert.ok(!JSON.stringify(third.body.messages).includes('AAAAAAAAAA'));
        } finally {
            await cleanup(srv2, srv);
        }
    });

    test('a context-length error from the provider triggers one compaction and a retry', async () => {
        const srv = await startServer({ fake });
        try {
            const sid = await createSession(srv);
            assert.equal((await streamQuery(srv, sid, q('ctxlimit limit=2500', 'B'.repeat(1500)))).events.at(-1).status, 'idle');
            const q2 = q('ctxlimit limit=2500', 'next one');
            const out = await streamQuery(srv, sid, q2);
            const attempts = fake.requestsMatching(q2).filter((r) => r.scenario === 'ctxlimit');
            assert.deepEqual(attempts.map((r) => r.status), [400, 200]);
            assert.equal(ofType(out.events, 'context_compacted').length, 1);
            assert.equal(ofType(out.events, 'system').length, 0, 'the error did not reach the user');
            assert.equal(ofType(out.events, 'assistant_message').at(-1).content, textReply(attempts[1].query));
            assert.equal(out.events.at(-1).status, 'idle');
        } finally {
            await cleanup(srv);
        }
    });
});
