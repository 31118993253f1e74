// SPDX-License-Identifier: MIT
// The agent loop: history across queries, max iterations, tool errors as results (unknown tool,
// path escapes), and per-session workspaces with --isolate-sessions.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { FILE_CONTENT, startFakeOpenAI, textReply, toolFinalText } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import {
    cleanup,
    collapsedTypes,
    contentString,
    createSession,
    ofType,
    post,
    q,
    startServer,
    streamQuery,
    test,
} from './lib/server.mjs';

let fake;
let srv; // --maxIterations 3
let iso; // --isolate-sessions

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake, args: ['--maxIterations', '3'] });
    iso = await startServer({ fake, args: ['--isolate-sessions'] });
});
after(() => cleanup(srv, iso, fake));

describe('history', () => {
    test('the second query sees the whole first conversation', async () => {
        const sid = await createSession(srv);
        const q1 = q('tool path=hist.txt', 'first');
        const out1 = await streamQuery(srv, sid, q1);
        const lastId = assertFraming(out1);
        const final1 = ofType(out1.events, 'assistant_message').at(-1);
        const q2 = q('text', 'second');
        const out2 = await streamQuery(srv, sid, q2);
        assertFraming(out2, { prevStoredId: lastId });
        assert.equal(ofType(out2.events, 'assistant_message')[0].content, textReply(q2));

        const [req2] = fake.requestsMatching(q2);
        const msgs = req2.body.messages;
        assert.deepEqual(msgs.map((m) => m.role), [
            'system',
            'user',
            'assistant',
            'tool',
            'assistant',
            'tool',
            'assistant',
            'user',
        ]);
        assert.equal(msgs[1].content, q1);
        const tcs1 = ofType(out1.events, 'assistant_message')[0].toolCalls;
        assert.deepEqual(msgs[2].tool_calls, tcs1);
        assert.equal(msgs[3].tool_call_id, tcs1[0].id);
        const tcs2 = ofType(out1.events, 'assistant_message')[1].toolCalls;
        assert.deepEqual(msgs[4].tool_calls, tcs2);
        assert.equal(msgs[5].tool_call_id, tcs2[0].id);
        assert.ok(contentString(msgs[5].content).includes(FILE_CONTENT));
        assert.equal(msgs[6].content, final1.content);
        assert.ok(!msgs[6].tool_calls || msgs[6].tool_calls.length === 0);
        assert.equal(msgs[7].content, q2);
    });

    test('history also spans non-streaming queries, and sessions do not share it', async () => {
        const a = await createSession(srv);
        const b = await createSession(srv);
        const qa1 = q('text', 'A one');
        const qb1 = q('text', 'B one');
        const qa2 = q('text', 'A two');
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: a, query: qa1 })).status, 200);
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: b, query: qb1 })).status, 200);
        assert.equal((await post(srv, '/api/sessions/query', { sessionId: a, query: qa2 })).status, 200);
        const msgs = fake.requestsMatching(qa2)[0].body.messages;
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
        assert.equal(msgs[1].content, qa1);
        assert.equal(msgs[2].content, textReply(qa1));
        assert.equal(msgs[3].content, qa2);
    });
});

describe('max iterations', () => {
    test('--maxIterations 3: three LLM calls, warning, canned answer, idle', async () => {
        const sid = await createSession(srv);
        const query = q('endless');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const ev = out.events;
        assertEventBasics(ev);
        assert.equal(fake.requestsMatching(query).length, 3, 'exactly 3 LLM calls');
        const types = collapsedTypes(ev);
        assert.deepEqual(types.slice(-3), ['system', 'assistant_message', 'agent_run_end']);
        assert.equal(ofType(ev, 'tool_result').length, 3, 'each of the 3 tool calls ran');
        const sys = ev.at(-3);
        assert.equal(sys.level, 'warning');
        assert.equal(sys.message, 'Maximum iterations reached (3), forcing termination');
        const final = ev.at(-2);
        assert.equal(final.content, 'Sorry, I could not complete this task. Maximum iterations reached.');
        assert.equal(final.finishReason, 'max_iterations');
        assertRunEnd(ev, sid);
    });

    test('non-streaming: the result is the max-iterations message', async () => {
        const sid = await createSession(srv);
        const query = q('endless');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.content, 'Sorry, I could not complete this task. Maximum iterations reached.');
        assert.equal(r.json.result.finishReason, 'max_iterations');
        assert.equal(fake.requestsMatching(query).length, 3);
    });
});

describe('tool errors are results', () => {
    test('unknown tool -> Tool "x" not found, the run goes on', async () => {
        const sid = await createSession(srv);
        const query = q('unknown_tool');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const ev = out.events;
        const call = ofType(ev, 'tool_call')[0];
        assert.equal(call.name, 'nonexistent_tool');
        assert.deepEqual(call.arguments, { foo: 'bar' });
        const res = ofType(ev, 'tool_result')[0];
        assert.equal(res.toolCallId, call.toolCallId);
        assert.equal(res.name, 'nonexistent_tool');
        assert.equal(res.content, 'Error: Tool "nonexistent_tool" not found');
        assert.equal(res.error, 'Tool "nonexistent_tool" not found');
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 2);
        const toolMsg = reqs[1].body.messages.at(-1);
        assert.equal(toolMsg.role, 'tool');
        assert.equal(toolMsg.tool_call_id, call.toolCallId);
        assert.equal(contentString(toolMsg.content), 'Error: Tool "nonexistent_tool" not found');
        const final = ofType(ev, 'assistant_message').at(-1);
        assert.equal(final.content, toolFinalText('Error: Tool "nonexistent_tool" not found'));
        assertRunEnd(ev, sid, 2);
    });

    test('path escapes are refused with "Access denied", the run goes on', async () => {
        const sid = await createSession(iso);
        const query = q('escape');
        const out = await streamQuery(iso, sid, query);
        assertFraming(out);
        const ev = out.events;
        const results = ofType(ev, 'tool_result');
        assert.equal(results.length, 3);
        for (const r of results) {
            assert.equal(typeof r.error, 'string', `tool_result ${JSON.stringify(r)} has an error`);
            assert.match(r.error, /^Access denied/);
            assert.ok(!contentString(r.content).includes('root:x:0:0'), '/etc/passwd content leaked');
        }
        // nothing was written next to the session directory or above the workspace
        assert.ok(!fs.existsSync(path.join(iso.workspace, 'escaped.txt')));
        assert.ok(!fs.existsSync(path.join(path.dirname(iso.workspace), 'escaped.txt')));
        // the model saw the errors and the run ended normally
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 3);
        for (const m of reqs[2].body.messages.filter((x) => x.role === 'tool')) {
            assert.ok(contentString(m.content).includes('Access denied'), contentString(m.content));
        }
        assert.equal(ofType(ev, 'assistant_message').at(-1).finishReason, 'stop');
        assertRunEnd(ev, sid, 3);
    });
});

describe('isolated workspaces', () => {
    test('each session works in DIR/<sessionId>; files are not shared', async () => {
        const a = await createSession(iso);
        const b = await createSession(iso);
        assert.ok(fs.statSync(path.join(iso.workspace, a)).isDirectory(), 'DIR/<A> exists after create');
        assert.ok(fs.statSync(path.join(iso.workspace, b)).isDirectory(), 'DIR/<B> exists after create');

        const ra = await post(iso, '/api/sessions/query', { sessionId: a, query: q('tool path=secret-a.txt') });
        assert.equal(ra.status, 200, ra.text);
        assert.equal(fs.readFileSync(path.join(iso.workspace, a, 'secret-a.txt'), 'utf8'), FILE_CONTENT);
        assert.ok(!fs.existsSync(path.join(iso.workspace, 'secret-a.txt')));

        // B cannot read it by its relative name, and does not see it in its listing
        const qb = q('readfile path=secret-a.txt');
        const outB = await streamQuery(iso, b, qb);
        const rb = ofType(outB.events, 'tool_result')[0];
        assert.equal(typeof rb.error, 'string', 'reading A\'s file from B fails');
        assert.ok(!contentString(rb.content).includes(FILE_CONTENT));
        const qb2 = q('listdir');
        const outB2 = await streamQuery(iso, b, qb2);
        const lb = ofType(outB2.events, 'tool_result')[0];
        assert.ok(!lb.error, lb.error);
        assert.ok(!contentString(lb.content).includes('secret-a.txt'), contentString(lb.content));

        // ...nor through the parent directory
        const qb3 = q(`readfile path=../${a}/secret-a.txt`);
        const outB3 = await streamQuery(iso, b, qb3);
        const rb3 = ofType(outB3.events, 'tool_result')[0];
        assert.match(rb3.error || '', /^Access denied/);
        assert.ok(!contentString(rb3.content).includes(FILE_CONTENT));

        // A lists its own file
        const outA = await streamQuery(iso, a, q('listdir'));
        const la = ofType(outA.events, 'tool_result')[0];
        assert.ok(contentString(la.content).split('\n').map((l) => l.trim()).includes('[FILE] secret-a.txt'), contentString(la.content));
    });

    test('symlinks that point outside the workspace are refused', async () => {
        const sid = await createSession(iso);
        const dir = path.join(iso.workspace, sid);
        const outside = fs.mkdtempSync(path.join(path.dirname(iso.workspace), 'tars-outside-'));
        try {
            fs.writeFileSync(path.join(outside, 'secret.txt'), 'TOP-SECRET-OUTSIDE');
            fs.symlinkSync(outside, path.join(dir, 'linkdir'));
            fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'linkfile'));
            for (const p of ['linkdir/secret.txt', 'linkfile']) {
                const out = await streamQuery(iso, sid, q(`readfile path=${p}`));
                const res = ofType(out.events, 'tool_result')[0];
                assert.match(res.error || '', /^Access denied/, `read_file ${p}: ${JSON.stringify(res)}`);
                assert.ok(!contentString(res.content).includes('TOP-SECRET-OUTSIDE'));
            }
            const out = await streamQuery(iso, sid, q('tool path=linkdir/planted.txt'));
            const res = ofType(out.events, 'tool_result')[0];
            assert.match(res.error || '', /^Access denied/, `write_file through a symlink: ${JSON.stringify(res)}`);
            assert.ok(!fs.existsSync(path.join(outside, 'planted.txt')), 'a file was written outside the workspace');
            const out2 = await streamQuery(iso, sid, q('listdir path=linkdir'));
            const res2 = ofType(out2.events, 'tool_result')[0];
            assert.match(res2.error || '', /^Access denied/, `list_directory through a symlink: ${JSON.stringify(res2)}`);
        } finally {
            fs.rmSync(outside, { recursive: true, force: true });
        }
    });

    test('list_directory shows [DIR] entries', async () => {
        const sid = await createSession(iso);
        fs.mkdirSync(path.join(iso.workspace, sid, 'subdir'));
        fs.writeFileSync(path.join(iso.workspace, sid, 'f.txt'), 'x');
        const out = await streamQuery(iso, sid, q('listdir'));
        const res = ofType(out.events, 'tool_result')[0];
        const lines = contentString(res.content).split('\n').map((l) => l.trim());
        assert.ok(lines.includes('[DIR] subdir'), contentString(res.content));
        assert.ok(lines.includes('[FILE] f.txt'), contentString(res.content));
    });
});
