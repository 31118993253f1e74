// SPDX-License-Identifier: MIT
// Self-check of the fake OpenAI server (no server binary needed): its streams must have the real
// Chat Completions wire shape, or the other tests would prove nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OPENAI_401_BODY, REASONING_TEXT, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';

let fake;
before(async () => {
    fake = await startFakeOpenAI();
});
after(() => fake.close());

async function call(query, { usage = true, extra = [] } = {}) {
    const body = { model: 'm-1', stream: true, messages: [{ role: 'system', content: 's' }, { role: 'user', content: query }, ...extra] };
    if (usage) body.stream_options = { include_usage: true };
    const r = await fetch(`${fake.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
        body: JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text };
}

function chunks(text) {
    assert.ok(text.endsWith('data: [DONE]\n\n'), 'ends with [DONE]');
    const blocks = text.split('\n\n');
    assert.equal(blocks.pop(), '');
    assert.equal(blocks.pop(), 'data: [DONE]');
    return blocks.map((b) => {
        assert.ok(b.startsWith('data: '), b);
        return JSON.parse(b.slice(6));
    });
}

describe('fake OpenAI wire format', () => {
    test('text: chunk shape, role delta first, finish chunk, usage chunk', async () => {
        const r = await call('[[scenario:text]] hi');
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        const cs = chunks(r.text);
        for (const c of cs) {
            assert.match(c.id, /^chatcmpl-/);
            assert.equal(c.object, 'chat.completion.chunk');
            assert.equal(typeof c.created, 'number');
            assert.equal(c.model, 'm-1');
            assert.equal(typeof c.system_fingerprint, 'string');
        }
        assert.equal(new Set(cs.map((c) => c.id)).size, 1);
        assert.deepEqual(cs[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
        const finish = cs.at(-2);
        assert.deepEqual(finish.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
        assert.deepEqual(cs.at(-1).choices, []);
        assert.equal(cs.at(-1).usage.total_tokens, 59);
        for (const c of cs.slice(0, -1)) assert.equal(c.usage, null);
        const content = cs.slice(1, -2).map((c) => c.choices[0].delta.content);
        assert.ok(content.length >= 3);
        assert.equal(content.join(''), textReply('[[scenario:text]] hi'));
    });

    test('no usage chunk and no usage fields without stream_options', async () => {
        const cs = chunks((await call('[[scenario:text]] hi', { usage: false })).text);
        assert.ok(cs.every((c) => !('usage' in c)));
        assert.equal(cs.at(-1).choices[0].finish_reason, 'stop');
    });

    test('tool calls: first fragment has id/type/name/arguments "", later only index + arguments', async () => {
        const cs = chunks((await call('[[scenario:parallel]] go')).text);
        const frags = cs.flatMap((c) => (c.choices[0] && c.choices[0].delta.tool_calls) || []);
        for (const index of [0, 1]) {
            const mine = frags.filter((f) => f.index === index);
            assert.match(mine[0].id, /^call_/);
            assert.equal(mine[0].type, 'function');
            assert.equal(mine[0].function.name, 'write_file');
            assert.equal(mine[0].function.arguments, '');
            for (const f of mine.slice(1)) {
                assert.deepEqual(Object.keys(f).sort(), ['function', 'index']);
                assert.deepEqual(Object.keys(f.function), ['arguments']);
                assert.ok(f.function.arguments.length >= 1 && f.function.arguments.length <= 7);
            }
            JSON.parse(mine.map((f) => f.function.arguments).join(''));
        }
        assert.equal(cs.at(-2).choices[0].finish_reason, 'tool_calls');
    });

    test('step counting follows the assistant messages after the last user message', async () => {
        const extra = [
            { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'write_file', arguments: '{}' } }] },
            { role: 'tool', tool_call_id: 'c1', content: 'ok' },
            { role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'read_file', arguments: '{}' } }] },
            { role: 'tool', tool_call_id: 'c2', content: 'FILE BODY' },
        ];
        const cs = chunks((await call('[[scenario:tool]] x', { extra })).text);
        const text = cs.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
        assert.equal(text, 'Done. The last tool said: FILE BODY');
    });

    test('reasoning_content deltas come before content', async () => {
        const cs = chunks((await call('[[scenario:reasoning]] x')).text);
        const deltas = cs.slice(1, -2).map((c) => c.choices[0].delta);
        const firstContent = deltas.findIndex((d) => d.content);
        assert.equal(deltas.slice(0, firstContent).map((d) => d.reasoning_content).join(''), REASONING_TEXT);
        assert.ok(deltas.slice(firstContent).every((d) => d.reasoning_content === undefined));
    });

    test('401 body and 429 retry-after', async () => {
        const r = await call('[[scenario:auth401]] x');
        assert.equal(r.status, 401);
        assert.deepEqual(JSON.parse(r.text), OPENAI_401_BODY);
        const q = `[[scenario:rate429]] ${Date.now()}`;
        const r1 = await call(q);
        assert.equal(r1.status, 429);
        assert.equal(r1.headers.get('retry-after'), '1');
        const r2 = await call(q);
        assert.equal(r2.status, 200);
    });

    test('the requests are recorded', () => {
        const rec = fake.requests.find((r) => r.query === '[[scenario:text]] hi');
        assert.equal(rec.headers.authorization, 'Bearer k');
        assert.equal(rec.body.model, 'm-1');
        assert.equal(rec.completed, true);
        assert.equal(rec.closedEarly, false);
    });
});
