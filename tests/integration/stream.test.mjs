// SPDX-License-Identifier: MIT
// SSE streaming: framing (id block then data frame, non-decreasing ids), exact event order of text,
// tool-call, parallel tool-call and reasoning runs, deltas that add up to the final message, and
// what the model receives (request shape, tools, history within a run).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import {
    FILE_CONTENT,
    REASONING_ANSWER,
    REASONING_TEXT,
    startFakeOpenAI,
    textReply,
    toolFinalText,
} from './lib/fake-openai.mjs';
import {
    assertEventBasics,
    assertFraming,
    assertOneMessageId,
    assertRunEnd,
    assertRunStart,
    assertStreamHeaders,
    joinDeltas,
} from './lib/checks.mjs';
import {
    TEST_API_KEY,
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
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

/** Splits events into per-LLM-call groups, each ending with its assistant_message. */
function llmCalls(events) {
    const calls = [];
    let cur = [];
    for (const e of events) {
        if (e.type.startsWith('assistant_')) cur.push(e);
        if (e.type === 'assistant_message') {
            calls.push(cur);
            cur = [];
        }
    }
    return calls;
}

/** Checks streaming tool-call deltas of one LLM call against the final toolCalls. */
function assertToolCallDeltas(call) {
    const final = call.at(-1);
    const deltas = ofType(call, 'assistant_streaming_tool_call');
    assert.ok(Array.isArray(final.toolCalls) && final.toolCalls.length > 0, 'final message has toolCalls');
    for (const tc of final.toolCalls) {
        const mine = deltas.filter((d) => d.toolCallId === tc.id);
        assert.ok(mine.length > 0, `streaming tool call events for ${tc.id}`);
        for (const d of mine) {
            assert.equal(typeof d.arguments, 'string');
            assert.equal(typeof d.isComplete, 'boolean');
        }
        const partial = mine.filter((d) => !d.isComplete);
        const complete = mine.filter((d) => d.isComplete);
        assert.equal(partial.map((d) => d.arguments).join(''), tc.function.arguments, 'argument deltas add up');
        assert.equal(complete.length, 1, 'exactly one isComplete:true event per tool call');
        assert.equal(complete[0].arguments, '');
        assert.equal(complete[0].toolName, tc.function.name);
        // the isComplete events come after every partial delta of the call
        const lastPartial = call.lastIndexOf(partial.at(-1));
        const firstComplete = call.indexOf(complete[0]);
        assert.ok(firstComplete > lastPartial, 'isComplete:true comes after the argument deltas');
        // non-empty names on all but possibly the earliest deltas
        assert.equal(mine.filter((d) => d.toolName).at(-1).toolName, tc.function.name);
    }
    const completes = deltas.filter((d) => d.isComplete);
    assert.equal(completes.length, final.toolCalls.length);
    // isComplete events are the last streaming events before the final message
    const tail = call.slice(call.length - 1 - completes.length, call.length - 1);
    assert.ok(tail.every((d) => d.type === 'assistant_streaming_tool_call' && d.isComplete), 'completion markers at the end');
}

describe('text run', () => {
    test('framing, event order, deltas add up, ids', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'Say "hi" & <b>tags</b>\\ünï ✓');
        const out = await streamQuery(srv, sid, query);
        assertStreamHeaders(out);
        const lastId = assertFraming(out);
        assert.equal(out.frames[0].id, '1', 'the first stored event of a session has id 1');
        const ev = out.events;
        assertEventBasics(ev);
        assert.deepEqual(collapsedTypes(ev), [
            'user_message',
            'agent_run_start',
            'assistant_streaming_message*',
            'assistant_message',
            'agent_run_end',
        ]);
        assertRunStart(ev, sid, query);
        const deltas = ofType(ev, 'assistant_streaming_message');
        assert.ok(deltas.length >= 3, 'content arrives in several deltas');
        for (const d of deltas) assert.equal(d.isComplete, false);
        const final = ofType(ev, 'assistant_message')[0];
        assert.equal(final.content, textReply(query));
        assert.equal(joinDeltas(ev), final.content);
        assert.equal(final.finishReason, 'stop');
        assert.ok(final.toolCalls === undefined || final.toolCalls.length === 0);
        assert.equal(typeof final.elapsedMs, 'number');
        assertOneMessageId([...deltas, final]);
        assertRunEnd(ev, sid, 1);
        assert.equal(lastId, Number(out.frames.at(-1).id));

        // a second run on the same session continues the id sequence
        const query2 = q('text', 'second');
        const out2 = await streamQuery(srv, sid, query2);
        assertFraming(out2, { prevStoredId: lastId });
        assert.equal(Number(out2.frames[0].id), lastId + 1);
        assert.equal(ofType(out2.events, 'assistant_message')[0].content, textReply(query2));
        // the message ids of the two runs differ
        assert.notEqual(ofType(out2.events, 'assistant_message')[0].messageId, final.messageId);
    });

    test('the LLM request: endpoint, auth, model, stream options, tools, messages', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'inspect my request');
        await streamQuery(srv, sid, query);
        const [rec] = fake.requestsMatching(query);
        assert.ok(rec, 'the fake received the request');
        assert.equal(rec.method, 'POST');
        assert.equal(rec.url, '/v1/chat/completions');
        assert.equal(rec.headers.authorization, `Bearer ${TEST_API_KEY}`);
        assert.match(rec.headers['content-type'], /^application\/json/);
        const b = rec.body;
        assert.equal(b.model, 'fake-model');
        assert.equal(b.stream, true);
        assert.deepEqual(b.stream_options, { include_usage: true });
        assert.ok(Array.isArray(b.tools));
        const names = b.tools.map((t) => t.function && t.function.name).sort();
        // The original's built-in set (agent-tools-llm.md §2.1), without web_search when no
        // search provider is configured.
        for (const n of ['list_directory', 'read_file', 'write_file', 'edit_file', 'directory_tree',
            'search_files', 'run_command', 'run_script']) {
            assert.ok(names.includes(n), `tool ${n} offered to the model`);
        }
        assert.equal(new Set(names).size, names.length, 'no tool listed twice');
        for (const t of b.tools) {
            assert.equal(t.type, 'function');
            assert.equal(typeof t.function.description, 'string');
            assert.ok(t.function.description.length > 0);
            assert.equal(t.function.parameters.type, 'object');
            assert.equal(typeof t.function.parameters.properties, 'object');
        }
        const wf = b.tools.find((t) => t.function.name === 'write_file').function.parameters;
        assert.ok(wf.properties.path && wf.properties.content, 'write_file takes path and content');
        assert.deepEqual(b.messages.map((m) => m.role), ['system', 'user']);
        assert.equal(typeof b.messages[0].content, 'string');
        assert.ok(b.messages[0].content.length > 0, 'non-empty system prompt');
        assert.equal(b.messages[1].content, query);
    });

    test('non-streaming result equals the streamed final message shape', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'plain');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 200);
        assert.equal(r.json.result.content, textReply(query));
        assert.deepEqual(Object.keys(r.json.result).slice(0, 3), ['id', 'type', 'timestamp']);
    });
});

describe('tool-call run', () => {
    test('write_file then read_file then answer: order, deltas, tool events, files', async () => {
        const sid = await createSession(srv);
        const query = q('tool', 'write and read');
        const out = await streamQuery(srv, sid, query);
        assertStreamHeaders(out);
        assertFraming(out);
        const ev = out.events;
        assertEventBasics(ev);
        assert.deepEqual(collapsedTypes(ev), [
            'user_message',
            'agent_run_start',
            'assistant_streaming_tool_call*',
            'assistant_message',
            'tool_call',
            'tool_result',
            'assistant_streaming_tool_call*',
            'assistant_message',
            'tool_call',
            'tool_result',
            'assistant_streaming_message*',
            'assistant_message',
            'agent_run_end',
        ]);
        assertRunStart(ev, sid, query);
        const calls = llmCalls(ev);
        assert.equal(calls.length, 3);
        const msgIds = calls.map((c) => assertOneMessageId(c));
        assert.equal(new Set(msgIds).size, 3, 'each LLM call has its own messageId');

        // call 1: write_file
        assertToolCallDeltas(calls[0]);
        const m1 = calls[0].at(-1);
        assert.equal(m1.finishReason, 'tool_calls');
        assert.equal(m1.content, '');
        assert.equal(m1.toolCalls.length, 1);
        const tc1 = m1.toolCalls[0];
        assert.deepEqual(Object.keys(tc1).sort(), ['function', 'id', 'type']);
        assert.equal(tc1.type, 'function');
        assert.equal(tc1.function.name, 'write_file');
        assert.deepEqual(JSON.parse(tc1.function.arguments), { path: 'hello.txt', content: FILE_CONTENT });
        assert.match(tc1.id, /^call_/);

        const toolCalls = ofType(ev, 'tool_call');
        const toolResults = ofType(ev, 'tool_result');
        assert.equal(toolCalls[0].toolCallId, tc1.id);
        assert.equal(toolCalls[0].name, 'write_file');
        assert.equal(typeof toolCalls[0].arguments, 'object');
        assert.equal(toolCalls[0].arguments.content, FILE_CONTENT);
        assert.match(String(toolCalls[0].arguments.path), /hello\.txt$/);
        assert.equal(typeof toolCalls[0].startTime, 'number');
        assert.equal(toolCalls[0].tool.name, 'write_file');
        assert.equal(typeof toolCalls[0].tool.description, 'string');
        assert.equal(toolCalls[0].tool.schema.type, 'object');
        assert.equal(toolResults[0].toolCallId, tc1.id);
        assert.equal(toolResults[0].name, 'write_file');
        assert.equal(typeof toolResults[0].elapsedMs, 'number');
        assert.ok(!toolResults[0].error, `write_file failed: ${toolResults[0].error}`);
        const written = path.join(srv.workspace, 'hello.txt');
        assert.equal(fs.readFileSync(written, 'utf8'), FILE_CONTENT);

        // call 2: read_file
        assertToolCallDeltas(calls[1]);
        const tc2 = calls[1].at(-1).toolCalls[0];
        assert.equal(tc2.function.name, 'read_file');
        assert.notEqual(tc2.id, tc1.id);
        assert.equal(toolResults[1].toolCallId, tc2.id);
        assert.ok(!toolResults[1].error);
        assert.ok(contentString(toolResults[1].content).includes(FILE_CONTENT), 'read_file returns the file');

        // call 3: answer quoting the read result as the model got it
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 3);
        const third = reqs[2].body.messages;
        assert.deepEqual(third.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'assistant', 'tool']);
        assert.equal(third[2].tool_calls.length, 1);
        assert.equal(third[2].tool_calls[0].id, tc1.id);
        assert.equal(third[2].tool_calls[0].type, 'function');
        assert.equal(third[2].tool_calls[0].function.name, 'write_file');
        assert.equal(third[2].tool_calls[0].function.arguments, reqs[0].sent.toolCalls[0].arguments, 'arguments sent back verbatim');
        assert.equal(third[3].tool_call_id, tc1.id);
        assert.equal(third[5].tool_call_id, tc2.id);
        const toolMsg = typeof third[5].content === 'string' ? third[5].content : contentString(third[5].content);
        assert.ok(toolMsg.includes(FILE_CONTENT), 'the model got the file content');
        const final = calls[2].at(-1);
        assert.equal(final.content, toolFinalText(toolMsg));
        assert.equal(joinDeltas(calls[2]), final.content);
        assert.equal(final.finishReason, 'stop');
        assertRunEnd(ev, sid, 3);
    });

    test('two parallel tool calls in one turn run in order', async () => {
        const sid = await createSession(srv);
        const query = q('parallel');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const ev = out.events;
        assertEventBasics(ev);
        assert.deepEqual(collapsedTypes(ev), [
            'user_message',
            'agent_run_start',
            'assistant_streaming_tool_call*',
            'assistant_message',
            'tool_call',
            'tool_result',
            'tool_call',
            'tool_result',
            'assistant_streaming_tool_call*',
            'assistant_message',
            'tool_call',
            'tool_result',
            'assistant_streaming_message*',
            'assistant_message',
            'agent_run_end',
        ]);
        const calls = llmCalls(ev);
        assertToolCallDeltas(calls[0]);
        const tcs = calls[0].at(-1).toolCalls;
        assert.equal(tcs.length, 2);
        assert.notEqual(tcs[0].id, tcs[1].id);
        assert.deepEqual(JSON.parse(tcs[0].function.arguments), { path: 'a.txt', content: 'alpha' });
        assert.deepEqual(JSON.parse(tcs[1].function.arguments), { path: 'b.txt', content: 'beta' });
        const tce = ofType(ev, 'tool_call');
        const tre = ofType(ev, 'tool_result');
        assert.deepEqual(tce.slice(0, 2).map((e) => e.toolCallId), [tcs[0].id, tcs[1].id]);
        assert.deepEqual(tre.slice(0, 2).map((e) => e.toolCallId), [tcs[0].id, tcs[1].id]);
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'a.txt'), 'utf8'), 'alpha');
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'b.txt'), 'utf8'), 'beta');
        // list_directory output format
        const listing = contentString(tre[2].content);
        assert.ok(!tre[2].error, tre[2].error);
        const lines = listing.split('\n').map((l) => l.trim());
        assert.ok(lines.includes('[FILE] a.txt'), listing);
        assert.ok(lines.includes('[FILE] b.txt'), listing);
        // the next request has one assistant message with both calls and two tool messages in order
        const reqs = fake.requestsMatching(query);
        const msgs = reqs[1].body.messages;
        assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'tool', 'tool']);
        assert.deepEqual(msgs[2].tool_calls.map((t) => t.id), [tcs[0].id, tcs[1].id]);
        assert.deepEqual(msgs.slice(3).map((m) => m.tool_call_id), [tcs[0].id, tcs[1].id]);
        assertRunEnd(ev, sid, 3);
    });

    test('non-streaming tool run returns the final answer', async () => {
        const sid = await createSession(srv);
        const query = q('tool path=nonstream.txt');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.result.type, 'assistant_message');
        assert.equal(r.json.result.finishReason, 'stop');
        assert.match(r.json.result.content, /^Done\. The last tool said: /);
        assert.ok(r.json.result.content.includes(FILE_CONTENT));
        assert.equal(fake.requestsMatching(query).length, 3);
    });
});

describe('reasoning run', () => {
    test('thinking deltas, full thinking message, then text', async () => {
        const sid = await createSession(srv);
        const query = q('reasoning');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const ev = out.events;
        assertEventBasics(ev);
        assert.deepEqual(collapsedTypes(ev), [
            'user_message',
            'agent_run_start',
            'assistant_streaming_thinking_message*',
            'assistant_thinking_message',
            'assistant_streaming_message*',
            'assistant_message',
            'agent_run_end',
        ]);
        const thinkDeltas = ofType(ev, 'assistant_streaming_thinking_message');
        assert.ok(thinkDeltas.length >= 3);
        for (const d of thinkDeltas) assert.equal(d.isComplete, false);
        const thinking = ofType(ev, 'assistant_thinking_message')[0];
        assert.equal(thinking.content, REASONING_TEXT);
        assert.equal(joinDeltas(ev, 'assistant_streaming_thinking_message'), REASONING_TEXT);
        assert.equal(thinking.isComplete, true);
        assert.equal(typeof thinking.thinkingDurationMs, 'number');
        assert.ok(thinking.thinkingDurationMs >= 0);
        const final = ofType(ev, 'assistant_message')[0];
        assert.equal(final.content, REASONING_ANSWER);
        assert.equal(joinDeltas(ev), REASONING_ANSWER);
        assertOneMessageId(ev.filter((e) => e.type.startsWith('assistant_')));
        assertRunEnd(ev, sid, 1);
    });
});

describe('large payloads', () => {
    test('a 300 KB query reaches the model intact and the long answer streams back', { timeout: 30000 }, async () => {
        const sid = await createSession(srv);
        // Built in linear time: re-joining the array on every step (as this test once did) took
        // 16-50 s of the test's own CPU, all before the first byte reached the server.
        const words = [];
        for (let i = 0, n = -1; n < 300000; i++) {
            words.push(`wörd${i}`);
            n += words[i].length + 1;
        }
        const query = q('text', words.join(' '));
        const out = await streamQuery(srv, sid, query, { timeoutMs: 25000 });
        assertFraming(out);
        const [rec] = fake.requestsMatching(query);
        assert.equal(rec.body.messages.at(-1).content, query);
        const final = ofType(out.events, 'assistant_message')[0];
        assert.equal(final.content, textReply(query));
        assert.equal(joinDeltas(out.events), final.content);
        assert.equal(out.events[0].content, query);
    });
});

describe('model stream variants', () => {
    const UNICODE = 'héllo wörld ✓ 😀 日本語 "quoted" back\\slash';
    for (const params of ['frag=1', 'frag=3 crlf=1', 'comments=1', 'crlf=1 comments=1 frag=7', 'variant=doubao']) {
        test(`text with ${params}`, async () => {
            const sid = await createSession(srv);
            const query = q(`text ${params}`, UNICODE);
            const out = await streamQuery(srv, sid, query);
            assertFraming(out);
            const final = ofType(out.events, 'assistant_message');
            assert.equal(final.length, 1);
            assert.equal(final[0].content, textReply(query));
            assert.equal(joinDeltas(out.events), final[0].content);
            assertRunEnd(out.events, sid, 1);
        });
    }

    for (const params of ['frag=2', 'variant=doubao', 'variant=hunyuan', 'crlf=1 comments=1', 'variant=doubao frag=5']) {
        test(`tool calls with ${params}`, async () => {
            const sid = await createSession(srv);
            const file = `variant-${params.replace(/[^a-z0-9]/g, '')}.txt`;
            const query = q(`tool path=${file} ${params}`);
            const out = await streamQuery(srv, sid, query);
            assertFraming(out);
            const msgs = ofType(out.events, 'assistant_message');
            assert.equal(msgs.length, 3);
            assert.equal(msgs[0].toolCalls.length, 1);
            assert.equal(msgs[0].toolCalls[0].function.name, 'write_file');
            assert.deepEqual(JSON.parse(msgs[0].toolCalls[0].function.arguments), { path: file, content: FILE_CONTENT });
            assert.equal(msgs[1].toolCalls[0].function.name, 'read_file');
            assert.equal(fs.readFileSync(path.join(srv.workspace, file), 'utf8'), FILE_CONTENT);
            assert.ok(msgs[2].content.includes(FILE_CONTENT));
            for (const call of llmCalls(out.events).slice(0, 2)) assertToolCallDeltas(call);
            assertRunEnd(out.events, sid, 3);
        });
    }

    test('reasoning with frag=2 crlf=1', async () => {
        const sid = await createSession(srv);
        const out = await streamQuery(srv, sid, q('reasoning frag=2 crlf=1'));
        assertFraming(out);
        assert.equal(ofType(out.events, 'assistant_thinking_message')[0].content, REASONING_TEXT);
        assert.equal(ofType(out.events, 'assistant_message')[0].content, REASONING_ANSWER);
    });

    test('finish_reason "length" is passed through', async () => {
        const sid = await createSession(srv);
        const query = q('length');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const final = ofType(out.events, 'assistant_message')[0];
        assert.equal(final.content, textReply(query));
        assert.equal(final.finishReason, 'length');
        assertRunEnd(out.events, sid, 1);
    });
});
