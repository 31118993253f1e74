// SPDX-License-Identifier: MIT
// OpenTelemetry traces over OTLP/HTTP JSON (issue 14): a local receiver checks the encoding
// (hex ids, typed attributes, unix-nano strings), the span tree HTTP request -> agent run ->
// model calls and tool calls, the GenAI attributes, the incoming traceparent as the parent, the
// exporter headers, and the traceparent that reaches the fake model.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { addToolScenarios, toolQuery } from './lib/tools-scenarios.mjs';
import { cleanup, createSession, post, q, startServer, test, waitFor } from './lib/server.mjs';

/** A local OTLP/HTTP receiver: every POST body, parsed, with its headers. */
async function startReceiver() {
    const posts = [];
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            posts.push({ url: req.url, headers: req.headers, body: JSON.parse(text) });
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{}');
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
        posts,
        url: `http://127.0.0.1:${server.address().port}`,
        spans: () => posts.flatMap((p) => p.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))),
        close: () => new Promise((resolve) => server.close(resolve)),
    };
}

const attr = (span, key) => {
    const a = span.attributes.find((x) => x.key === key);
    return a ? a.value : undefined;
};

/** The OTLP JSON encoding rules for one span. */
function checkSpan(s) {
    assert.match(s.traceId, /^[0-9a-f]{32}$/, 'traceId is 32 lowercase hex digits');
    assert.match(s.spanId, /^[0-9a-f]{16}$/, 'spanId is 16 lowercase hex digits');
    if (s.parentSpanId !== undefined) assert.match(s.parentSpanId, /^[0-9a-f]{16}$/);
    assert.equal(typeof s.name, 'string');
    assert.ok([1, 2, 3].includes(s.kind), 'kind is a SpanKind number');
    assert.match(s.startTimeUnixNano, /^\d{19}$/, 'times are unix nanoseconds as decimal strings');
    assert.match(s.endTimeUnixNano, /^\d{19}$/);
    assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
    assert.ok(Array.isArray(s.attributes));
    for (const a of s.attributes) {
        assert.equal(typeof a.key, 'string');
        const kinds = Object.keys(a.value);
        assert.equal(kinds.length, 1, `one typed value for ${a.key}`);
        assert.ok(['stringValue', 'intValue'].includes(kinds[0]), kinds[0]);
        if (kinds[0] === 'intValue') assert.match(a.value.intValue, /^-?\d+$/, 'intValue is a decimal string');
        if (kinds[0] === 'stringValue') assert.equal(typeof a.value.stringValue, 'string');
    }
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

let fake;
let recv;
let srv;

before(async () => {
    addToolScenarios();
    fake = await startFakeOpenAI();
    recv = await startReceiver();
    srv = await startServer({
        fake,
        env: {
            OTEL_EXPORTER_OTLP_ENDPOINT: recv.url,
            OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme,x-note=two%20words',
            OTEL_SERVICE_NAME: 'tars-under-test',
            OTEL_BSP_SCHEDULE_DELAY: '200',
        },
    });
});
after(() => cleanup(srv, fake, recv));

describe('tracing', () => {
    test('HTTP request -> agent run -> model calls and a tool call, in OTLP JSON', async () => {
        const sid = await createSession(srv);
        const query = toolQuery([['list_directory', { path: '.' }]]);
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query }, { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
        assert.equal(r.status, 200, r.text);
        const inTrace = () => recv.spans().filter((s) => s.traceId === TRACE_ID);
        await waitFor(() => inTrace().some((s) => s.name === 'http.request' && attr(s, 'http.route')?.stringValue === '/api/sessions/query'), {
            timeoutMs: 10000,
            what: 'the request span exported',
        });
        const spans = inTrace();
        spans.forEach(checkSpan);

        const post0 = recv.posts[0];
        assert.equal(post0.url, '/v1/traces');
        assert.match(post0.headers['content-type'], /^application\/json/);
        assert.equal(post0.headers['x-tenant'], 'acme');
        assert.equal(post0.headers['x-note'], 'two words');
        const svc = post0.body.resourceSpans[0].resource.attributes.find((a) => a.key === 'service.name');
        assert.deepEqual(svc.value, { stringValue: 'tars-under-test' });

        const req = spans.find((s) => s.name === 'http.request' && attr(s, 'http.route')?.stringValue === '/api/sessions/query');
        assert.equal(req.kind, 2, 'server span');
        assert.equal(req.parentSpanId, PARENT_ID, 'the incoming traceparent is the parent');
        assert.deepEqual(attr(req, 'http.request.method'), { stringValue: 'POST' });
        assert.deepEqual(attr(req, 'http.response.status_code'), { intValue: '200' });

        const run = spans.find((s) => s.name === 'invoke_agent');
        assert.ok(run, 'agent run span');
        assert.equal(run.parentSpanId, req.spanId);

        const chats = spans.filter((s) => s.name === 'chat');
        assert.equal(chats.length, 2, 'two model calls: the tool call and the answer');
        for (const c of chats) {
            assert.equal(c.parentSpanId, run.spanId);
            assert.equal(c.kind, 3, 'client span');
            assert.deepEqual(attr(c, 'gen_ai.system'), { stringValue: 'openai-compatible' });
            assert.deepEqual(attr(c, 'gen_ai.request.model'), { stringValue: 'fake-model' });
            assert.deepEqual(attr(c, 'gen_ai.operation.name'), { stringValue: 'chat' });
            assert.ok(Number(attr(c, 'gen_ai.usage.input_tokens').intValue) > 0);
            assert.ok(Number(attr(c, 'gen_ai.usage.output_tokens').intValue) > 0);
            assert.ok(attr(c, 'gen_ai.response.time_to_first_token_ms'), 'time to first token');
            assert.equal(c.status, undefined, 'no error status');
        }
        const tool = spans.find((s) => s.name === 'execute_tool');
        assert.ok(tool, 'tool span');
        assert.equal(tool.parentSpanId, run.spanId);
        assert.deepEqual(attr(tool, 'gen_ai.tool.name'), { stringValue: 'list_directory' });

        // the model saw each call's own span as its parent
        const recs = fake.requestsMatching(query);
        assert.equal(recs.length, 2);
        const sent = recs.map((rec) => rec.headers.traceparent).sort();
        const expect = chats.map((c) => `00-${TRACE_ID}-${c.spanId}-01`).sort();
        assert.deepEqual(sent, expect);
    });

    test('a model error marks its span and the run span with an error status; new roots without traceparent', async () => {
        const sid = await createSession(srv);
        const query = q('auth401');
        const r = await post(srv, '/api/sessions/query', { sessionId: sid, query });
        assert.equal(r.status, 500);
        const [rec] = fake.requestsMatching(query);
        const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(rec.headers.traceparent);
        assert.ok(m, `traceparent sent: ${rec.headers.traceparent}`);
        const traceId = m[1];
        assert.notEqual(traceId, TRACE_ID);
        await waitFor(() => recv.spans().some((s) => s.traceId === traceId && s.name === 'http.request'), { timeoutMs: 10000, what: 'spans of the failed run' });
        const spans = recv.spans().filter((s) => s.traceId === traceId);
        spans.forEach(checkSpan);
        const req = spans.find((s) => s.name === 'http.request');
        assert.equal(req.parentSpanId, undefined, 'a root span');
        const chat = spans.find((s) => s.spanId === m[2]);
        assert.equal(chat.name, 'chat');
        assert.equal(chat.status.code, 2);
        assert.match(chat.status.message, /401/);
        const run = spans.find((s) => s.name === 'invoke_agent');
        assert.equal(run.status.code, 2);
    });

    test('the request id is an attribute of the request span', async () => {
        const r = await post(srv, '/api/sessions/create', {}, { headers: { 'x-request-id': 'trace-me-42' } });
        assert.equal(r.status, 201);
        await waitFor(() => recv.spans().some((s) => attr(s, 'http.request.id')?.stringValue === 'trace-me-42'), { timeoutMs: 10000, what: 'the span' });
    });
});

describe('tracing tool requests', () => {
    let search;
    let s2;
    before(async () => {
        search = await new Promise((resolve) => {
            const requests = [];
            const server = http.createServer((req, res) => {
                requests.push({ url: req.url, headers: req.headers });
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ query: 'x', results: [{ title: 't', url: 'https://example.com/', content: 'c' }] }));
            });
            server.listen(0, '127.0.0.1', () =>
                resolve({ requests, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }),
            );
        });
        s2 = await startServer({
            fake,
            args: ['--search.provider', 'searxng', '--search.baseURL', search.url],
            env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${recv.url}/v1/traces`, OTEL_BSP_SCHEDULE_DELAY: '200' },
        });
    });
    after(() => cleanup(s2, search));

    test('a web search request carries the traceparent of its execute_tool span', async () => {
        const sid = await createSession(s2);
        const query = toolQuery([['web_search', { query: 'agent tars' }]]);
        assert.equal((await post(s2, '/api/sessions/query', { sessionId: sid, query })).status, 200);
        assert.equal(search.requests.length, 1);
        const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(search.requests[0].headers.traceparent || '');
        assert.ok(m, `traceparent: ${search.requests[0].headers.traceparent}`);
        await waitFor(() => recv.spans().some((s) => s.spanId === m[2]), { timeoutMs: 10000, what: 'the tool span' });
        const tool = recv.spans().find((s) => s.spanId === m[2]);
        assert.equal(tool.name, 'execute_tool');
        assert.equal(tool.traceId, m[1]);
        assert.deepEqual(attr(tool, 'gen_ai.tool.name'), { stringValue: 'web_search' });
    });
});

describe('tracing off', () => {
    let plain;
    let sampledOut;
    before(async () => {
        plain = await startServer({ fake });
        sampledOut = await startServer({ fake, env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${recv.url}/custom`, OTEL_TRACES_SAMPLER: 'always_off' } });
    });
    after(() => cleanup(plain, sampledOut));

    test('no endpoint, or a sampler that says no: no traceparent on model requests, nothing exported', async () => {
        for (const s of [plain, sampledOut]) {
            const sid = await createSession(s);
            const query = q('text', 'untraced');
            assert.equal((await post(s, '/api/sessions/query', { sessionId: sid, query })).status, 200);
            const [rec] = fake.requestsMatching(query);
            assert.equal(rec.headers.traceparent, undefined);
        }
        await new Promise((r) => setTimeout(r, 500));
        assert.ok(!recv.posts.some((p) => p.url === '/custom'), 'nothing sent to the traces endpoint');
    });
});
