// SPDX-License-Identifier: MIT
// --model.provider anthropic against a fake Messages API: the request on the wire (URL, headers,
// body converted from the agent's history), streamed text, tool_use with input_json_delta,
// thinking, HTTP errors (401, 529 retried, the spend-limit 429 not retried), an error event in
// the stream, and the prompt-engineering engine on top.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import {
    ANTHROPIC_KEY,
    AUTH_MESSAGE,
    FILE_CONTENT,
    SPEND_MESSAGE,
    THINKING_ANSWER,
    THINKING_TEXT,
    claudeFinalText,
    claudeTextReply,
    startFakeAnthropic,
} from './lib/fake-anthropic.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import { cleanup, collapsedTypes, createSession, ofType, q, startServer, streamQuery, test } from './lib/server.mjs';

let fake;
let srv; // native tools
let think; // --thinking
let pe; // --toolCallEngine prompt_engineering

function anthropicArgs(f, key = ANTHROPIC_KEY) {
    return [
        '--model.provider', 'anthropic', '--model.id', 'claude-fake-1', '--model.baseURL', f.baseURL,
        '--model.apiKey', key, '--llm.maxRetries', '2', '--llm.retryBaseMs', '20',
    ];
}

before(async () => {
    fake = await startFakeAnthropic();
    srv = await startServer({ args: anthropicArgs(fake) });
    think = await startServer({ args: [...anthropicArgs(fake), '--thinking'] });
    pe = await startServer({ args: [...anthropicArgs(fake), '--toolCallEngine', 'prompt_engineering'] });
});
after(() => cleanup(srv, think, pe, fake));

const joined = (events, type) => ofType(events, type).map((e) => e.content).join('');

/** The stream ended with a system error event; returns its message. */
function errorMessage(out) {
    assertFraming(out);
    const last = out.events.at(-1);
    assert.equal(last.type, 'system', JSON.stringify(last));
    assert.equal(last.level, 'error');
    return last.message;
}

describe('anthropic: requests and answers', () => {
    test('text: the request on the wire and the streamed answer', async () => {
        const sid = await createSession(srv);
        const query = q('text', 'hello Claude ✓');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        assertEventBasics(out.events);
        assert.deepEqual(collapsedTypes(out.events), [
            'user_message',
            'agent_run_start',
            'assistant_streaming_message*',
            'assistant_message',
            'agent_run_end',
        ]);
        const final = ofType(out.events, 'assistant_message')[0];
        assert.equal(final.content, claudeTextReply(query));
        assert.equal(joined(out.events, 'assistant_streaming_message'), final.content);
        assert.equal(final.finishReason, 'stop');
        assertRunEnd(out.events, sid, 1);

        const [req] = fake.requestsMatching(query);
        assert.equal(req.url, '/v1/messages');
        assert.equal(req.headers['x-api-key'], ANTHROPIC_KEY);
        assert.equal(req.headers['anthropic-version'], '2023-06-01');
        assert.match(req.headers['content-type'], /^application\/json/);
        assert.equal(req.headers.authorization, undefined);
        const b = req.body;
        assert.deepEqual(Object.keys(b), ['model', 'max_tokens', 'system', 'messages', 'tools', 'stream', 'temperature']);
        assert.equal(b.model, 'claude-fake-1');
        assert.equal(b.max_tokens, 8192);
        assert.equal(b.stream, true);
        assert.equal(b.temperature, 0.7);
        assert.equal(typeof b.system, 'string');
        assert.ok(b.system.length > 0);
        assert.deepEqual(b.messages, [{ role: 'user', content: [{ type: 'text', text: query }] }]);
        const read = b.tools.find((t) => t.name === 'read_file');
        assert.ok(read, JSON.stringify(b.tools.map((t) => t.name)));
        assert.deepEqual(Object.keys(read), ['name', 'description', 'input_schema']);
        assert.equal(read.input_schema.type, 'object');
        assert.ok(!srv.stderr.includes(ANTHROPIC_KEY), 'the key never reaches the log');
    });

    test('tool_use: write_file then read_file, history as tool_use / tool_result blocks', async () => {
        const sid = await createSession(srv);
        const query = q('tool path=claude.txt', 'write and read');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const finals = ofType(out.events, 'assistant_message');
        assert.equal(finals.length, 3);
        assert.equal(finals[0].content, 'I will write the file.');
        assert.equal(finals[0].finishReason, 'tool_calls');
        assert.equal(finals[0].toolCalls.length, 1);
        const w = finals[0].toolCalls[0];
        assert.match(w.id, /^toolu_01/);
        assert.equal(w.function.name, 'write_file');
        assert.deepEqual(JSON.parse(w.function.arguments), { path: 'claude.txt', content: FILE_CONTENT });
        // the arguments streamed as deltas of one call
        const deltas = ofType(out.events, 'assistant_streaming_tool_call').filter((d) => d.toolCallId === w.id);
        assert.equal(deltas.filter((d) => !d.isComplete).map((d) => d.arguments).join(''), w.function.arguments);
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'claude.txt'), 'utf8'), FILE_CONTENT);
        const results = ofType(out.events, 'tool_result');
        assert.equal(results.length, 2);
        assert.ok(finals[2].content.startsWith('Done. The last tool said: '));
        assert.ok(finals[2].content.includes(FILE_CONTENT), finals[2].content);
        assertRunEnd(out.events, sid, 3);

        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 3);
        const m = reqs[1].body.messages;
        assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'user']);
        assert.deepEqual(m[1].content, [
            { type: 'text', text: 'I will write the file.' },
            { type: 'tool_use', id: w.id, name: 'write_file', input: { path: 'claude.txt', content: FILE_CONTENT } },
        ]);
        assert.equal(m[2].content.length, 1);
        assert.equal(m[2].content[0].type, 'tool_result');
        assert.equal(m[2].content[0].tool_use_id, w.id);
        const m3 = reqs[2].body.messages;
        assert.deepEqual(m3.map((x) => x.role), ['user', 'assistant', 'user', 'assistant', 'user']);
        assert.deepEqual(m3[3].content.map((c) => c.type), ['tool_use']);
    });

    test('byte-fragmented stream gives the same answer', async () => {
        const sid = await createSession(srv);
        const query = q('text frag=1', 'one byte at a time');
        const out = await streamQuery(srv, sid, query);
        assert.equal(ofType(out.events, 'assistant_message')[0].content, claudeTextReply(query));
    });

    test('thinking: budget_tokens sent, no temperature, thinking streamed', async () => {
        const sid = await createSession(think);
        const query = q('thinking', 'think first');
        const out = await streamQuery(think, sid, query);
        assertFraming(out);
        assert.equal(joined(out.events, 'assistant_streaming_thinking_message'), THINKING_TEXT);
        const final = ofType(out.events, 'assistant_message')[0];
        assert.equal(final.content, THINKING_ANSWER);
        const [req] = fake.requestsMatching(query);
        assert.deepEqual(req.body.thinking, { type: 'enabled', budget_tokens: 4096 });
        assert.equal(req.body.temperature, undefined);
    });

    test('thinking with tools: the signed thinking block is replayed', async () => {
        const sid = await createSession(think);
        const query = q('thinking_tool', 'think and list');
        const out = await streamQuery(think, sid, query);
        assert.equal(ofType(out.events, 'assistant_message').at(-1).content, 'thinking replayed');
    });
});

describe('anthropic: errors', () => {
    test('401 with a wrong key: one attempt, the API message', async () => {
        const bad = await startServer({ args: anthropicArgs(fake, 'sk-ant-wrong') });
        try {
            const sid = await createSession(bad);
            const query = q('text', 'wrong key');
            const out = await streamQuery(bad, sid, query);
            assert.equal(errorMessage(out), `Error in agent execution: 401 ${AUTH_MESSAGE}`);
            const reqs = fake.requests.filter((r) => r.rawBody.includes(query));
            assert.equal(reqs.length, 1, '401 is not retried');
            assert.equal(reqs[0].status, 401);
        } finally {
            await cleanup(bad);
        }
    });

    test('529 overloaded is retried, then the answer streams', async () => {
        const sid = await createSession(srv);
        const query = q('overloaded', 'busy?');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        assert.equal(ofType(out.events, 'system').length, 0);
        assert.equal(ofType(out.events, 'assistant_message')[0].content, claudeTextReply(query));
        const reqs = fake.requestsMatching(query);
        assert.deepEqual(reqs.map((r) => r.status), [529, 200]);
    });

    test('429 enforced_spend_limit_reached is not retried', async () => {
        const sid = await createSession(srv);
        const query = q('spend_limit', 'broke');
        const out = await streamQuery(srv, sid, query);
        assert.equal(errorMessage(out), `Error in agent execution: 429 ${SPEND_MESSAGE}`);
        assert.equal(fake.requestsMatching(query).length, 1);
    });

    test('an error event inside the stream ends the run with its message', async () => {
        const sid = await createSession(srv);
        const query = q('stream_error', 'flaky');
        const out = await streamQuery(srv, sid, query);
        assert.equal(errorMessage(out), 'Error in agent execution: Overloaded');
        assert.equal(joined(out.events, 'assistant_streaming_message'), 'Partial answer');
        assert.equal(fake.requestsMatching(query).length, 1, 'a started stream is not retried');
    });
});

describe('anthropic: prompt engineering', () => {
    test('tools in the system prompt, stop_sequences, <tool_call> parsed, result as user text', async () => {
        const sid = await createSession(pe);
        const query = q('pe_tool', 'list it');
        fs.writeFileSync(path.join(pe.workspace, 'seen.txt'), 'x');
        const out = await streamQuery(pe, sid, query);
        assertFraming(out);
        const finals = ofType(out.events, 'assistant_message');
        assert.equal(finals.length, 2);
        assert.equal(finals[0].finishReason, 'tool_calls');
        assert.equal(finals[0].toolCalls[0].function.name, 'list_directory');
        assert.deepEqual(JSON.parse(finals[0].toolCalls[0].function.arguments), { path: '.' });
        assert.match(finals[0].toolCalls[0].id, /^call_\d{13}_[0-9a-z]{9}$/);
        const first = ofType(out.events, 'assistant_streaming_message').filter((e) => e.messageId === finals[0].messageId);
        assert.equal(first.map((e) => e.content).join(''), 'Listing.\n', 'the <tool_call> text is not streamed as content');
        assert.equal(finals[0].content, 'Listing.\n');
        assert.ok(finals[1].content.includes('seen.txt'), finals[1].content);

        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 2);
        const b = reqs[0].body;
        assert.equal(b.tools, undefined);
        assert.deepEqual(b.stop_sequences, ['</tool_call>', '</tool_call>\n\n']);
        assert.ok(b.system.includes('<tool_instruction>') && b.system.includes('## list_directory'), b.system.slice(-300));
        const m = reqs[1].body.messages;
        assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'user']);
        assert.ok(m[1].content[0].text.includes('<tool_call>'), JSON.stringify(m[1]));
        assert.ok(m[2].content[0].text.startsWith('Tool: list_directory\nResult:\n'), JSON.stringify(m[2]));
    });
});
