// SPDX-License-Identifier: MIT
// --toolCallEngine prompt_engineering against a model that answers with <tool_call> text: the
// request (tool instruction in the system prompt, no tools, stop sequences), parsing of the
// streamed text (stray "<", a closing tag cut off by the stop sequence, two calls, malformed
// JSON), and the history sent back (the model's own text, tool results as user messages).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { PE_FILE_CONTENT, PE_TEXT, peFinalText, startFakePE } from './lib/fake-pe.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import { TEST_API_KEY, cleanup, collapsedTypes, createSession, ofType, q, startServer, streamQuery, test } from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakePE();
    srv = await startServer({
        args: [
            '--model.provider', 'openai-compatible', '--model.id', 'no-fc-model', '--model.baseURL', fake.baseURL,
            '--model.apiKey', TEST_API_KEY, '--toolCallEngine', 'prompt_engineering',
        ],
    });
});
after(() => cleanup(srv, fake));

const ID_RE = /^call_\d{13}_[0-9a-z]{9}$/;

/** Content deltas of one LLM call, joined. */
function streamedContent(events, messageId) {
    return ofType(events, 'assistant_streaming_message')
        .filter((e) => e.messageId === messageId)
        .map((e) => e.content)
        .join('');
}

describe('prompt engineering', () => {
    test('plain text with stray "<" streams unchanged; the request carries the tool instruction', async () => {
        const sid = await createSession(srv);
        const query = q('pe_text', 'just talk');
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
        assert.equal(final.content, PE_TEXT);
        assert.equal(streamedContent(out.events, final.messageId), PE_TEXT);
        assert.equal(final.finishReason, 'stop');

        const [req] = fake.requestsMatching(query);
        const b = req.body;
        assert.equal(b.tools, undefined, 'no native tools');
        assert.deepEqual(b.stop, ['</tool_call>', '</tool_call>\n\n']);
        assert.equal(b.messages[0].role, 'system');
        const sys = b.messages[0].content;
        assert.match(sys, /\n\n<tool_instruction>\n {2}1\. You have access to the following tools:\n\n {2}<available_tools>\n {2}## /);
        for (const name of ['read_file', 'write_file', 'list_directory']) assert.ok(sys.includes(`## ${name}\n\nDescription: `), name);
        assert.ok(sys.includes('Parameters JSON Schema:\n```json\n{"type":"object"'));
        assert.ok(sys.trimEnd().endsWith('</tool_instruction>'));
        assert.deepEqual(b.messages.slice(1), [{ role: 'user', content: query }]);
    });

    test('a cut-off <tool_call>, then one with its closing tag, then the answer', async () => {
        const sid = await createSession(srv);
        const query = q('pe_tool path=pe.txt', 'write and read');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const finals = ofType(out.events, 'assistant_message');
        assert.equal(finals.length, 3);

        // 1: text before the tag streams as content; the call is recovered without </tool_call>
        assert.equal(finals[0].content, "I'll write it.\n");
        assert.equal(streamedContent(out.events, finals[0].messageId), "I'll write it.\n");
        assert.equal(finals[0].finishReason, 'tool_calls');
        assert.equal(finals[0].toolCalls.length, 1);
        const w = finals[0].toolCalls[0];
        assert.match(w.id, ID_RE);
        assert.equal(w.function.name, 'write_file');
        assert.equal(w.function.arguments, JSON.stringify({ path: 'pe.txt', content: PE_FILE_CONTENT }));
        const deltas = ofType(out.events, 'assistant_streaming_tool_call').filter((d) => d.toolCallId === w.id);
        assert.equal(deltas[0].toolName, 'write_file');
        assert.equal(
            deltas.filter((d) => !d.isComplete).map((d) => d.arguments).join(''),
            `{"path": "pe.txt", "content": "${PE_FILE_CONTENT}"}`,
            'the parameters stream as they were written',
        );
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'pe.txt'), 'utf8'), PE_FILE_CONTENT);

        // 2: read_file with a closing tag
        assert.equal(finals[1].content, '');
        assert.equal(finals[1].toolCalls[0].function.name, 'read_file');
        assert.notEqual(finals[1].toolCalls[0].id, w.id);

        // 3: the answer quotes the tool result as the model received it
        const reqs = fake.requestsMatching(query);
        assert.equal(reqs.length, 3);
        const m = reqs[2].body.messages;
        assert.deepEqual(m.map((x) => x.role), ['system', 'user', 'assistant', 'user', 'assistant', 'user']);
        for (const x of m) {
            assert.equal(x.tool_calls, undefined, 'no tool_calls in history');
            assert.equal(typeof x.content, 'string');
        }
        assert.ok(m[2].content.startsWith("I'll write it.\n"), m[2].content);
        assert.ok(m[2].content.includes('<tool_call>') && m[2].content.includes('"write_file"'), m[2].content);
        assert.ok(m[3].content.startsWith('Tool: write_file\nResult:\n'), m[3].content);
        assert.ok(m[4].content.includes('<tool_call>') && m[4].content.includes('"read_file"'), m[4].content);
        assert.ok(m[5].content.startsWith('Tool: read_file\nResult:\n'), m[5].content);
        assert.ok(m[5].content.includes(PE_FILE_CONTENT), m[5].content);
        assert.equal(finals[2].content, peFinalText(m[5].content));
        assertRunEnd(out.events, sid, 3);
    });

    test('two calls in one reply run in order', async () => {
        const sid = await createSession(srv);
        const query = q('pe_two', 'two files');
        const out = await streamQuery(srv, sid, query);
        const finals = ofType(out.events, 'assistant_message');
        assert.equal(finals[0].content, 'Two files.\n\n');
        assert.deepEqual(
            finals[0].toolCalls.map((c) => [c.function.name, JSON.parse(c.function.arguments).path]),
            [['write_file', 'one.txt'], ['write_file', 'two.txt']],
        );
        assert.equal(ofType(out.events, 'tool_result').length, 2);
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'one.txt'), 'utf8'), '1');
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'two.txt'), 'utf8'), '2');
        const m = fake.requestsMatching(query)[1].body.messages;
        assert.deepEqual(m.map((x) => x.role), ['system', 'user', 'assistant', 'user', 'user']);
    });

    test('malformed parameters: an error result goes back, the run goes on', async () => {
        const sid = await createSession(srv);
        const query = q('pe_bad', 'broken');
        const out = await streamQuery(srv, sid, query);
        assertFraming(out);
        const finals = ofType(out.events, 'assistant_message');
        assert.equal(finals.length, 2);
        assert.equal(finals[0].toolCalls[0].function.name, 'read_file');
        const [result] = ofType(out.events, 'tool_result');
        assert.ok(result.error, JSON.stringify(result));
        const m = fake.requestsMatching(query)[1].body.messages;
        assert.ok(m.at(-1).content.startsWith('Tool: read_file\nResult:\nError: '), m.at(-1).content);
        assertRunEnd(out.events, sid, 2);
    });
});
