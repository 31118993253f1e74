// SPDX-License-Identifier: MIT
// Issue 18: toolCallEngine structured_outputs against the fake OpenAI server. The request
// carries response_format agent_response_schema and the tools in the system prompt, not in
// "tools"; the model's JSON streams out as content while it arrives; well-formed, slightly
// broken (trailing commas, unclosed string and braces) and hopeless answers, with and without a
// tool call; a call whose arguments were cut off is never run; tool results go back as user
// messages.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { addScenarios, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { cleanup, post, q, startServer, test } from './lib/server.mjs';

/** Each scenario answers step N with the Nth text, streamed in small pieces as a model would. */
const ANSWERS = {
    so_plain: ['{"content": "Hello from the structured model."}'],
    so_tool: [
        '{"content":"Listing the workspace.","toolCall":{"name":"list_directory","args":{"path":"."}}}',
        '{"content":"Done listing."}',
    ],
    so_repair: [
        '{"content":"Writing the file.","toolCall":{"name":"write_file","args":{"path":"repaired.txt","content":"fixed by repair"},},',
        '{"content": "All done, the file is writ',
    ],
    so_cut: ['{"content":"About to write.","toolCall":{"name":"write_file","args":{"path":"cut.txt","content":"never'],
    so_hopeless: ['{"content": "Partial answer" "toolCall": oops}'],
    so_text: ['No JSON at all, just text.'],
    so_fence: ['```json\n{"content":"Fenced answer."}\n```'],
};

/** The scenario and step from the request: tool results come back as user messages, so the
 * marker is in the last user message that has one, and the step counts assistant turns since. */
function soScenario(messages) {
    let qi = -1;
    let name = null;
    messages.forEach((m, i) => {
        const hit = m.role === 'user' && typeof m.content === 'string' && /\[\[scenario:(so_\w+)/.exec(m.content);
        if (hit) [qi, name] = [i, hit[1]];
    });
    const step = messages.slice(qi + 1).filter((m) => m.role === 'assistant').length;
    return name ? { name, step } : null;
}

function answer(s) {
    const { name, step } = soScenario(s.rec.body.messages);
    const steps = ANSWERS[name];
    s.text(steps[Math.min(step, steps.length - 1)]);
}

// A tool result is a user message without the marker: the fake then asks for "text", which
// this file answers from the marker further up.
addScenarios({
    ...Object.fromEntries(Object.keys(ANSWERS).map((name) => [name, answer])),
    text(s, a) {
        if (soScenario(s.rec.body.messages)) answer(s);
        else s.text(textReply(a.query));
    },
});

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake, args: ['--toolCallEngine', 'structured_outputs'] });
});
after(() => cleanup(srv, fake));

/** Runs a streaming v1 query; returns its events. */
async function run(scenario) {
    const { sessionId, session } = (await post(srv, '/api/v1/sessions/create', {})).json;
    const query = q(scenario, 'structured');
    const r = await post(srv, '/api/v1/sessions/query/stream', { sessionId, query });
    assert.equal(r.status, 200, r.text);
    const events = r.text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)));
    assert.equal(events.at(-1).type, 'agent_run_end');
    return { events, query, workspace: session.workspace, sessionId };
}

const streamed = (events) =>
    events
        .filter((e) => e.type === 'assistant_streaming_message')
        .map((e) => e.content)
        .join('');
const finals = (events) => events.filter((e) => e.type === 'assistant_message');

test('the request: response_format agent_response_schema, tools in the system prompt', async () => {
    const { events, query } = await run('so_plain');
    const rec = fake.requestsMatching(query)[0];
    assert.equal(rec.body.tools, undefined);
    assert.equal(rec.body.response_format.type, 'json_schema');
    assert.equal(rec.body.response_format.json_schema.name, 'agent_response_schema');
    const props = rec.body.response_format.json_schema.schema.properties;
    assert.equal(props.content.type, 'string');
    assert.deepEqual(props.toolCall.required, ['name', 'args']);
    const system = rec.body.messages[0].content;
    assert.match(system, /AVAILABLE TOOLS:/);
    assert.match(system, /Tool name: list_directory/);
    // well-formed, no tool call: the content streams out of the JSON, never the JSON itself
    assert.equal(streamed(events), 'Hello from the structured model.');
    assert.equal(finals(events)[0].content, 'Hello from the structured model.');
    assert.equal(finals(events)[0].finishReason, 'stop');
});

test('well-formed tool call: the tool runs, its result comes back as a user message', async () => {
    const { events, query } = await run('so_tool');
    const call = events.find((e) => e.type === 'tool_call');
    assert.equal(call.name, 'list_directory');
    assert.ok(events.some((e) => e.type === 'tool_result' && e.toolCallId === call.toolCallId));
    const [first, second] = finals(events);
    assert.equal(first.content, 'Listing the workspace.');
    assert.equal(first.finishReason, 'tool_calls');
    assert.equal(second.content, 'Done listing.');
    const recs = fake.requests.filter((r) => r.body.messages.some((m) => m.content === query));
    assert.equal(recs.length, 2);
    const msgs = recs[1].body.messages;
    const last = msgs.at(-1);
    assert.equal(last.role, 'user');
    assert.match(last.content, /^Tool: list_directory\nResult:\n/);
    assert.ok(!msgs.some((m) => m.role === 'tool' || m.tool_calls));
    // the model sees its own JSON turn again
    assert.equal(msgs.at(-2).role, 'assistant');
    assert.equal(msgs.at(-2).content, ANSWERS.so_tool[0]);
});

test('broken but repairable JSON: trailing commas and an unclosed object still run the call; an unclosed string is the answer', async () => {
    const { events, workspace } = await run('so_repair');
    const call = events.find((e) => e.type === 'tool_call');
    assert.equal(call.name, 'write_file');
    assert.equal(fs.readFileSync(path.join(workspace, 'repaired.txt'), 'utf8'), 'fixed by repair');
    const [first, second] = finals(events);
    assert.equal(first.content, 'Writing the file.');
    assert.equal(second.content, 'All done, the file is writ');
    assert.equal(streamed(events), 'Writing the file.All done, the file is writ');
});

test('a call cut off inside its arguments is never run', async () => {
    const { events, workspace } = await run('so_cut');
    assert.ok(!events.some((e) => e.type === 'tool_call'));
    assert.ok(!fs.existsSync(path.join(workspace, 'cut.txt')));
    const [only] = finals(events);
    assert.equal(only.content, 'About to write.');
    assert.equal(events.at(-1).status, 'idle');
});

test('hopeless JSON: what streamed is the answer, no call; plain text and a fenced object pass', async () => {
    let { events } = await run('so_hopeless');
    assert.ok(!events.some((e) => e.type === 'tool_call'));
    assert.equal(finals(events)[0].content, 'Partial answer');
    assert.equal(events.at(-1).status, 'idle');

    ({ events } = await run('so_text'));
    assert.equal(streamed(events), 'No JSON at all, just text.');
    assert.equal(finals(events)[0].content, 'No JSON at all, just text.');

    ({ events } = await run('so_fence'));
    assert.equal(streamed(events), 'Fenced answer.');
    assert.equal(finals(events)[0].content, 'Fenced answer.');
});
